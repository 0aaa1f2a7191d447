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
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type IN ('zone.deactivate', 'zone.delete')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
