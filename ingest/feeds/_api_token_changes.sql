-- fragment: the body of the API token feeds (api-token-created, api-token-revoked), which
--   differ only in the event type they read. token_id and token_name come from the target of
--   type Token. Takes the parameter $actor. Use:
--   {{ api_token_changes event_type='system.api_token.create' }}
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       [t.id FOR t IN targets IF t.type = 'Token'][1] AS token_id,
       [t.display_name FOR t IN targets IF t.type = 'Token'][1] AS token_name,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type = {{ event_type }}
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
