//! `agent-sensitive-call`: an AI agent's session doing something people should know about.

use serde_json::Value;

use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};
use crate::wildcard;

/// Verbs of IAM's write actions.
const IAM_WRITE_PREFIXES: &[&str] = &[
    "Add",
    "Attach",
    "Change",
    "Create",
    "Deactivate",
    "Delete",
    "Detach",
    "Enable",
    "Put",
    "Remove",
    "Reset",
    "Resync",
    "Set",
    "Tag",
    "Untag",
    "Update",
    "Upload",
];

/// Parameters that name the touched resource, in the order they are tried.
const NAME_KEYS: &[&str] = &[
    "roleName",
    "userName",
    "groupName",
    "policyArn",
    "policyName",
    "groupId",
    "bucketName",
    "functionName",
    "tableName",
    "dBInstanceIdentifier",
    "secretId",
    "name",
    "keyId",
    "path",
];

/// Agents act fast and at scale; these calls are where a mistaken or hijacked agent does lasting harm.
/// Tampering with audit services or with trailguard is reported by its own rules for every actor.
pub struct AgentSensitiveCall;

impl Rule for AgentSensitiveCall {
    fn id(&self) -> &'static str {
        "agent-sensitive-call"
    }

    fn description(&self) -> &'static str {
        "An AI agent's session changed IAM, opened a security group to the internet, deleted or terminated \
         resources, read secrets in bulk, or made a call the configuration names as sensitive."
    }

    fn response(&self) -> &'static str {
        "Revoke the agent's session (its other sessions and other roles keep working) and review what it did."
    }

    fn triggers(&self, config: &crate::config::Config) -> Vec<Trigger> {
        let mut triggers = vec![
            Trigger::prefixed(Some("iam.amazonaws.com"), IAM_WRITE_PREFIXES),
            Trigger::exact(
                "ec2.amazonaws.com",
                &["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "TerminateInstances"],
            ),
            Trigger::prefixed(None, &["Delete"]),
            Trigger::exact("secretsmanager.amazonaws.com", &["BatchGetSecretValue"]).reading(),
            Trigger::exact("ssm.amazonaws.com", &["GetParametersByPath"]).reading(),
        ];
        for call in &config.sensitive_calls {
            let Some((service, name)) = call.split_once(':') else { continue };
            let source = format!("{service}.amazonaws.com");
            let trigger = match name.strip_suffix('*') {
                Some(prefix) => Trigger::prefixed(Some(&source), &[prefix]),
                None => Trigger::exact(&source, &[name]),
            };
            triggers.push(trigger.reading());
        }
        triggers
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(agent) = &ctx.actor.agent else { return Vec::new() };
        let record = ctx.record;
        let action = record.action();
        let name = &record.event_name;
        let (severity, what) = match record.event_source.as_str() {
            "iam.amazonaws.com" if IAM_WRITE_PREFIXES.iter().any(|p| name.starts_with(p)) => {
                (Severity::High, "changed IAM")
            }
            "ec2.amazonaws.com" if name == "AuthorizeSecurityGroupIngress" || name == "ModifySecurityGroupRules" => {
                if !ctx.params.is_some_and(opens_to_world) {
                    return self.configured(ctx);
                }
                (Severity::High, "opened a security group to the internet")
            }
            "ec2.amazonaws.com" if name == "TerminateInstances" => (Severity::Medium, "terminated instances"),
            "secretsmanager.amazonaws.com" if name == "BatchGetSecretValue" => (Severity::High, "read secrets in bulk"),
            "ssm.amazonaws.com" if name == "GetParametersByPath" => {
                if ctx.params.and_then(|p| p.get("withDecryption")) != Some(&Value::Bool(true)) {
                    return self.configured(ctx);
                }
                (Severity::High, "read decrypted parameters in bulk")
            }
            _ if name.starts_with("Delete") => (Severity::Medium, "deleted a resource"),
            _ => return self.configured(ctx),
        };
        vec![self.verdict(ctx, severity, &format!("AI agent {} {what}: {action}", ctx.actor.display_name()), agent)]
    }

    fn yields_to_others(&self) -> bool {
        true
    }
}

impl AgentSensitiveCall {
    /// Calls the configuration names.
    fn configured(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(agent) = &ctx.actor.agent else { return Vec::new() };
        let action = ctx.record.action();
        if !ctx.config.sensitive_calls.iter().any(|c| wildcard::matches(c, &action, true)) {
            return Vec::new();
        }
        let title = format!("AI agent {} made a sensitive call: {action}", ctx.actor.display_name());
        vec![self.verdict(ctx, Severity::Medium, &title, agent)]
    }

    fn verdict(&self, ctx: &Context<'_>, severity: Severity, title: &str, agent: &crate::event::AgentMatch) -> Verdict {
        let name = NAME_KEYS.iter().find_map(|k| ctx.param(k)).map(str::to_owned);
        let kind = ctx.record.event_source.split('.').next().unwrap_or("resource").to_owned();
        let mut verdict = Verdict::new(severity, title, Target { kind, name, ..Target::default() });
        verdict.notes.push(agent.note());
        verdict.remediation = ctx.contain_actor();
        verdict.notes.extend(ctx.containment_notes());
        verdict
    }
}

/// Whether security group parameters hold a world-open range (`0.0.0.0/0` or `::/0`), wherever the request
/// shape puts it (`ipPermissions.items[].ipRanges.items[].cidrIp`, `CidrIpv4` in `ModifySecurityGroupRules`, ...).
fn opens_to_world(params: &Value) -> bool {
    match params {
        Value::Object(map) => map.iter().any(|(key, value)| {
            (key.to_ascii_lowercase().contains("cidr") && matches!(value.as_str(), Some("0.0.0.0/0" | "::/0")))
                || opens_to_world(value)
        }),
        Value::Array(items) => items.iter().any(opens_to_world),
        _ => false,
    }
}
