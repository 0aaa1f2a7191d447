-- title: Identity provider changes
-- description: Detection: every change to an identity provider (system.idp.lifecycle.create,
--   .activate, .update, .deactivate, .delete) and every read of a provider's client secret
--   (system.idp.lifecycle.read_client_secret). An attacker with admin rights who adds or
--   re-points an inbound federation provider can sign in as any user it routes, without their
--   password or MFA (the cross-tenant impersonation technique); one who reads a client secret
--   can impersonate the org to the provider; a deactivated or deleted provider locks its users
--   out. Each change should match a planned integration. The provider is in targets, its
--   settings in debug_data. (The feed kept its name from when it listed only created and
--   activated providers.)
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type IN ('system.idp.lifecycle.create', 'system.idp.lifecycle.activate',
                     'system.idp.lifecycle.update', 'system.idp.lifecycle.deactivate',
                     'system.idp.lifecycle.delete', 'system.idp.lifecycle.read_client_secret')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
