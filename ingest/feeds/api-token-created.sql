-- title: API tokens created
-- description: Detection: a new Okta API token (system.api_token.create). A token acts with its
--   creator's privileges, does not expire while it is used and skips MFA, which makes it the
--   favourite persistence of an attacker holding an admin session; check that the creator
--   (actor_*) meant to create it and where from. token_id and token_name come from the target of
--   type Token.
-- param: actor string | only tokens created by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
{{ api_token_changes event_type='system.api_token.create' }}
