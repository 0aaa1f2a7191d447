-- title: Single sign-on to applications
-- description: SSO attempts from Okta to an application (user.authentication.sso), as Cortex
--   XSOAR's okta-get-application-authentication: the user (actor_*), the application (the target
--   of type AppInstance) and the user's login in it (the target of type AppUser), the session,
--   where from, and the outcome. The event fires when Okta sends the user to the application, even
--   when the application's own sign-on then fails: Okta never sees the application's answer, so
--   a SUCCESS here does not prove the user got in.
-- param: user string | only this user: login or app login (case-insensitive), or Okta user id
-- param: app string | only this application: name (case-insensitive) or app id
-- param: ip string | only attempts from this client IP address
-- order: published, uuid
-- late: json_extract(e.raw, '$.request.ipChain') AS ip_chain_detail
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       target_app_id, target_app_name, target_app_user_login, session_id,
       {{ client_columns }},
       display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type = 'user.authentication.sso'
  AND ($user IS NULL OR actor_id = $user OR lower(actor_login) = lower($user)
       OR lower(target_app_user_login) = lower($user))
  AND ($app IS NULL OR target_app_id = $app OR lower(target_app_name) = lower($app))
  AND ($ip IS NULL OR client_ip = $ip)
