-- title: System Log events
-- description: Every stored event of the window, as Cortex XSOAR's okta-get-logs: all the
--   normalized columns plus the original event (raw). filter takes an Okta System Log filter
--   expression (eventType eq "user.session.start", target.id eq "...", actor.id eq "...") and q
--   keywords that must all appear in the event, case-insensitive, so a query pasted from Okta's
--   Admin Console or API works unchanged (see ingest/filters/okta_filter.py for the semantics).
-- param: filter string | Okta filter expression, e.g. eventType eq "user.session.start"
-- param: q string | keywords that must all match, e.g. San Francisco
-- order: published, uuid
-- late: e.raw AS raw
SELECT uuid, published,
       * EXCLUDE (uuid, published, raw, ingest_seq, ingested_at, mapping_version, mapping_issues),
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
