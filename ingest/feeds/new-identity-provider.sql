-- title: Identity providers created or activated
-- description: Detection: an identity provider created (system.idp.lifecycle.create) or activated
--   (system.idp.lifecycle.activate). An attacker with admin rights who adds an inbound
--   federation provider can sign in as any user it routes, without their password or MFA (the
--   cross-tenant impersonation technique); a new provider should always match a planned
--   integration. The provider is in targets, its settings in debug_data.
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       display_message, severity, targets,
       rowid AS _rowid
FROM events
WHERE {{ in_window }}
  AND event_type IN ('system.idp.lifecycle.create', 'system.idp.lifecycle.activate')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
