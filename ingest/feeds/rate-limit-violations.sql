-- title: Rate limit violations
-- description: Detection: the org or an operation over its rate limit, or close to it
--   (system.operation.rate_limit.violation, system.org.rate_limit.warning,
--   system.org.rate_limit.violation) and too many concurrent requests for the org
--   (core.concurrency.org.limit.violation). A burst of violations is how credential stuffing,
--   enumeration and runaway integrations show up; while the org is over its limit, Okta refuses
--   requests, oktaduck's own polling included. The request that crossed the limit is
--   request_uri, the limited resource is in targets, and the limit itself (threshold, time span,
--   the operation's type and scope) in debug_data.
-- param: ip string | only requests from this client IP address
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       request_uri, display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type IN ('system.operation.rate_limit.violation', 'system.org.rate_limit.warning',
                     'system.org.rate_limit.violation', 'core.concurrency.org.limit.violation')
  AND ($ip IS NULL OR client_ip = $ip)
