-- title: Sign-ins from a new country
-- description: Detection: a successful sign-in (user.session.start, outcome SUCCESS) from a
--   country (client.geographicalContext.country) the same user (actor.id, same source) had no
--   successful sign-in from during the lookback before it, for users who had at least one
--   successful sign-in with a known country in that lookback (a user's very first sign-in is not
--   a finding). Stolen sessions and credentials are usually used from far away. The reported
--   sign-ins are those in [since, until); the lookback reaches back before since on purpose.
--   Comparisons are strict: history is [t - lookback, t). One row per finding (sign-ins of the
--   same user from the same new country at the same instant make one): first_seen and last_seen
--   (the sign-in time), events, uuids, and the prior_countries and prior_sign_ins of the
--   lookback.
-- param: lookback duration = 30d | how far back a country counts as known
-- param: user string | only this user: login (case-insensitive) or Okta user id
-- order: first_seen, source, actor_id, geo_country
WITH sign_ins AS (
    SELECT uuid, published, source, actor_id, actor_login, geo_country, geo_city, client_ip
    FROM events
    WHERE published >= $since - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT))
      AND published < $until
      AND ($source IS NULL OR source = $source)
      AND event_type = 'user.session.start'
      AND outcome_result = 'SUCCESS'
      AND actor_id IS NOT NULL
      AND geo_country IS NOT NULL
),
flagged AS (
    -- per sign-in: successes of the same user, and from the same country, in [t - lookback, t)
    SELECT *,
           count(*) OVER (
               PARTITION BY source, actor_id ORDER BY published
               RANGE BETWEEN to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT)) PRECEDING
                     AND INTERVAL 1 MICROSECOND PRECEDING) AS prior_sign_ins,
           count(*) OVER (
               PARTITION BY source, actor_id, geo_country ORDER BY published
               RANGE BETWEEN to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT)) PRECEDING
                     AND INTERVAL 1 MICROSECOND PRECEDING) AS prior_same_country
    FROM sign_ins
),
candidates AS (
    SELECT * FROM flagged
    WHERE published >= $since AND prior_sign_ins > 0 AND prior_same_country = 0
      AND ($user IS NULL OR actor_id = $user OR lower(actor_login) = lower($user))
)
SELECT c.published AS first_seen,
       c.published AS last_seen,
       c.source,
       c.actor_id,
       min(c.actor_login) AS actor_login,
       c.geo_country,
       list_sort(list_distinct(list(c.geo_city))) AS cities,
       list_sort(list_distinct(list(c.client_ip))) AS client_ips,
       (SELECT list_sort(list_distinct(list(h.geo_country))) FROM sign_ins h
         WHERE h.source = c.source AND h.actor_id = c.actor_id
           AND h.published >= c.published
                 - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT))
           AND h.published < c.published) AS prior_countries,
       any_value(c.prior_sign_ins) AS prior_sign_ins,
       count(*) AS events,
       list_sort(list(c.uuid)) AS uuids
FROM candidates c
GROUP BY c.source, c.actor_id, c.geo_country, c.published
