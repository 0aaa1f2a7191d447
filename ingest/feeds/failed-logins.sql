-- title: Failed sign-ins
-- description: Sign-in attempts that did not succeed, as Cortex XSOAR's okta-get-failed-logins
--   but including policy denials: user.session.start with outcome FAILURE or DENY, and MFA
--   verification failures (user.authentication.auth_via_mfa, user.authentication.verify with
--   FAILURE). Unknown users appear with the login that was typed.
-- param: user string | only this user's login (actor.alternateId), case-insensitive
-- param: ip string | only attempts from this client IP address
-- order: published, uuid
-- late: json_extract(e.raw, '$.request.ipChain') AS ip_chain_detail
SELECT uuid, published, source, event_type, actor_login, actor_name, actor_id,
       outcome_result, outcome_reason, client_ip, geo_city, geo_state, geo_country,
       user_agent, ua_browser, ua_os, client_device, as_org, isp, is_proxy, display_message,
       severity, client_id, as_number, ip_domain, ip_chain, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND (
        (event_type = 'user.session.start' AND outcome_result IN ('FAILURE', 'DENY'))
     OR (event_type IN ('user.authentication.auth_via_mfa', 'user.authentication.verify')
         AND outcome_result = 'FAILURE')
  )
  AND ($user IS NULL OR lower(actor_login) = lower($user))
  AND ($ip IS NULL OR client_ip = $ip)
