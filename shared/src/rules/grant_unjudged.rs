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
        // Offline nothing is looked up: that is a note of the scan, not a blind spot of the deployed guardrail.
        if reason.contains("(not looked up)") || !view.grant.in_effect {
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
