-- title: Brute-force sign-in bursts
-- description: Detection: many failed sign-ins for one login in a short time, someone guessing
--   a password. A failure is a user.session.start with outcome FAILURE or DENY; failures are
--   grouped by source and by login as typed (actor.alternateId, case-insensitive, so unknown
--   logins count too). Sliding window: a failure at time t is dense when at least threshold
--   failures for the same login fall in [t - window, t] (ends included); the intervals
--   [t - window, t] of dense failures that overlap or touch merge into one finding, which holds
--   every failure for that login inside the merged interval. So any window-long span with
--   threshold failures is reported, however it sits on the clock, and one long attack is one
--   row. Only events in [since, until) are considered. One row per finding: first_seen and
--   last_seen of its failures, events (how many), uuids (sorted), the addresses and countries
--   they came from.
-- param: threshold int = 10 | failures within one window that make a burst
-- param: window duration = 10m | the span the threshold failures must fit in
-- param: user string | only this login, case-insensitive
-- order: first_seen, source, actor_login
WITH failures AS (
    SELECT uuid, published, source, lower(actor_login) AS login, actor_id, client_ip,
           geo_country, outcome_result
    FROM events
    WHERE {{ in_window }}
      AND event_type = 'user.session.start'
      AND outcome_result IN ('FAILURE', 'DENY')
      AND actor_login IS NOT NULL
      AND ($user IS NULL OR lower(actor_login) = lower($user))
),
{{ sliding_window from=failures key=login count=count(*) at_least=$threshold }}
SELECT min(f.published) AS first_seen,
       max(f.published) AS last_seen,
       s.source,
       s.login AS actor_login,
       count(*) AS events,
       count(*) FILTER (WHERE f.outcome_result = 'DENY') AS denied,
       list_sort(list_distinct(list(f.actor_id))) AS actor_ids,
       list_sort(list_distinct(list(f.client_ip))) AS client_ips,
       list_sort(list_distinct(list(f.geo_country))) AS countries,
       list_sort(list(f.uuid)) AS uuids
FROM spans s
JOIN failures f
  ON f.source = s.source AND f.login = s.login
 AND f.published >= s.span_start AND f.published <= s.span_end
GROUP BY s.source, s.login, s.finding
