-- title: Accounts locked out
-- description: Detection: accounts locked after too many failed sign-ins (user.account.lock) or
--   that reached the lockout limit and stay locked until an administrator acts
--   (user.account.lock.limit). A lockout is the visible end of a guessing attack, or of a user
--   with a stale password on a device; look at failed-logins and brute-force for the same user.
--   account_* is the locked user: the target of type User when the event has one, else the
--   actor.
-- param: user string | only this account: login (case-insensitive) or Okta user id
-- order: published, uuid
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_id ELSE actor_id END AS account_id,
       CASE WHEN target_user_id IS NOT NULL THEN target_user_login ELSE actor_login END
           AS account_login,
       actor_id, actor_type, actor_login, actor_name,
       {{ client_columns }},
       display_message, severity, targets
FROM events
WHERE {{ in_window }}
  AND event_type IN ('user.account.lock', 'user.account.lock.limit')
  AND ($user IS NULL OR (CASE WHEN target_user_id IS NOT NULL
                              THEN target_user_id = $user OR lower(target_user_login) = lower($user)
                              ELSE actor_id = $user OR lower(actor_login) = lower($user) END))
