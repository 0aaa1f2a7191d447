-- title: MFA factors suspended or deactivated
-- description: Detection: a user's MFA factor suspended (user.mfa.factor.suspend, Identity
--   Engine; Okta or an admin suspends a factor it suspects is compromised, until
--   user.mfa.factor.unsuspend) or deactivated (user.mfa.factor.deactivate: removed for good, or
--   an authentication method unenrolled). Either leaves the user with fewer factors, and an
--   attacker who then enrolls their own owns the account; a suspension also says Okta saw
--   something wrong with the factor. account_* is the user whose factor changed: the target of
--   type User when the event has one, else the actor (a user removing their own factor); factor
--   is the target of type AuthenticatorEnrollment, when present. Deactivations are also in
--   mfa-factor-reset, with the resets of all factors.
-- param: user string | only this account: login (case-insensitive) or Okta user id
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_id ELSE actor_id END AS account_id,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_login ELSE actor_login END
           AS account_login,
       [t.display_name FOR t IN targets IF t.type = 'AuthenticatorEnrollment'][1] AS factor,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       display_message, severity, targets,
       rowid AS _rowid
FROM events
WHERE {{ in_window }}
  AND event_type IN ('user.mfa.factor.suspend', 'user.mfa.factor.deactivate')
  AND ($user IS NULL OR (CASE WHEN target_user_id IS NOT NULL
                              THEN target_user_id = $user OR lower(target_user_login) = lower($user)
                              ELSE actor_id = $user OR lower(actor_login) = lower($user) END))
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
