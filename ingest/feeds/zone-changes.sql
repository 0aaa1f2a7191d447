-- title: Network zones deactivated or deleted
-- description: Detection: a network zone deactivated (zone.deactivate) or deleted (zone.delete).
--   Policies use zones to block anonymizers and hostile countries or to trust the office;
--   removing a blocklist zone quietly reopens the door to those addresses. zone_* is the target
--   of type NetworkZone.
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       [t.id FOR t IN targets IF t.type = 'NetworkZone'][1] AS zone_id,
       [t.display_name FOR t IN targets IF t.type = 'NetworkZone'][1] AS zone_name,
       actor_id, actor_type, actor_login, actor_name,
       client_ip, client_id, user_agent, ua_browser, ua_os, client_device,
       geo_city, geo_state, geo_country, as_number, as_org, isp, ip_domain, is_proxy,
       ip_chain, display_message, severity, targets,
       rowid AS _rowid
FROM events
WHERE published >= $since AND published < $until
  AND ($source IS NULL OR source = $source)
  AND event_type IN ('zone.deactivate', 'zone.delete')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
