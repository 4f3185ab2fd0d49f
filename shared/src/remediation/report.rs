//! The remediation outcome: what was done, already done, skipped or failed, for people and machines.

use serde::{Deserialize, Serialize};

use super::execute::{Status, StepOutcome};
use super::plan::Plan;
use crate::config::Mode;
use crate::finding::{Finding, Remediation, Severity};

/// The version of the report's JSON shape.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// What remediation did for one finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The JSON shape's version.
    pub schema_version: u32,
    /// The finding acted on.
    pub finding_id: String,
    /// Its rule.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub finding_title: String,
    /// The account acted in.
    pub account: Option<String>,
    /// The mode that applied.
    pub mode: Mode,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The overall status: `failed` if any step failed, else `done` if any step changed something, and so on.
    pub status: Status,
    /// Each step's outcome, in plan order.
    pub steps: Vec<StepOutcome>,
}

impl Report {
    /// Puts the outcomes of a plan together.
    pub fn new(finding: &Finding, plan: &Plan, dry_run: bool, steps: Vec<StepOutcome>) -> Report {
        let status = [Status::Failed, Status::Done, Status::DryRun, Status::AlreadyDone]
            .into_iter()
            .find(|s| steps.iter().any(|o| o.status == *s))
            .unwrap_or(Status::Skipped);
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            finding_id: finding.id.clone(),
            rule: finding.rule.clone(),
            severity: finding.severity,
            finding_title: finding.title.clone(),
            account: finding.account.clone(),
            mode: plan.mode,
            dry_run,
            status,
            steps,
        }
    }

    /// Whether a failed step may succeed on a retry (throttling, a network error).
    pub fn retryable(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed && s.retryable)
    }

    /// A subject line under 100 characters.
    pub fn subject(&self) -> String {
        let verb = match self.status {
            Status::Done => "remediated",
            Status::AlreadyDone => "already remediated",
            Status::DryRun => "dry run",
            Status::Skipped => "not remediated",
            Status::Failed => "REMEDIATION FAILED",
        };
        match self.qualifier() {
            Some(q) => truncate(&format!("trailguard {verb} ({q}): {}", self.finding_title), 99),
            None => truncate(&format!("trailguard {verb}: {}", self.finding_title), 99),
        }
    }

    /// What was done differently from a plain step, for the first line: more revoked than one session, a
    /// quarantine, or a revocation that could not be written.
    fn qualifier(&self) -> Option<&'static str> {
        self.steps.iter().find_map(|s| {
            if s.detail.starts_with("NOT REVOKED") && matches!(s.step, Remediation::DenySsoUserInPermissionSet { .. }) {
                Some("Identity Center session NOT revoked")
            } else if s.detail.starts_with("NOT REVOKED") {
                Some("session NOT revoked: no room")
            } else if s.detail.starts_with("EVERY older session") {
                Some("EVERY older session of the role revoked")
            } else if s.detail.starts_with("quarantined") {
                Some("session quarantined")
            } else if s.detail.starts_with("stale") {
                Some("stale finding, nothing done")
            } else {
                None
            }
        })
    }

    /// The body for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\nFinding {} ({}, {}) in account {}{}\n",
            self.subject(),
            self.finding_id,
            self.rule,
            self.severity,
            self.account.as_deref().unwrap_or("unknown"),
            if self.dry_run { " - DRY RUN, nothing was changed" } else { "" }
        );
        for (i, s) in self.steps.iter().enumerate() {
            let status =
                serde_json::to_value(s.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            out.push_str(&format!("  {}. {} -> {status}: {}\n", i + 1, s.step.describe(), s.detail));
            if let Some(removed) = &s.removed {
                out.push_str(&format!("     removed (kept for restore): {removed}\n"));
            }
            if let Some(written) = s.written.as_ref().filter(|_| s.status == Status::DryRun) {
                out.push_str(&format!("     would write: {written}\n"));
            }
        }
        if self.steps.is_empty() {
            out.push_str("  nothing to undo for this finding (alert only)\n");
        }
        out
    }
}

/// Cuts a string to at most `max` characters, on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}
