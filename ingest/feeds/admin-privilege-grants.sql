-- title: Administrator privileges granted
-- description: Detection: an admin role given to a user (user.account.privilege.grant), to a
--   group (group.privilege.grant), or as a custom role binding over a resource set
--   (iam.resourceset.bindings.add). Attackers who take over an admin account grant themselves
--   or a second account lasting privileges first, so every grant deserves a look: expected
--   grants match a change ticket, the rest are an incident. privilege is the role Okta names
--   (debugData.privilegeGranted) where the event carries it; debug_data has the rest.
-- param: actor string | only grants made by this actor: login (case-insensitive) or id
-- param: grantee string | only grants to this user (login or id) or group (name or id), any case
-- order: published, uuid
-- late: json_extract_string(e.raw, '$.debugContext.debugData.privilegeGranted') AS privilege
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       target_user_id, target_user_login, target_user_name, target_group_id, target_group_name,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type IN ('user.account.privilege.grant', 'group.privilege.grant',
                     'iam.resourceset.bindings.add')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
  AND ($grantee IS NULL OR target_user_id = $grantee OR lower(target_user_login) = lower($grantee)
       OR target_group_id = $grantee OR lower(target_group_name) = lower($grantee))
