-- title: Impersonation sessions
-- description: Detection: the life of an impersonation session, in which Okta support signs in
--   as a user of the org after an administrator granted it access: grants
--   (user.session.impersonation.grant), sessions started (.initiate), extended (.extend), ended
--   (.end) and grants revoked (.revoke). Whoever impersonates sees and does what the user can;
--   every grant and session should match a support case the org opened. actor_* is who acted,
--   target_user_* the user concerned.
-- param: actor string | only this actor: login (case-insensitive) or id
-- param: user string | only sessions on this user: login (case-insensitive) or Okta user id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       actor_id, actor_type, actor_login, actor_name,
       target_user_id, target_user_login, target_user_name,
       {{ client_columns }},
       display_message, severity, targets,
       ingest_seq AS _seq
FROM events
WHERE {{ in_window }}
  AND event_type IN ('user.session.impersonation.grant', 'user.session.impersonation.initiate',
                     'user.session.impersonation.extend', 'user.session.impersonation.end',
                     'user.session.impersonation.revoke')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
  AND ($user IS NULL OR target_user_id = $user OR lower(target_user_login) = lower($user))
