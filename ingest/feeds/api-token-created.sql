-- title: API tokens created
-- description: Detection: a new Okta API token (system.api_token.create). A token acts with its
--   creator's privileges, does not expire while it is used and skips MFA, which makes it the
--   favourite persistence of an attacker holding an admin session; check that the creator
--   (actor_*) meant to create it and where from. token_id and token_name come from the target of
--   type Token.
-- param: actor string | only tokens created by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       [t.id FOR t IN targets IF t.type = 'Token'][1] AS token_id,
       [t.display_name FOR t IN targets IF t.type = 'Token'][1] AS token_name,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       display_message, severity, targets,
       rowid AS _rowid
FROM events
WHERE {{ in_window }}
  AND event_type = 'system.api_token.create'
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
