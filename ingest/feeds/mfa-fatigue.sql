-- title: MFA push fatigue
-- description: Detection: many rejected or failed Okta Verify pushes for one user in a short
--   time, an attacker who has the password sending push after push until the user approves one
--   to make them stop. A push failure is a user.mfa.okta_verify.deny_push (the user tapped
--   "No", Classic), or a user.authentication.auth_via_mfa or user.authentication.verify with
--   outcome FAILURE whose factor is identifiably a push: debugData.factor containing PUSH
--   (OKTA_VERIFY_PUSH) or a target detailEntry.methodTypeUsed containing push (Identity Engine);
--   failures of other or unknown factors are left out. Failures are grouped by source and login
--   (actor.alternateId, case-insensitive). Sliding window: a push failure at time t is dense
--   when at least threshold push failures for the same login fall in [t - window, t] (ends
--   included); the intervals [t - window, t] of dense failures that overlap or touch merge into
--   one finding, which holds every push failure for that login inside the merged interval. Only
--   events in [since, until) are considered. One row per finding: first_seen, last_seen, events,
--   denied_pushes, failed_verifications and uuids (sorted).
-- param: threshold int = 5 | push failures within one window that make a finding
-- param: window duration = 15m | the span the push failures must fit in
-- param: user string | only this login, case-insensitive
-- order: first_seen, source, actor_login
WITH pushes AS (
    SELECT uuid, published, source, lower(actor_login) AS login, actor_id, client_ip,
           event_type
    FROM events
    WHERE {{ in_window }}
      AND actor_login IS NOT NULL
      AND ($user IS NULL OR lower(actor_login) = lower($user))
      AND (
            event_type = 'user.mfa.okta_verify.deny_push'
         OR (event_type IN ('user.authentication.auth_via_mfa', 'user.authentication.verify')
             AND outcome_result = 'FAILURE'
             AND (coalesce(json_extract_string(raw, '$.debugContext.debugData.factor'), '')
                      ILIKE '%push%'
                  OR len([m FOR m IN json_extract_string(
                                  raw, '$.target[*].detailEntry.methodTypeUsed')
                          IF m ILIKE '%push%']) > 0))
      )
),
{{ sliding_window from=pushes key=login count=count(*) at_least=$threshold }}
SELECT min(p.published) AS first_seen,
       max(p.published) AS last_seen,
       s.source,
       s.login AS actor_login,
       count(*) AS events,
       count(*) FILTER (WHERE p.event_type = 'user.mfa.okta_verify.deny_push') AS denied_pushes,
       count(*) FILTER (WHERE p.event_type <> 'user.mfa.okta_verify.deny_push')
           AS failed_verifications,
       list_sort(list_distinct(list(p.actor_id))) AS actor_ids,
       list_sort(list_distinct(list(p.client_ip))) AS client_ips,
       list_sort(list(p.uuid)) AS uuids
FROM spans s
JOIN pushes p
  ON p.source = s.source AND p.login = s.login
 AND p.published >= s.span_start AND p.published <= s.span_end
GROUP BY s.source, s.login, s.finding
