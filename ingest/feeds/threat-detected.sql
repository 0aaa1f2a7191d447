-- title: Threats detected and requests blocked
-- description: Detection: Okta ThreatInsight flagged a request (security.threat.detected: password
--   spraying, credential stuffing, brute force, with the details in threat_detections) or Okta
--   blocked one (security.request.blocked). These are Okta's own verdicts on the source address;
--   a burst of them shows an attack under way, and a sign-in that succeeds from the same address
--   afterwards is the one to chase.
-- param: ip string | only requests from this client IP address
-- order: published, uuid
-- late: json_extract_string(e.raw, '$.debugContext.debugData.threatDetections') AS threat_detections
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       threat_suspected, risk_level,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       request_uri, display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type IN ('security.threat.detected', 'security.request.blocked')
  AND ($ip IS NULL OR client_ip = $ip)
