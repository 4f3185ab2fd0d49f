//! `admin-policy-grant`: a policy that makes a principal administrator, or able to make itself one.

use super::grant_view::grant_verdict;
use super::{Context, Rule, Trigger, Verdict};
use crate::change::{GrantKind, GRANT_EVENTS};
use crate::finding::Severity;

/// Full admin (`*` on `*`, AdministratorAccess), near-full (`Allow NotAction`, PowerUserAccess), or an
/// escalation action on any resource (IAMFullAccess, `iam:PutRolePolicy` on `*`, ...); and the removal of a
/// permissions boundary, which lets a principal's policies apply in full.
pub struct AdminPolicyGrant;

impl Rule for AdminPolicyGrant {
    fn id(&self) -> &'static str {
        "admin-policy-grant"
    }

    fn description(&self) -> &'static str {
        "A policy now grants administrator access, nearly all of AWS, or an action that lets the principal grant \
         itself anything (privilege escalation); or a permissions boundary was removed."
    }

    fn response(&self) -> &'static str {
        "Undo exactly this grant (detach, delete the inline policy, or roll back the version) and revoke the actor's session."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", GRANT_EVENTS)]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(view) = ctx.grant else { return Vec::new() };
        if view.grant.kind == GrantKind::RemoveBoundary {
            let what = "the principal's policies now apply without the limit the boundary set";
            return vec![grant_verdict(ctx, view, Severity::High, what, &[], Vec::new())];
        }
        let Some(grants) = &view.grants else { return Vec::new() };
        let boundary = view.grant.kind == GrantKind::PutBoundary;
        let verdict = if !grants.full_admin.is_empty() {
            let what = if boundary {
                "the boundary allows everything, so it no longer limits anything"
            } else {
                "grants full administrator access (every action on every resource)"
            };
            grant_verdict(
                ctx,
                view,
                if boundary { Severity::High } else { Severity::Critical },
                what,
                &grants.full_admin,
                Vec::new(),
            )
        } else if boundary {
            return Vec::new();
        } else if let Some((statements, share)) = &grants.near_admin {
            let what = format!("grants {:.0}% of all AWS actions on every resource (admin-equivalent)", share * 100.0);
            grant_verdict(ctx, view, Severity::High, &what, statements, Vec::new())
        } else if !grants.escalation.is_empty() {
            let mut actions: Vec<&str> = grants.escalation.iter().map(|(a, _)| a.as_str()).collect();
            let more = actions.len().saturating_sub(3);
            actions.truncate(3);
            if more > 0 {
                actions.push("...");
            }
            let mut statements: Vec<usize> = grants.escalation.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            statements.sort_unstable();
            statements.dedup();
            let what = format!("grants privilege escalation on any resource ({})", actions.join(", "));
            let all: Vec<&str> = grants.escalation.iter().map(|(a, _)| a.as_str()).collect();
            let note = format!(
                "each of these lets the principal give itself, or take over, any other permission: {}",
                all.join(", ")
            );
            grant_verdict(ctx, view, Severity::High, &what, &statements, vec![note])
        } else {
            return Vec::new();
        };
        vec![verdict]
    }
}
