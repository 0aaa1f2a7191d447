-- title: Policy changes
-- description: Detection: sign-on, password, MFA enrollment and other policies or their rules
--   created, updated, overwritten, deleted, activated or deactivated (policy.lifecycle.create,
--   .update, .overwrite, .delete, .activate, .deactivate; policy.rule.add, .update, .delete,
--   .activate, .deactivate). Weakening a policy (dropping an MFA requirement, widening a network
--   zone rule) is how an intruder keeps access quietly; review each change against its ticket.
--   policy_* is the target of type PolicyEntity, rule_* the target of type PolicyRule, when
--   present. Rule invalidations by Okta itself (policy.rule.invalidate) are not changes by a
--   person and are left out.
-- param: actor string | only changes made by this actor: login (case-insensitive) or id
-- param: policy string | only this policy: name (case-insensitive) or policy id
-- order: published, uuid
-- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data
SELECT uuid, published, source, event_type, outcome_result, outcome_reason,
       [t.id FOR t IN targets IF t.type = 'PolicyEntity'][1] AS policy_id,
       [t.display_name FOR t IN targets IF t.type = 'PolicyEntity'][1] AS policy_name,
       [t.id FOR t IN targets IF t.type = 'PolicyRule'][1] AS rule_id,
       [t.display_name FOR t IN targets IF t.type = 'PolicyRule'][1] AS rule_name,
       {{ event_columns }}
FROM events
WHERE {{ in_window }}
  AND event_type IN ('policy.lifecycle.create', 'policy.lifecycle.update',
                     'policy.lifecycle.overwrite', 'policy.lifecycle.delete',
                     'policy.lifecycle.activate', 'policy.lifecycle.deactivate',
                     'policy.rule.add', 'policy.rule.update', 'policy.rule.delete',
                     'policy.rule.activate', 'policy.rule.deactivate')
  AND ($actor IS NULL OR actor_id = $actor OR lower(actor_login) = lower($actor))
  AND ($policy IS NULL
       OR len([t FOR t IN targets IF t.type = 'PolicyEntity'
                  AND (t.id = $policy OR lower(t.display_name) = lower($policy))]) > 0)
