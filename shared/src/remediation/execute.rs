//! Carrying out a plan against IAM, step by step, each step idempotent.
//!
//! Every step first reads the current state and acts only if the danger is still there: the event describes
//! the past, and by now the policy may be detached, the version no longer default, or the key inactive. A
//! second run of the same plan finds nothing to do and says so. What a step removes is kept in its outcome.
//! IAM is reached through [`IamActions`], which the AWS module implements with the SDK; tests can record calls.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::plan::{Decision, Plan};
use super::revocation::{merge, Revocation};
use crate::config::Config;
use crate::finding::{Finding, PrincipalKind, Remediation};
use crate::iam::{IamActions, IamError, IamErrorKind, PolicyVersion, RoleInfo};
use crate::policy::{analyze, PolicyDocument};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The change was made.
    Done,
    /// Nothing to do: the danger was already gone.
    AlreadyDone,
    /// Dry run: the change that would be made is in `written`.
    DryRun,
    /// Not taken, by the plan or because the current state says not to.
    Skipped,
    /// Tried and failed.
    Failed,
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The step.
    pub step: Remediation,
    /// How it ended.
    pub status: Status,
    /// Why, for people.
    pub detail: String,
    /// What was removed (a policy document, trust statements), kept so a person can restore it.
    pub removed: Option<Value>,
    /// What was written (the revocation policy, the new trust policy).
    pub written: Option<Value>,
    /// For a failure: whether a retry can help.
    pub retryable: bool,
}

impl StepOutcome {
    fn new(step: &Remediation, status: Status, detail: impl Into<String>) -> StepOutcome {
        StepOutcome {
            step: step.clone(),
            status,
            detail: detail.into(),
            removed: None,
            written: None,
            retryable: false,
        }
    }

    fn failed(step: &Remediation, error: &IamError) -> StepOutcome {
        let detail = match error.kind {
            IamErrorKind::AccessDenied => format!("trailguard lacks permission `{}`: {}", error.action, error.message),
            _ => error.to_string(),
        };
        StepOutcome { retryable: error.retryable(), ..StepOutcome::new(step, Status::Failed, detail) }
    }
}

/// What the steps undo: the rule that flagged it (to re-check the danger) and when it happened (credentials
/// issued before then are the ones to deny).
#[derive(Debug, Clone, Copy)]
pub struct Occasion<'a> {
    /// The rule whose danger the steps undo.
    pub rule: &'a str,
    /// When the flagged call was made (or, for a manual revocation, the time to revoke before).
    pub happened: Option<OffsetDateTime>,
}

