-- title: API tokens revoked
-- description: Detection: an Okta API token revoked (system.api_token.revoke). Revoking a
--   token is how an incident is contained, and also how an insider or intruder breaks the
--   integrations that run on it (provisioning, log collection, oktaduck itself when it reads
--   with a token); check that a revocation matches a planned rotation or a response, and who did
--   it (actor_*) from where. token_id and token_name come from the target of type Token.
-- param: actor string | only tokens revoked by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
{{ api_token_changes event_type='system.api_token.revoke' }}
