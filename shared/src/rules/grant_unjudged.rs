//! `grant-unjudged`: a grant whose policy document trailguard tried to read and could not.

use super::{Context, Rule, Trigger, Verdict};
use crate::change::GRANT_EVENTS;
use crate::finding::Severity;

/// Unknown is never silence: a managed policy attached or made default whose document could not be read
/// (deleted before the look-up, access denied, the member role gone) may grant anything. Offline, where nothing
/// is looked up, this stays a note rather than a finding.
pub struct GrantUnjudged;

impl Rule for GrantUnjudged {
    fn id(&self) -> &'static str {
        "grant-unjudged"
    }

    fn description(&self) -> &'static str {
        "A policy was attached, put or made default, but trailguard could not read its document, so it could not \
         judge what the policy grants."
    }

    fn response(&self) -> &'static str {
        "Read the policy by hand (or fix trailguard's access) and judge it; trailguard undoes nothing it cannot judge."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", GRANT_EVENTS)]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(view) = ctx.grant else { return Vec::new() };
        let Some(reason) = view.unavailable.as_deref() else { return Vec::new() };
        // Only a look-up that was made and failed. Offline nothing is looked up: a note of the scan, not a blind
        // spot of the deployed guardrail. A document in the request that does not parse is a warning: IAM
        // accepted it, so what went wrong is the record, not the grant.
        if !reason.starts_with("document not available:") || !view.grant.in_effect {
            return Vec::new();
        }
        let severity = if ctx.actor.is_agent() { Severity::High } else { Severity::Medium };
        let title = format!("Grant could not be judged: {}", view.subject());
        let mut verdict = Verdict::new(severity, title, view.target());
        verdict.notes.push(format!("{reason}."));
        verdict.notes.push("Nothing was undone: trailguard acts only on what it can judge.".to_owned());
        vec![verdict]
    }

    /// A specific rule that did judge the event says more; this one stays only beside the general agent rule.
    fn yields_to_others(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, Resolved};
    use crate::event::parse_record;
    use crate::Config;

    fn attach(session: &str) -> crate::event::CloudTrailRecord {
        let json = format!(
            r#"{{"eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","recipientAccountId":"123456789012",
            "userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/dev/{session}",
              "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/dev","userName":"dev"}}}}}},
            "requestParameters":{{"roleName":"app","policyArn":"arn:aws:iam::123456789012:policy/gone"}}}}"#
        );
        parse_record(&json).unwrap()
    }

    fn rules(session: &str, resolved: &Resolved) -> Vec<(String, String)> {
        let engine = Engine::new(Config::default());
        let record = attach(session);
        let prepared = engine.prepare(&record).unwrap();
        let evaluation = engine.evaluate(&prepared, resolved);
        evaluation.findings.iter().map(|f| (f.rule.clone(), f.severity.to_string())).collect()
    }

    #[test]
    fn a_failed_look_up_is_a_finding_and_no_look_up_is_not() {
        let mut failed = Resolved::default();
        failed.policies.insert(
            ("arn:aws:iam::123456789012:policy/gone".into(), None),
            Err("`iam:GetPolicy` failed (NotFound): no such policy".into()),
        );
        let person = rules("alice@example.com", &failed);
        assert_eq!(person, [("grant-unjudged".to_owned(), "medium".to_owned())]);
        let agent = rules("agent-1", &failed);
        assert!(agent.contains(&("grant-unjudged".to_owned(), "high".to_owned())), "{agent:?}");
        assert!(rules("alice@example.com", &Resolved::default()).is_empty(), "offline: a note, not a finding");
    }
}
