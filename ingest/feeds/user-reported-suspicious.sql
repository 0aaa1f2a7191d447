-- title: Suspicious activity reported by users
-- description: Detection: a user reported suspicious activity on their own account
--   (user.account.report_suspicious_activity_by_enduser), typically with the "report
--   suspicious activity" link of an Okta notification email (new sign-in, factor enrolled,
--   password reset). Nobody knows better than the user that the event was not theirs: treat
--   it as a likely account takeover. What was reported is in debug_data.
-- param: user string | only this user's reports: login (case-insensitive) or Okta user id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       target_user_id, target_user_login, target_user_name,
       {{ client_columns }},
       display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type = 'user.account.report_suspicious_activity_by_enduser'
  AND ($user IS NULL OR actor_id = $user OR lower(actor_login) = lower($user)
       OR target_user_id = $user OR lower(target_user_login) = lower($user))
