//! `agent-behaviour`: a session whose calls, each harmless alone, add up to misbehaviour within a window: a burst
//! of refused calls (probing), a run of deletions, an agent's reads across many services (enumeration). The
//! counting is [`crate::behaviour`]'s; this rule judges the
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
        "A session made more refused calls, or more deletions, within a window than the configured threshold, or an \
         agent read from more distinct services: probing what its credentials can do, deleting at a pace no person \
         does, or surveying the account."
    }

    fn response(&self) -> &'static str {
        "Revoke the session (and the sessions it chained into) and review the evidence events."
    }

    fn triggers(&self, config: &crate::config::Config) -> Vec<Trigger> {
        // The calls that reach the engine: what `agent-sensitive-call` subscribes to covers every `Delete*`; agents'
        // read calls, which no rule subscribes to, come keyed by the identity.
        let mut triggers = agent_sensitive_call::AgentSensitiveCall.triggers(config);
        triggers.push(Trigger::AgentReads);
        triggers
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some((kind, evidence)) = ctx.crossing else { return Vec::new() };
        let settings = &ctx.config.behaviour;
        let (threshold, minutes, what) = match kind {
            Kind::Denied => (settings.denied, settings.denied_minutes, "refused calls"),
            Kind::Deletions => (settings.deletions, settings.deletions_minutes, "deletions"),
            Kind::Services => (settings.services, settings.services_minutes, "services' read calls"),
        };
        let who = if ctx.actor.is_agent() { "AI agent" } else { "Session" };
        let title = match kind {
            Kind::Services => format!(
                "{who} {} read from more than {threshold} services within {minutes} minutes (enumeration)",
                ctx.actor.display_name()
            ),
            _ => {
                format!("{who} {} made more than {threshold} {what} within {minutes} minutes", ctx.actor.display_name())
            }
        };
        let mut verdict = Verdict::new(
            Severity::High,
            title,
            Target {
                kind: "session".to_owned(),
                name: ctx.actor.arn.as_deref().map(str::to_owned),
                ..Target::default()
            },
        );
        verdict.notes.extend(ctx.actor.agent.as_ref().map(crate::event::AgentMatch::note));
        verdict.notes.push(match kind {
            Kind::Services => format!(
                "{} distinct services read from in the window; the first call to each, as evidence:",
                evidence.len()
            ),
            _ => format!("{} {what} counted in the window; the evidence events:", evidence.len()),
        });
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

    /// It reads the count's answer, never the request: an agent's read calls need no tree built.
    fn reads_params(&self) -> bool {
        false
    }

    /// A crossing is no attempt, even when the last call was refused: the pattern is the danger.
    fn judges_failures_itself(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::behaviour::Counters;
    use crate::event::input::parse_record;
    use crate::session::Registry;
    use crate::{Config, Engine};

    const SERVICES: [&str; 6] = ["s3", "ec2", "dynamodb", "kms", "sns", "lambda"];

    /// A read-only call to `service` by `identity`, at 10:0<minute>.
    fn read(identity: &str, service: &str, id: &str, minute: u32) -> crate::event::CloudTrailRecord {
        parse_record(&format!(
            r#"{{"eventSource":"{service}.amazonaws.com","eventName":"ListThings","eventTime":"2026-11-29T10:0{minute}:00Z",
               "eventID":"{id}","readOnly":true,"recipientAccountId":"123456789012","userIdentity":{identity}}}"#
        ))
        .unwrap()
    }

    const AGENT: &str = r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:claude-run","accountId":"123456789012",
        "accessKeyId":"ASIAAGENT","arn":"arn:aws:sts::123456789012:assumed-role/dev/claude-run"}"#;
    const PERSON: &str = r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice","accountId":"123456789012",
        "accessKeyId":"ASIAALICE","arn":"arn:aws:sts::123456789012:assumed-role/dev/alice"}"#;

    /// The `agent-behaviour` findings' event ids, for each record counted in turn.
    fn crossings(engine: &Engine, records: &[crate::event::CloudTrailRecord]) -> Vec<String> {
        let (registry, counters) = (Registry::new(), Counters::default());
        records
            .iter()
            .flat_map(|r| engine.evaluate_registered(r, &registry, &counters).findings)
            .filter(|f| f.rule == "agent-behaviour")
            .map(|f| f.event_id.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn an_agent_reading_from_more_services_than_the_threshold_crosses_once() {
        let engine = Engine::new(Config::from_json(r#"{"behaviour":{"services":4,"services_minutes":10}}"#).unwrap());
        // Four services, each read twice: just at the threshold, nothing.
        let mut records: Vec<_> = (0..8).map(|i| read(AGENT, SERVICES[i % 4], &format!("e{i}"), 1)).collect();
        assert!(crossings(&engine, &records).is_empty());
        // The fifth service crosses, once; the sixth is past it; a repeat of the crossing event counts nothing.
        records.push(read(AGENT, "sns", "e-sns", 2));
        records.push(read(AGENT, "sns", "e-sns", 2));
        records.push(read(AGENT, "lambda", "e-lambda", 3));
        assert_eq!(crossings(&engine, &records), ["e-sns"]);
        let (registry, counters) = (Registry::new(), Counters::default());
        let findings: Vec<_> =
            records.iter().flat_map(|r| engine.evaluate_registered(r, &registry, &counters).findings).collect();
        let notes = findings[0].evidence.notes.join("\n");
        assert!(["e0", "e1", "e2", "e3", "e-sns"].iter().all(|id| notes.contains(id)), "{notes}");
        assert!(!notes.contains("e4") && !notes.contains("e-lambda"), "only each service's first call: {notes}");
        assert!(
            findings[0].title.contains("read from more than 4 services within 10 minutes"),
            "{}",
            findings[0].title
        );
        assert!(!findings[0].remediation.is_empty(), "an agent's session is contained");
        // In another window the count starts again.
        let later: Vec<_> = (0..5).map(|i| read(AGENT, SERVICES[i], &format!("l{i}"), 1)).collect();
        let mut both = records.clone();
        both.extend(later.iter().map(|r| {
            let mut r = r.clone();
            r.event_time = Some("2026-11-29T10:15:00Z".to_owned());
            r
        }));
        assert_eq!(crossings(&engine, &both), ["e-sns", "l4"]);
    }

    #[test]
    fn a_persons_reads_and_an_agents_writes_and_failures_are_not_enumeration() {
        let engine = Engine::new(Config::from_json(r#"{"behaviour":{"services":2,"services_minutes":10}}"#).unwrap());
        let person: Vec<_> = (0..6).map(|i| read(PERSON, SERVICES[i], &format!("p{i}"), 1)).collect();
        assert!(crossings(&engine, &person).is_empty(), "console browsing is not enumeration");
        assert!(engine.prepare(&person[0]).is_none(), "a person's read call is dropped before any look-up");
        let writes: Vec<_> = (0..6)
            .map(|i| {
                let mut r = read(AGENT, SERVICES[i], &format!("w{i}"), 1);
                r.read_only = Some(false);
                r.event_name = "TagResource".to_owned();
                r
            })
            .collect();
        assert!(crossings(&engine, &writes).is_empty());
        // Without `readOnly`, the name decides.
        let mut unmarked = read(AGENT, "s3", "u1", 1);
        unmarked.read_only = None;
        assert!(engine.prepare(&unmarked).is_some(), "`List*` reads");
        unmarked.event_name = "TagResource".to_owned();
        assert!(engine.prepare(&unmarked).is_none(), "`TagResource` does not");
    }

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
