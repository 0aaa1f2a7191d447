-- fragment: the body of the MFA factor feeds (mfa-factor-reset, mfa-factor-suspended), which
--   differ only in the event types they read. account_* is the user whose factor changed: the
--   target of type User when the event has one, else the actor; factor is the target of type
--   AuthenticatorEnrollment. Takes the parameters $user and $actor. Use:
--   {{ mfa_factor_changes event_types="'user.mfa.factor.deactivate', 'user.mfa.factor.reset_all'" }}
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_id ELSE actor_id END AS account_id,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_login ELSE actor_login END
           AS account_login,
       [t.display_name FOR t IN targets IF t.type = 'AuthenticatorEnrollment'][1] AS factor,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type IN ({{ event_types }})
  AND ($user IS NULL OR (CASE WHEN target_user_id IS NOT NULL
                              THEN target_user_id = $user OR lower(target_user_login) = lower($user)
                              ELSE actor_id = $user OR lower(actor_login) = lower($user) END))
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
