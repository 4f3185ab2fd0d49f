//! `agent-tag-tampering`: someone set or removed a role tag that makes a role's sessions an AI agent's.
//!
//! A role tag (`agents.role_tags`, e.g. `trailguard:agent=true`) is one of the signals agents are recognised by.
//! Anyone with `iam:TagRole` on a role can set it: tagging a production role would have trailguard revoke that
//! workload's sessions at its next sensitive call, and untagging an agent's role would hide the agent. So every
//! `TagRole` or `UntagRole` that touches one of those keys is news, except by the roles that deploy trailguard.
//! Request shapes (IAM API reference, `TagRole` / `UntagRole`): `roleName`, `tags` a list of `{key, value}`;
//! `roleName`, `tagKeys` a list of strings. User tags are never read for recognition, so `TagUser` is not judged.

use serde_json::Value;

use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

/// A forged or removed agent tag decides who trailguard revokes: alert, never act on a guess about who is
/// attacking whom.
pub struct AgentTagTampering;

impl Rule for AgentTagTampering {
    fn id(&self) -> &'static str {
        "agent-tag-tampering"
    }

    fn description(&self) -> &'static str {
        "Someone other than trailguard's deployment roles set or removed a role tag that marks the role's sessions \
         as an AI agent's: tagging a workload's role would have its sessions revoked, untagging an agent's role \
         would hide the agent."
    }

    fn response(&self) -> &'static str {
        "Alert only: confirm the tag change was planned; if not, restore the role's tags and review who holds \
         iam:TagRole (the optional SCP denies it on the agent tag keys)."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", &["TagRole", "UntagRole"])]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        if ctx.config.is_deployer(ctx.actor) {
            return Vec::new();
        }
        let agent_keys = ctx.config.agents.role_tag_keys();
        let is_agent_key = |key: &str| agent_keys.iter().any(|k| k.eq_ignore_ascii_case(key));
        let removing = ctx.record.event_name == "UntagRole";
        let touched: Vec<String> = match ctx.params {
            Some(params) if removing => string_list(params.get("tagKeys"))
                .into_iter()
                .filter(|k| is_agent_key(k))
                .map(|k| format!("`{k}`"))
                .collect(),
            // The same shapes as session tags: `{key, value}` in either case of the two names.
            Some(params) => crate::session::tag_list(params.get("tags"))
                .into_iter()
                .filter(|(k, _)| is_agent_key(k))
                .map(|(k, v)| format!("`{k}={v}`"))
                .collect(),
            None => Vec::new(),
        };
        if touched.is_empty() {
            return Vec::new();
        }
        let role = ctx.param("roleName").unwrap_or("?");
        let (verb, effect) = if removing {
            ("removed", "sessions of the role are no longer recognised as an agent's by that tag")
        } else {
            (
                "set",
                "sessions of the role would be recognised as an agent's, and so revoked at their next sensitive call",
            )
        };
        let title = format!("Agent role tag {verb} on role {role} by {}", ctx.actor.display_name());
        let target = Target { kind: "role".to_owned(), name: Some(role.to_owned()), ..Target::default() };
        let mut verdict = Verdict::new(Severity::Critical, title, target);
        verdict.notes.push(format!("{} {verb}: {effect}", touched.join(", ")));
        verdict.notes.push(
            "Anyone with iam:TagRole on a role can set these tags, so an agent recognised only by a role tag is \
             alerted on, not remediated, unless `remediation.trust_role_tags` says the keys are protected (the \
             optional SCP infra/scp.json denies iam:TagRole / iam:UntagRole on them to all but the deployment roles)."
                .to_owned(),
        );
        verdict.notes.push("Alert only: trailguard does not restore tags or act on the tagger.".to_owned());
        vec![verdict]
    }
}

fn string_list(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::event::input::parse_record;
    use crate::{Config, Engine};

    fn findings(identity_role: &str, name: &str, params: &str) -> Vec<crate::Finding> {
        let record = parse_record(&format!(
            r#"{{"eventSource":"iam.amazonaws.com","eventName":"{name}","eventTime":"2026-11-29T10:00:00Z",
               "eventID":"t1","recipientAccountId":"123456789012","requestParameters":{params},
               "userIdentity":{{"type":"AssumedRole","principalId":"AROAX:ops","accountId":"123456789012",
                 "arn":"arn:aws:sts::123456789012:assumed-role/{identity_role}/ops",
                 "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/{identity_role}"}}}}}}}}"#
        ))
        .unwrap();
        let config =
            Config::from_json(r#"{"deployment_role_arns":["arn:aws:iam::123456789012:role/deploy"]}"#).unwrap();
        Engine::new(config).evaluate_offline(&record).findings
    }

    #[test]
    fn tagging_a_role_as_an_agent_is_critical_and_alert_only() {
        let f = findings(
            "ops",
            "TagRole",
            r#"{"roleName":"payments","tags":[{"key":"team","value":"pay"},{"key":"trailguard:agent","value":"true"}]}"#,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "agent-tag-tampering");
        assert_eq!(f[0].severity, crate::Severity::Critical);
        assert!(f[0].remediation.is_empty() && !f[0].remediable);
        assert!(f[0].evidence.notes[0].contains("`trailguard:agent=true`"));
        let untag = findings("ops", "UntagRole", r#"{"roleName":"agent-box","tagKeys":["ai-agent"]}"#);
        assert_eq!(untag.len(), 1);
        assert!(untag[0].title.contains("removed"));
    }

    #[test]
    fn other_tag_keys_and_the_deployer_are_near_misses() {
        assert!(
            findings("ops", "TagRole", r#"{"roleName":"payments","tags":[{"key":"team","value":"pay"}]}"#).is_empty()
        );
        assert!(findings("ops", "UntagRole", r#"{"roleName":"payments","tagKeys":["team"]}"#).is_empty());
        let by_deployer =
            findings("deploy", "TagRole", r#"{"roleName":"bot","tags":[{"key":"trailguard:agent","value":"true"}]}"#);
        assert!(by_deployer.is_empty(), "{by_deployer:?}");
        assert!(findings("ops", "TagRole", r#"{"roleName":"payments"}"#).is_empty(), "a record without tags");
    }
}
