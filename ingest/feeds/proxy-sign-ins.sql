-- title: Sign-ins through proxies and anonymizers
-- description: Detection: sign-in attempts (user.session.start) from an address Okta knows as a
--   proxy (securityContext.isProxy true) or through a tunnel Okta marks anonymous (an entry with
--   "anonymous": true in debugData.tunnels). Attackers replaying stolen credentials hide behind
--   VPN exits, residential proxies and Tor; legitimate users rarely sign in through them. Failed
--   attempts are included unless success_only is set: they show someone trying.
-- param: user string | only this login (actor.alternateId), case-insensitive
-- param: success_only bool = false | only sign-ins that succeeded
-- order: published, uuid
-- late: json_extract_string(e.raw, '$.debugContext.debugData.tunnels') AS tunnels
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       client_ip, is_proxy,
       as_number, as_org, isp, ip_domain, geo_city, geo_state, geo_country,
       client_id, user_agent, ua_browser, ua_os, client_device, risk_level, threat_suspected,
       ip_chain, display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type = 'user.session.start'
  AND (is_proxy
       OR regexp_matches(coalesce(json_extract_string(raw, '$.debugContext.debugData.tunnels'), ''),
                         '"anonymous"\s*:\s*true'))
  AND ($user IS NULL OR lower(actor_login) = lower($user))
  AND (NOT coalesce($success_only, false) OR outcome_result = 'SUCCESS')
