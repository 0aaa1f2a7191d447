-- title: System Log events
-- description: Every stored event of the window, as Cortex XSOAR's okta-get-logs: all the
--   normalized columns plus the original event (raw). filter takes an Okta System Log filter
--   expression (eventType eq "user.session.start", target.id eq "...", actor.id eq "...") and q
--   keywords that must all appear in the event, case-insensitive; both are applied by the runner,
--   and a feed run that cannot apply them fails rather than returning unfiltered events.
-- param: filter string | Okta filter expression, e.g. eventType eq "user.session.start"
-- param: q string | keywords that must all match, e.g. San Francisco
-- order: published, uuid
SELECT uuid, published,
       * EXCLUDE (uuid, published, raw, ingest_seq, ingested_at, mapping_version, mapping_issues),
       raw
FROM events
WHERE published >= $since AND published < $until
  AND ($source IS NULL OR source = $source)
  AND ($filter IS NULL OR error('feed logs: the filter parameter is not supported by this runner'))
  AND ($q IS NULL OR error('feed logs: the q parameter is not supported by this runner'))
