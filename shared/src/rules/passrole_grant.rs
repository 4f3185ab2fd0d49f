//! `passrole-grant`: `iam:PassRole` on any role without an `iam:PassedToService` limit.

use super::grant_view::grant_verdict;
use super::{Context, Rule, Trigger, Verdict};
use crate::change::{GrantKind, GRANT_EVENTS};
use crate::finding::Severity;

/// Passing any role to a service that runs code (Lambda, EC2, CloudFormation) is running code as that role:
/// the classic escalation path. <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html>
pub struct PassRoleGrant;

impl Rule for PassRoleGrant {
    fn id(&self) -> &'static str {
        "passrole-grant"
    }

    fn description(&self) -> &'static str {
        "A policy now lets a principal pass any role to any service (`iam:PassRole` on `*`, directly or through \
         `iam:*`, `iam:Pass*`, `*` or `NotAction`, without an `iam:PassedToService` condition)."
    }

    fn response(&self) -> &'static str {
        "Undo exactly this grant; scope PassRole to named roles and add an `iam:PassedToService` condition."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", GRANT_EVENTS)]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(view) = ctx.grant else { return Vec::new() };
        let Some(grants) = &view.grants else { return Vec::new() };
        if matches!(view.grant.kind, GrantKind::PutBoundary | GrantKind::RemoveBoundary) || grants.is_admin_class() {
            return Vec::new();
        }
        let Some(pass) = &grants.passrole else { return Vec::new() };
        let mut notes = vec![format!("iam:PassRole is reached through {}", pass.via.join(", "))];
        if !pass.with_compute.is_empty() {
            notes.push(format!(
                "together with {} in the same policy, the principal can run code as any role it can pass",
                pass.with_compute.join(", ")
            ));
        }
        let what = "lets the principal pass any role to any service (no iam:PassedToService limit)";
        vec![grant_verdict(ctx, view, Severity::High, what, &pass.statements, notes)]
    }
}
