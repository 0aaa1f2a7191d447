-- title: Password spraying
-- description: Detection: one client address failing to sign in as many different users in a
--   short time, someone trying a few common passwords across many accounts to stay under the
--   per-account lockout. A failure is a user.session.start with outcome FAILURE or DENY from a
--   known address; logins are compared as typed (actor.alternateId, case-insensitive).
--   Failures are grouped by source and client IP. Sliding window: a failure at time t is dense
--   when the failures from that address in [t - window, t] (ends included) name at least
--   min_users distinct logins; the intervals [t - window, t] of dense failures that overlap or
--   touch merge into one finding, which holds every failure from that address inside the merged
--   interval. Only events in [since, until) are considered. One row per finding: first_seen,
--   last_seen, users (distinct logins) and logins, events and uuids (sorted).
-- param: min_users int = 5 | distinct logins within one window that make a spray
-- param: window duration = 30m | the span the failures must fit in
-- param: ip string | only this client IP address
-- order: first_seen, source, client_ip
WITH failures AS (
    SELECT uuid, published, source, client_ip, lower(actor_login) AS login, geo_country,
           as_org
    FROM events
    WHERE {{ in_window }}
      AND event_type = 'user.session.start'
      AND outcome_result IN ('FAILURE', 'DENY')
      AND client_ip IS NOT NULL
      AND actor_login IS NOT NULL
      AND ($ip IS NULL OR client_ip = $ip)
),
{{ sliding_window from=failures key=client_ip count="count(DISTINCT login)" at_least=$min_users }}
SELECT min(f.published) AS first_seen,
       max(f.published) AS last_seen,
       s.source,
       s.client_ip,
       count(DISTINCT f.login) AS users,
       list_sort(list_distinct(list(f.login))) AS logins,
       count(*) AS events,
       list_sort(list_distinct(list(f.geo_country))) AS countries,
       list_sort(list_distinct(list(f.as_org))) AS as_orgs,
       list_sort(list(f.uuid)) AS uuids
FROM spans s
JOIN failures f
  ON f.source = s.source AND f.client_ip = s.client_ip
 AND f.published >= s.span_start AND f.published <= s.span_end
GROUP BY s.source, s.client_ip, s.finding
