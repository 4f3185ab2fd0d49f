//! The remediation plan: which of a finding's suggested steps to take, and why not the others.
//!
//! Pure: the same finding and configuration always give the same plan, which can be printed (dry run),
//! reported, and executed. Protection is decided here by name and again at execution time by what IAM says
//! (a role's path shows whether it is service-linked).

use serde::{Deserialize, Serialize};

use crate::config::{Config, Mode};
use crate::finding::{Finding, PrincipalKind, Remediation};
use crate::wildcard;

/// What to do with one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Carry it out.
    Execute,
    /// Work out and report what would change, change nothing.
    DryRun,
    /// Leave it, for this reason.
    Skip {
        /// Why.
        reason: String,
    },
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step.
    pub step: Remediation,
    /// Whether it is taken.
    pub decision: Decision,
}

/// A finding's remediation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The finding.
    pub finding_id: String,
    /// Its rule.
    pub rule: String,
    /// The account the steps act in.
    pub account: Option<String>,
    /// The mode that applied.
    pub mode: Mode,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Whether any step will change (or, in a dry run, would change) something.
    pub fn acts(&self) -> bool {
        self.steps.iter().any(|s| !matches!(s.decision, Decision::Skip { .. }))
    }

    /// A readable rendering, one line per step.
    pub fn to_text(&self) -> String {
        let mut out = format!("Plan for finding {} ({}), mode {:?}:\n", self.finding_id, self.rule, self.mode);
        if self.steps.is_empty() {
            out.push_str("  nothing to undo (alert only)\n");
        }
        for (i, s) in self.steps.iter().enumerate() {
            let what = s.step.describe();
            let decision = match &s.decision {
                Decision::Execute => "do".to_owned(),
                Decision::DryRun => "dry run".to_owned(),
                Decision::Skip { reason } => format!("skip: {reason}"),
            };
            out.push_str(&format!("  {}. {what} [{decision}]\n", i + 1));
        }
        out
    }
}

/// Builds the plan for a finding.
pub fn plan(finding: &Finding, config: &Config) -> Plan {
    let settings = &config.remediation;
    let mode = config.rule(&finding.rule).mode.unwrap_or(if finding.actor.is_agent() {
        settings.agents
    } else {
        settings.humans
    });
    let steps = finding
        .remediation
        .iter()
        .map(|step| {
            let decision = if let Some(reason) = protected(step, config) {
                Decision::Skip { reason }
            } else if mode != Mode::Enforce {
                let who = if finding.actor.is_agent() { "agents" } else { "people" };
                Decision::Skip { reason: format!("mode is {mode:?} for this rule and {who}").to_lowercase() }
            } else if settings.dry_run {
                Decision::DryRun
            } else {
                Decision::Execute
            };
            PlannedStep { step: step.clone(), decision }
        })
        .collect();
    Plan { finding_id: finding.id.clone(), rule: finding.rule.clone(), account: finding.account.clone(), mode, steps }
}

/// The principal a step acts on, if it acts on one.
pub fn principal_of(step: &Remediation) -> Option<(PrincipalKind, &str)> {
    match step {
        Remediation::RevokeSession { role_name, .. }
        | Remediation::RevokeOlderSessions { role_name, .. }
        | Remediation::RemoveTrustStatements { role_name, .. } => Some((PrincipalKind::Role, role_name)),
        Remediation::DeactivateAccessKey { user_name, .. } => Some((PrincipalKind::User, user_name)),
        Remediation::DetachManagedPolicy { principal_kind, principal_name, .. }
        | Remediation::DeleteInlinePolicy { principal_kind, principal_name, .. } => {
            Some((*principal_kind, principal_name))
        }
        Remediation::RollBackPolicyVersion { .. } => None,
    }
}

/// Why a step's principal must not be touched, judged by name (`None`: not protected by name).
pub fn protected(step: &Remediation, config: &Config) -> Option<String> {
    let (kind, name) = principal_of(step)?;
    if kind == PrincipalKind::Role && name.starts_with("AWSReservedSSO_") {
        return Some(format!("role {name} belongs to IAM Identity Center; revoke access there"));
    }
    if kind == PrincipalKind::Role && (name.starts_with("AWSServiceRoleFor") || name.contains("aws-service-role/")) {
        return Some(format!("role {name} is service-linked and managed by AWS"));
    }
    if kind == PrincipalKind::Role && config.is_own_role(name) {
        return Some(format!("role {name} is trailguard's own"));
    }
    if config.remediation.protected_principals.iter().any(|p| wildcard::matches(p, name, false)) {
        return Some(format!("{} {name} is protected by configuration", kind.as_str()));
    }
    None
}