impl<'a> Occasion<'a> {
    /// The occasion of a finding.
    pub fn of(finding: &'a Finding) -> Occasion<'a> {
        let happened = finding.time.as_deref().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        Occasion { rule: &finding.rule, happened }
    }
}

/// Executes every step of a plan in order. A failed step does not stop the next (revoking the session is
/// worth doing even when the detach failed); the outcomes say what happened to each.
pub async fn execute<I: IamActions>(
    plan: &Plan,
    occasion: Occasion<'_>,
    iam: &I,
    config: &Config,
    now: OffsetDateTime,
) -> Vec<StepOutcome> {
    let mut outcomes = Vec::new();
    for planned in &plan.steps {
        let step = &planned.step;
        let dry_run = match &planned.decision {
            Decision::Skip { reason } => {
                outcomes.push(StepOutcome::new(step, Status::Skipped, reason.clone()));
                continue;
            }
            Decision::DryRun => true,
            Decision::Execute => false,
        };
        let outcome = match run_step(step, occasion, iam, config, now, dry_run).await {
            Ok(outcome) => outcome,
            Err(error) => StepOutcome::failed(step, &error),
        };
        outcomes.push(outcome);
    }
    outcomes
}

async fn run_step<I: IamActions>(
    step: &Remediation,
    occasion: Occasion<'_>,
    iam: &I,
    config: &Config,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<StepOutcome, IamError> {
    match step {
        Remediation::RevokeSession { role_name, user_id, source_identity, .. } => {
            let revocation = match (user_id, source_identity) {
                (Some(id), _) => Revocation::Session(id.clone()),
                (None, Some(si)) => Revocation::SourceIdentity(si.clone()),
                (None, None) => return Ok(StepOutcome::new(step, Status::Skipped, "the finding names no session")),
            };
            revoke(step, role_name, &revocation, occasion, iam, config, now, dry_run).await
        }
        Remediation::RevokeOlderSessions { role_name, .. } => {
            revoke(step, role_name, &Revocation::AllSessions, occasion, iam, config, now, dry_run).await
        }
        Remediation::DeactivateAccessKey { user_name, access_key_id, .. } => {
            let keys = iam.access_keys(user_name).await?;
            match keys.iter().find(|(id, _)| id == access_key_id) {
                None => Ok(StepOutcome::new(step, Status::AlreadyDone, "the key no longer exists")),
                Some((_, false)) => Ok(StepOutcome::new(step, Status::AlreadyDone, "the key is already inactive")),
                Some(_) if dry_run => Ok(StepOutcome::new(step, Status::DryRun, "would deactivate the key")),
                Some(_) => {
                    iam.deactivate_access_key(user_name, access_key_id).await?;
                    Ok(StepOutcome::new(step, Status::Done, "key deactivated"))
                }
            }
        }
        Remediation::DetachManagedPolicy { principal_kind, principal_name, policy_arn, .. } => {
            let attached = iam.attached_policies(*principal_kind, principal_name).await?;
            if !attached.iter().any(|a| a == policy_arn) {
                return Ok(StepOutcome::new(step, Status::AlreadyDone, "the policy is no longer attached"));
            }
            if let Some(text) = current_managed_document(iam, policy_arn).await? {
                if !still_dangerous(occasion.rule, &text) {
                    return Ok(StepOutcome::new(step, Status::Skipped, "the policy no longer grants what was flagged"));
                }
            }
            if dry_run {
                return Ok(StepOutcome::new(step, Status::DryRun, "would detach the policy"));
            }
            iam.detach_policy(*principal_kind, principal_name, policy_arn).await?;
            Ok(StepOutcome::new(
                step,
                Status::Done,
                format!("detached from {} {principal_name} only", principal_kind.as_str()),
            ))
        }
        Remediation::DeleteInlinePolicy { principal_kind, principal_name, policy_name, .. } => {
            let Some(text) = iam.get_inline_policy(*principal_kind, principal_name, policy_name).await? else {
                return Ok(StepOutcome::new(step, Status::AlreadyDone, "the inline policy no longer exists"));
            };
            if !still_dangerous(occasion.rule, &text) {
                return Ok(StepOutcome::new(
                    step,
                    Status::Skipped,
                    "the inline policy no longer grants what was flagged",
                ));
            }
            let removed = crate::policy::document::decode_json_text(&text).ok();
            if dry_run {
                return Ok(StepOutcome {
                    removed,
                    ..StepOutcome::new(step, Status::DryRun, "would delete the inline policy")
                });
            }
            iam.delete_inline_policy(*principal_kind, principal_name, policy_name).await?;
            Ok(StepOutcome {
                removed,
                ..StepOutcome::new(step, Status::Done, "inline policy deleted; its document is kept here")
            })
        }
        Remediation::RollBackPolicyVersion { policy_arn, version_id, .. } => {
            roll_back(step, policy_arn, version_id.as_deref(), occasion, iam, dry_run).await
        }
        Remediation::RemoveTrustStatements { role_name, statements, .. } => {
            let Some(role) = iam.get_role(role_name).await? else {
                return Ok(StepOutcome::new(step, Status::AlreadyDone, "the role no longer exists"));
            };
            if let Some(reason) = protected_by_path(&role) {
                return Ok(StepOutcome::new(step, Status::Skipped, reason));
            }
            let trust = role
                .trust_policy
                .as_deref()
                .and_then(|t| crate::policy::document::decode_json_text(t).ok())
                .unwrap_or(Value::Null);
            let current: Vec<Value> = match trust.get("Statement") {
                Some(Value::Array(items)) => items.clone(),
                Some(single @ Value::Object(_)) => vec![single.clone()],
                _ => Vec::new(),
            };
            let (removed, kept): (Vec<Value>, Vec<Value>) = current.into_iter().partition(|s| statements.contains(s));
            if removed.is_empty() {
                return Ok(StepOutcome::new(
                    step,
                    Status::AlreadyDone,
                    "the offending statements are no longer in the trust policy",
                ));
            }
            // IAM needs at least one statement; with none left, nobody may assume the role.
            let kept = if kept.is_empty() {
                vec![
                    json!({"Sid": "TrailguardNobody", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
                ]
            } else {
                kept
            };
            let mut written = trust.clone();
            match &mut written {
                Value::Object(map) => {
                    map.insert("Statement".to_owned(), Value::Array(kept));
                }
                other => *other = json!({"Version": "2012-10-17", "Statement": kept}),
            }
            let outcome = |status, detail: &str| StepOutcome {
                removed: Some(Value::Array(removed.clone())),
                written: Some(written.clone()),
                ..StepOutcome::new(step, status, detail)
            };
            if dry_run {
                return Ok(outcome(Status::DryRun, "would remove the offending trust statements"));
            }
            iam.update_trust_policy(role_name, &written.to_string()).await?;
            Ok(outcome(Status::Done, "offending statements removed, the rest kept"))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn revoke<I: IamActions>(
    step: &Remediation,
    role_name: &str,
    revocation: &Revocation,
    occasion: Occasion<'_>,
    iam: &I,
    config: &Config,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<StepOutcome, IamError> {
    let Some(role) = iam.get_role(role_name).await? else {
        return Ok(StepOutcome::new(step, Status::AlreadyDone, "the role no longer exists, nor do its sessions"));
    };
    if let Some(reason) = protected_by_path(&role) {
        return Ok(StepOutcome::new(step, Status::Skipped, reason));
    }
    let name = &config.remediation.revocation_policy_name;
    let existing = iam.get_inline_policy(PrincipalKind::Role, role_name, name).await?;
    let existing = existing.as_deref().and_then(|t| crate::policy::document::decode_json_text(t).ok());
    let event_time = occasion.happened;
    let max_session = Duration::seconds(role.max_session_seconds.max(3600));
    let merged = merge(existing.as_ref(), revocation, event_time, now, max_session);
    let written = Some(merged.document.clone());
    if !merged.changed {
        return Ok(StepOutcome { written, ..StepOutcome::new(step, Status::AlreadyDone, "already revoked") });
    }
    let mut detail = format!("deny written to inline policy {name} for credentials issued before now");
    if merged.pruned > 0 {
        detail.push_str(&format!("; pruned {} expired entr(ies)", merged.pruned));
    }
    if merged.collapsed {
        detail.push_str("; too many entries: collapsed into a deny of every older session of the role");
    }
    if dry_run {
        return Ok(StepOutcome { written, ..StepOutcome::new(step, Status::DryRun, format!("would write: {detail}")) });
    }
    iam.put_role_policy(role_name, name, &merged.document.to_string()).await?;
    Ok(StepOutcome { written, ..StepOutcome::new(step, Status::Done, detail) })
}

async fn roll_back<I: IamActions>(
    step: &Remediation,
    arn: &str,
    offending: Option<&str>,
    occasion: Occasion<'_>,
    iam: &I,
    dry_run: bool,
) -> Result<StepOutcome, IamError> {
    let versions = iam.policy_versions(arn).await?;
    let Some(default) = versions.iter().find(|v| v.is_default) else {
        return Ok(StepOutcome::new(step, Status::AlreadyDone, "the policy no longer exists"));
    };
    if offending.is_some_and(|v| v != default.id) {
        return Ok(StepOutcome::new(
            step,
            Status::AlreadyDone,
            format!("the default is now {}, not the offending version", default.id),
        ));
    }
    let offending_doc = iam.policy_version_document(arn, &default.id).await?;
    if !still_dangerous(occasion.rule, &offending_doc) {
        return Ok(StepOutcome::new(step, Status::Skipped, "the default version no longer grants what was flagged"));
    }
    let mut candidates: Vec<&PolicyVersion> = versions.iter().filter(|v| !v.is_default).collect();
    candidates.sort_by_key(|v| std::cmp::Reverse(v.id.trim_start_matches('v').parse::<u32>().unwrap_or(0)));
    for candidate in candidates {
        let doc = iam.policy_version_document(arn, &candidate.id).await?;
        if still_dangerous(occasion.rule, &doc) {
            continue;
        }
        let outcome = |status, detail: String| StepOutcome {
            removed: crate::policy::document::decode_json_text(&offending_doc).ok(),
            ..StepOutcome::new(step, status, detail)
        };
        if dry_run {
            return Ok(outcome(
                Status::DryRun,
                format!("would make {} the default instead of {}", candidate.id, default.id),
            ));
        }
        iam.set_default_policy_version(arn, &candidate.id).await?;
        return Ok(outcome(
            Status::Done,
            format!("{} is the default again; {} is kept but not in effect", candidate.id, default.id),
        ));
    }
    Ok(StepOutcome::new(step, Status::Failed, "no earlier version is safe to restore; detach the policy by hand"))
}

/// The current default version's document of a managed policy, or `None` when it cannot be told.
async fn current_managed_document<I: IamActions>(iam: &I, arn: &str) -> Result<Option<String>, IamError> {
    if let Some(summary) = crate::policy::managed::summary(arn) {
        return Ok(Some(summary.to_owned()));
    }
    let versions = iam.policy_versions(arn).await?;
    match versions.iter().find(|v| v.is_default) {
        Some(default) => Ok(Some(iam.policy_version_document(arn, &default.id).await?)),
        None => Ok(None),
    }
}

/// Whether a document still grants what the finding's rule flagged; an unreadable document counts as
/// dangerous (the flagged state cannot be shown to be gone).
pub fn still_dangerous(rule: &str, text: &str) -> bool {
    let Ok(doc) = PolicyDocument::parse(text) else { return true };
    let grants = analyze(&doc);
    match rule {
        "admin-policy-grant" => grants.is_admin_class(),
        "wildcard-policy-grant" => grants.is_admin_class() || !grants.service_wildcards.is_empty(),
        "passrole-grant" => grants.is_admin_class() || grants.passrole.is_some(),
        _ => grants.is_admin_class() || !grants.service_wildcards.is_empty() || grants.passrole.is_some(),
    }
}

fn protected_by_path(role: &RoleInfo) -> Option<String> {
    role.path.starts_with("/aws-service-role/").then(|| "the role is service-linked and managed by AWS".to_owned())
}
