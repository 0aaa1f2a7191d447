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
    -- a month of sign-ins: only the columns the history needs (the details of the few
    -- findings are read at the end)
    SELECT published, source, actor_id, geo_country
    FROM events
    WHERE published >= $since - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT))
      AND published < $until
      AND ($source IS NULL OR source = $source)
      AND event_type = 'user.session.start'
      AND outcome_result = 'SUCCESS'
      AND actor_id IS NOT NULL
      AND geo_country IS NOT NULL
),
before_user AS (
    -- the last sign-in of each user before the window (hash aggregates: no sort of history)
    SELECT source, actor_id, max(published) AS last_any
    FROM sign_ins WHERE published < $since GROUP BY ALL
),
before_country AS (
    SELECT source, actor_id, geo_country, max(published) AS last_same
    FROM sign_ins WHERE published < $since GROUP BY ALL
),
instants AS (
    -- sign-ins in the window, one row per user, country and instant (ties are one sign-in)
    SELECT source, actor_id, geo_country, published
    FROM sign_ins WHERE published >= $since GROUP BY ALL
),
user_instants AS (
    SELECT source, actor_id, published,
           lag(published) OVER (PARTITION BY source, actor_id ORDER BY published) AS prev_any
    FROM (SELECT DISTINCT source, actor_id, published FROM instants)
),
flagged AS (
    SELECT i.*,
           coalesce(u.prev_any, bu.last_any) AS prev_any,
           coalesce(
               lag(i.published) OVER (
                   PARTITION BY i.source, i.actor_id, i.geo_country ORDER BY i.published),
               bc.last_same) AS prev_same
    FROM instants i
    JOIN user_instants u USING (source, actor_id, published)
    LEFT JOIN before_user bu USING (source, actor_id)
    LEFT JOIN before_country bc USING (source, actor_id, geo_country)
),
new_country AS (
    SELECT source, actor_id, geo_country, published FROM flagged
    WHERE prev_any >= published - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT))
      AND (prev_same IS NULL OR prev_same < published
            - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT)))
),
history AS (
    SELECT n.source, n.actor_id, n.geo_country, n.published,
           list_sort(list_distinct(list(h.geo_country))) AS prior_countries,
           count(*) AS prior_sign_ins
    FROM new_country n
    JOIN sign_ins h ON h.source = n.source AND h.actor_id = n.actor_id
     AND h.published >= n.published - to_microseconds(CAST(epoch($lookback) * 1000000 AS BIGINT))
     AND h.published < n.published
    GROUP BY ALL
)
SELECT n.published AS first_seen,
       n.published AS last_seen,
       n.source,
       n.actor_id,
       min(c.actor_login) AS actor_login,
       n.geo_country,
       list_sort(list_distinct(list(c.geo_city))) AS cities,
       list_sort(list_distinct(list(c.client_ip))) AS client_ips,
       any_value(h.prior_countries) AS prior_countries,
       any_value(h.prior_sign_ins) AS prior_sign_ins,
       count(*) AS events,
       list_sort(list(c.uuid)) AS uuids
FROM new_country n
JOIN history h USING (source, actor_id, geo_country, published)
JOIN events c ON c.source = n.source AND c.actor_id = n.actor_id
               AND c.geo_country = n.geo_country AND c.published = n.published
               AND c.published >= $since AND c.published < $until
               AND c.event_type = 'user.session.start' AND c.outcome_result = 'SUCCESS'
WHERE ($user IS NULL OR n.actor_id = $user OR lower(c.actor_login) = lower($user))
GROUP BY n.source, n.actor_id, n.geo_country, n.published
