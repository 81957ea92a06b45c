//! Argo CD's side of kvop, generated: the health check (from the reason table,
//! [`super::reasons`]) and the resource actions "reconcile", "pause" and "resume", as the
//! `argocd-cm` entries that register them for every kind. docs/gitops.md shows exactly
//! this (tests/generated_files.rs), and tests/gitops_health.rs runs it under gopher-lua.

use super::reasons::{Health, REASONS};
use super::status::PAUSED;
use crate::spec::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION};

/// The health check of every kind, in Lua.
pub fn health_lua() -> String {
    let stalled: Vec<String> = REASONS
        .iter()
        .filter(|reason| reason.health == Health::Stalled)
        .map(|reason| format!("  {} = true,", reason.name))
        .collect();
    format!(
        r#"-- Generated from kvop's reason table (src/operator/reasons.rs).
local stalled = {{
{}
}}
hs = {{status = "Progressing", message = "waiting for kvop"}}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "kvop has not seen the latest spec yet"
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Synced" and condition.reason == "{paused}" then
    hs.status = "Suspended"
    hs.message = condition.message
    return hs
  end
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    hs.message = condition.reason .. ": " .. (condition.message or "")
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif stalled[condition.reason] then
      hs.status = "Degraded"
    end
  end
end
return hs
"#,
        stalled.join("\n"),
        paused = PAUSED,
    )
}

/// The `argocd-cm` entries that register the health check and the actions for both
/// kinds.
pub fn config_map() -> String {
    let indent = |text: String, by: &str| -> String {
        text.lines()
            .map(|line| {
                if line.is_empty() {
                    "\n".to_string()
                } else {
                    format!("{by}{line}\n")
                }
            })
            .collect()
    };
    let health = indent(health_lua(), "    ");
    let discovery = indent(discovery_lua(), "      ");
    let reconcile = indent(reconcile_lua(), "          ");
    let pause = indent(pause_lua(true), "          ");
    let resume = indent(pause_lua(false), "          ");
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n  resource.customizations.health.kvop.dev_KeyValueBucket: &kvop-health |\n{health}  resource.customizations.health.kvop.dev_KeyValueEntry: *kvop-health\n  resource.customizations.health.kvop.dev_KeyValueEntrySet: *kvop-health\n  resource.customizations.actions.kvop.dev_KeyValueBucket: &kvop-actions |\n    discovery.lua: |\n{discovery}    definitions:\n      - name: reconcile\n        action.lua: |\n{reconcile}      - name: pause\n        action.lua: |\n{pause}      - name: resume\n        action.lua: |\n{resume}  resource.customizations.actions.kvop.dev_KeyValueEntry: *kvop-actions\n  resource.customizations.actions.kvop.dev_KeyValueEntrySet: *kvop-actions\n"
    )
}

/// The actions' discovery: all three, "pause" offered only while not paused and
/// "resume" only while paused.
pub fn discovery_lua() -> String {
    format!(
        r#"local paused = obj.metadata.annotations ~= nil
  and obj.metadata.annotations["{PAUSED_ANNOTATION}"] == "true"
actions = {{}}
actions["reconcile"] = {{}}
actions["pause"] = {{["disabled"] = paused}}
actions["resume"] = {{["disabled"] = not paused}}
return actions
"#
    )
}

/// "reconcile": asks kvop for a reconcile now, as `kubectl annotate` would.
pub fn reconcile_lua() -> String {
    format!(
        r#"if obj.metadata.annotations == nil then
  obj.metadata.annotations = {{}}
end
obj.metadata.annotations["{RECONCILE_REQUESTED_ANNOTATION}"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
"#
    )
}

/// "pause" and "resume": sets or removes the pause annotation.
pub fn pause_lua(pause: bool) -> String {
    if pause {
        format!(
            r#"if obj.metadata.annotations == nil then
  obj.metadata.annotations = {{}}
end
obj.metadata.annotations["{PAUSED_ANNOTATION}"] = "true"
return obj
"#
        )
    } else {
        format!(
            r#"if obj.metadata.annotations ~= nil then
  obj.metadata.annotations["{PAUSED_ANNOTATION}"] = nil
end
return obj
"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lua_marks_exactly_the_stalled_reasons_degraded() {
        let lua = health_lua();
        for reason in REASONS {
            let listed = lua.contains(&format!("  {} = true,", reason.name));
            assert_eq!(listed, reason.health == Health::Stalled, "{}", reason.name);
        }
    }
}
