//! `wildcard-policy-grant`: every action of a service (`s3:*`) on broad resources.

use super::grant_view::grant_verdict;
use super::{Context, Rule, Trigger, Verdict};
use crate::change::{GrantKind, GRANT_EVENTS};
use crate::finding::Severity;

/// Services whose full wildcard exposes data or control beyond the service itself.
const SENSITIVE_SERVICES: &[&str] = &[
    "iam",
    "sts",
    "organizations",
    "kms",
    "secretsmanager",
    "ssm",
    "s3",
    "ec2",
    "lambda",
    "cloudtrail",
    "dynamodb",
    "rds",
];

/// A service-wide wildcard is rarely what least privilege needs; with permissions-management actions in it
/// (bucket policies, key policies, grants) it is a way to hand access onward.
pub struct WildcardPolicyGrant;

impl Rule for WildcardPolicyGrant {
    fn id(&self) -> &'static str {
        "wildcard-policy-grant"
    }

    fn description(&self) -> &'static str {
        "A policy now grants every action of one or more services on broad resources (such as `s3:*` on `*`). \
         Administrator grants are reported by admin-policy-grant instead."
    }

    fn response(&self) -> &'static str {
        "Undo exactly this grant and ask the owner for the actions and resources the workload needs."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::exact("iam.amazonaws.com", GRANT_EVENTS)]
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(view) = ctx.grant else { return Vec::new() };
        let Some(grants) = &view.grants else { return Vec::new() };
        if matches!(view.grant.kind, GrantKind::PutBoundary | GrantKind::RemoveBoundary)
            || grants.is_admin_class()
            || grants.service_wildcards.is_empty()
        {
            return Vec::new();
        }
        let wildcards = &grants.service_wildcards;
        let services: Vec<String> = wildcards.iter().map(|w| format!("{}:*", w.service)).collect();
        let sensitive =
            wildcards.iter().any(|w| w.permissions_management || SENSITIVE_SERVICES.contains(&w.service.as_str()));
        let mut statements: Vec<usize> = wildcards.iter().flat_map(|w| w.statements.iter().copied()).collect();
        statements.sort_unstable();
        statements.dedup();
        let notes = wildcards
            .iter()
            .filter(|w| w.permissions_management)
            .map(|w| format!("{}:* includes permissions-management actions (it can grant access onward)", w.service))
            .collect();
        let what = format!("grants every action of {} on broad resources", services.join(", "));
        vec![grant_verdict(
            ctx,
            view,
            if sensitive { Severity::High } else { Severity::Medium },
            &what,
            &statements,
            notes,
        )]
    }
}
