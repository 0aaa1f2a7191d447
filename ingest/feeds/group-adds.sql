-- title: Users added to groups
-- description: Group membership additions (group.user_membership.add), as Cortex XSOAR's
--   okta-get-group-assignments: the user added (the target of type User), the group (the target
--   of type UserGroup), who made the change (actor_*: an administrator, an API token's owner or
--   Okta itself for group rules), where from, and the outcome.
-- param: user string | only this user added: login (case-insensitive) or Okta user id
-- param: group string | only this group: name (case-insensitive) or group id
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- order: published, uuid
-- late: json_extract(e.raw, '$.request.ipChain') AS ip_chain_detail
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       target_user_id, target_user_login, target_user_name, target_group_id, target_group_name,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type = 'group.user_membership.add'
  AND ($user IS NULL OR target_user_id = $user OR lower(target_user_login) = lower($user))
  AND ($group IS NULL OR target_group_id = $group OR lower(target_group_name) = lower($group))
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
