//! `agent-behaviour`: a session whose calls, each harmless alone, add up to misbehaviour within a window: a burst
//! of refused calls (probing), a run of deletions. The counting is [`crate::behaviour`]'s; this rule judges the
//! count the engine took for the event.

use super::{agent_sensitive_call, Context, Rule, Trigger, Verdict};
use crate::behaviour::Kind;
use crate::finding::{Severity, Target};

/// Misbehaviour over time. Agents are enforced by default, people alerted on, as for every rule.
pub struct AgentBehaviour;

impl Rule for AgentBehaviour {
    fn id(&self) -> &'static str {
        "agent-behaviour"
    }

    fn description(&self) -> &'static str {
        "A session made more refused calls, or more deletions, within a window than the configured threshold: \
         probing what its credentials can do, or deleting at a pace no person does."
    }

    fn response(&self) -> &'static str {
        "Revoke the session (and the sessions it chained into) and review the evidence events."
    }

    fn triggers(&self, config: &crate::config::Config) -> Vec<Trigger> {
        // The calls that reach the engine: what `agent-sensitive-call` subscribes to covers every `Delete*`.
        agent_sensitive_call::AgentSensitiveCall.triggers(config)
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some((kind, evidence)) = ctx.crossing else { return Vec::new() };
        let settings = &ctx.config.behaviour;
        let (threshold, minutes, what) = match kind {
            Kind::Denied => (settings.denied, settings.denied_minutes, "refused calls"),
            Kind::Deletions => (settings.deletions, settings.deletions_minutes, "deletions"),
        };
        let who = if ctx.actor.is_agent() { "AI agent" } else { "Session" };
        let title =
            format!("{who} {} made more than {threshold} {what} within {minutes} minutes", ctx.actor.display_name());
        let mut verdict = Verdict::new(
            Severity::High,
            title,
            Target { kind: "session".to_owned(), name: ctx.actor.arn.clone(), ..Target::default() },
        );
        if let Some(agent) = &ctx.actor.agent {
            verdict.notes.push(format!(
                "recognised as an agent by {} `{}` (pattern `{}`)",
                agent.signal, agent.value, agent.pattern
            ));
        }
        verdict.notes.push(format!("{} {what} counted in the window; the evidence events:", evidence.len()));
        verdict.notes.extend(evidence.iter().map(|e| format!("{} {} {}", e.time, e.call, e.id)));
        if kind == Kind::Deletions {
            verdict.notes.push(
                "S3 object deletions are data events: counted only where the trail logs S3 data events.".to_owned(),
            );
        }
        verdict.remediation = ctx.contain_actor();
        verdict.notes.extend(ctx.containment_notes());
        vec![verdict]
    }

    /// A crossing is no attempt, even when the last call was refused: the pattern is the danger.
    fn judges_failures_itself(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::event::input::parse_record;
    use crate::{Config, Engine};

    fn notes(identity: &str) -> Vec<String> {
        let record = parse_record(&format!(
            r#"{{"eventSource":"logs.amazonaws.com","eventName":"DeleteLogGroup","eventTime":"2026-11-29T10:00:00Z",
               "eventID":"e1","recipientAccountId":"123456789012","userIdentity":{identity}}}"#
        ))
        .unwrap();
        let findings = Engine::new(Config::default()).evaluate_offline(&record).findings;
        assert_eq!(findings.len(), 1, "{identity}");
        findings[0].evidence.notes.clone()
    }

    #[test]
    fn each_identity_type_says_what_containment_cannot_do() {
        let sso = notes(
            r#"{"type":"AssumedRole","principalId":"AROASSO:agent-run-1","accountId":"123456789012",
                "arn":"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AgentAccess_0123abcd/agent-run-1"}"#,
        );
        assert!(sso.iter().any(|n| n.contains("Permission sets > `AgentAccess`") && n.contains("AROASSO:agent-run-1")));
        let user = notes(
            r#"{"type":"IAMUser","userName":"agent-bot","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE",
                "arn":"arn:aws:iam::123456789012:user/agent-bot"}"#,
        );
        assert!(user.iter().any(|n| n.contains("derived") && n.contains("aws:TokenIssueTime")));
        let federated = notes(
            r#"{"type":"FederatedUser","principalId":"123456789012:agent-x","accountId":"123456789012",
                "arn":"arn:aws:sts::123456789012:federated-user/agent-x","sourceIdentity":"x",
                "sessionContext":{"sourceIdentity":"claude-code"}}"#,
        );
        assert!(federated.iter().any(|n| n.contains("issued them") && n.contains("no chained sessions")));
        let console = notes(
            r#"{"type":"IAMUser","userName":"agent-bot","accountId":"123456789012","accessKeyId":"ASIACONSOLE",
                "arn":"arn:aws:iam::123456789012:user/agent-bot","principalId":"AIDAEXAMPLE"}"#,
        );
        assert!(console.iter().any(|n| n.contains("sign-in session") && n.contains("could not verify")), "{console:?}");
    }

    const SSO_SESSION: &str = r#"{"type":"AssumedRole","principalId":"AROASSO:agent-run-1","accountId":"123456789012",
        "arn":"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Agent_Access_0123abcd/agent-run-1"}"#;

    fn sso_finding(config: Config) -> crate::finding::Finding {
        let record = parse_record(&format!(
            r#"{{"eventSource":"logs.amazonaws.com","eventName":"DeleteLogGroup","eventTime":"2026-11-29T10:00:00Z",
               "eventID":"e1","recipientAccountId":"123456789012","userIdentity":{SSO_SESSION}}}"#
        ))
        .unwrap();
        let mut findings = Engine::new(config).evaluate_offline(&record).findings;
        assert_eq!(findings.len(), 1);
        findings.remove(0)
    }

    #[test]
    fn without_the_sso_admin_role_an_identity_center_session_gets_the_steps_printed() {
        let finding = sso_finding(Config::default());
        let steps: Vec<_> = finding.remediation.iter().map(|r| r.describe()).collect();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(steps[0].starts_with("revoke session AROASSO:agent-run-1"));
        // A permission set's name may hold underscores; the role's hash holds none.
        let note = "Containment: `AWSReservedSSO_Agent_Access_0123abcd` belongs to IAM Identity Center and cannot be \
                    edited in IAM. In the management (or delegated administrator) account: IAM Identity Center > \
                    Permission sets > `Agent_Access` > inline policy: add a Deny of `*` with condition `StringEquals \
                    aws:userid = AROASSO:agent-run-1` and `DateLessThan aws:TokenIssueTime = <now>`, save, then \
                    re-provision the permission set to account 123456789012.";
        assert!(finding.evidence.notes.iter().any(|n| n == note), "{:?}", finding.evidence.notes);
    }

    #[test]
    fn with_the_sso_admin_role_an_identity_center_session_gets_the_permission_set_step() {
        let config = Config::from_json(
            r#"{"remediation":{"sso_admin_role_arn":"arn:aws:iam::111122223333:role/trailguard-sso-admin"}}"#,
        )
        .unwrap();
        let finding = sso_finding(config);
        let sso = finding.remediation.iter().find_map(|r| match r {
            crate::finding::Remediation::DenySsoUserInPermissionSet { permission_set, user_id, account, .. } => {
                Some((permission_set.clone(), user_id.clone(), account.clone()))
            }
            _ => None,
        });
        assert_eq!(sso, Some(("Agent_Access".into(), "AROASSO:agent-run-1".into(), "123456789012".into())));
        // The role's own revocation stays: it is skipped at execution only when IAM shows Identity Center's path.
        assert_eq!(finding.remediation.len(), 2);
        assert!(finding.evidence.notes.iter().any(|n| n.contains("trailguard adds a Deny")
            && n.contains("arn:aws:iam::111122223333:role/trailguard-sso-admin")));
        assert!(!finding.evidence.notes.iter().any(|n| n.contains("Permission sets >")));
    }
}
