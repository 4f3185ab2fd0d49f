//! `trust-policy-grant`: a trust policy that lets anyone, or an unknown account, assume a role.

use super::{Context, Rule, Trigger, Verdict};
use crate::change::TRUST_EVENTS;
use crate::finding::{Remediation, Severity, Target};
use crate::policy::TrustIssue;

/// A role is only as private as its trust policy.
pub struct TrustPolicyGrant;

impl Rule for TrustPolicyGrant {
    fn id(&self) -> &'static str {
        "trust-policy-grant"
    }

    fn description(&self) -> &'static str {
        "A role's trust policy now lets anyone, an organisation or account outside the configured ones, or any \
         identity of a web identity provider (any GitHub repository, or any of one organisation) assume it."
    }

    fn response(&self) -> &'static str {
        "Remove the offending statements from the trust policy, keep the rest, and revoke the actor's session."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", TRUST_EVENTS)]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(view) = ctx.trust else { return Vec::new() };
        let Ok(issues) = &view.issues else { return Vec::new() };
        if issues.is_empty() {
            return Vec::new();
        }
        let anyone = issues.iter().any(|i| matches!(i, TrustIssue::Anyone { .. }));
        let role = &view.change.role_name;
        let title = if anyone {
            format!("Trust policy of role {role} lets anyone assume it")
        } else {
            format!("Trust policy of role {role} lets outsiders assume it")
        };
        let target = Target { kind: "role".to_owned(), name: Some(role.clone()), ..Target::default() };
        let severity = if anyone {
            Severity::Critical
        } else if issues.iter().all(TrustIssue::is_lesser) {
            Severity::Medium
        } else {
            Severity::High
        };
        let mut verdict = Verdict::new(severity, title, target);
        verdict.notes = issues.iter().map(TrustIssue::describe).collect();
        let mut positions: Vec<usize> = issues.iter().map(TrustIssue::statement).collect();
        positions.dedup();
        if let Ok(doc) = &view.change.document {
            verdict.statements =
                positions.iter().filter_map(|&i| doc.statements.get(i).map(|s| s.raw.clone())).collect();
        }
        verdict.document = Some(view.change.raw.clone());
        verdict.remediation.push(Remediation::RemoveTrustStatements {
            account: ctx.account(),
            role_name: role.clone(),
            statements: verdict.statements.clone(),
        });
        verdict.remediation.extend(ctx.contain_actor());
        vec![verdict]
    }
}
