-- title: Users assigned to applications
-- description: Application assignments (application.user_membership.add), as Cortex XSOAR's
--   okta-get-application-assignments: the application (the target of type AppInstance), the user
--   (the target of type User) and the user's login in the application (the target of type
--   AppUser), who made the assignment (actor_*), where from, and the outcome. The legacy type
--   app.generic.provision.assign_user_to_app is the same event.
-- param: user string | only this user: login or app login (case-insensitive), or Okta user id
-- param: app string | only this application: name (case-insensitive) or app id
-- param: actor string | only assignments made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.request.ipChain') AS ip_chain_detail
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       target_app_id, target_app_name, target_user_id, target_user_login, target_user_name,
       target_app_user_login,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type = 'application.user_membership.add'
  AND ($user IS NULL OR target_user_id = $user OR lower(target_user_login) = lower($user)
       OR lower(target_app_user_login) = lower($user))
  AND ($app IS NULL OR target_app_id = $app OR lower(target_app_name) = lower($app))
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
