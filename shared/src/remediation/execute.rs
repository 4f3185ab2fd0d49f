//! Carrying out a plan against IAM, step by step, each step idempotent.
//!
//! Every step first reads the current state and acts only if the danger is still there: the event describes
//! the past, and by now the policy may be detached, the version no longer default, or the key inactive. A
//! second run of the same plan finds nothing to do and says so. What a step removes is kept in its outcome,
//! and delivered before the removal ([`Safeguards::about_to`]).
//!
//! A finding may be replayed or redriven long after the event. Within the freshness window a grant is undone
//! while it is still dangerous; after it, only while the current state is exactly what the event created (the
//! same document, the same default version), and a key is never deactivated. A session is revoked only while
//! credentials issued before the event can still be valid. Writes to one role's revocation policy are
//! serialised by a per-role lock ([`Safeguards::lock`]): reading IAM back after writing proves nothing about a
//! concurrent writer, since IAM is eventually consistent.
//! IAM is reached through [`IamActions`], which the AWS module implements with the SDK; tests can record calls.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use std::future::Future;

use super::plan::{Decision, Plan, PlannedStep};
use super::revocation::{compact_len, merge, Revocation, ROLE_INLINE_BUDGET, USER_INLINE_BUDGET};

/// The longest temporary credentials an IAM user can obtain live: 36 hours (`GetSessionToken`,
/// `GetFederationToken`; <https://docs.aws.amazon.com/STS/latest/APIReference/API_GetSessionToken.html>).
const USER_CREDENTIALS_HOURS: i64 = 36;
use crate::config::Config;
use crate::finding::{Finding, PrincipalKind, Remediation};
use crate::iam::{IamActions, IamError, IamErrorKind, PolicyVersion, RoleInfo};
use crate::policy::canonical::{same_statement, sha256};
use crate::policy::document::decode_json_text;
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
    pub(crate) fn new(step: &Remediation, status: Status, detail: impl Into<String>) -> StepOutcome {
        StepOutcome {
            step: step.clone(),
            status,
            detail: detail.into(),
            removed: None,
            written: None,
            retryable: false,
        }
    }

    /// A step that failed on an IAM (or STS) error.
    pub fn failed(step: &Remediation, error: &IamError) -> StepOutcome {
        let detail = match error.kind {
            IamErrorKind::AccessDenied => format!("trailguard lacks permission `{}`: {}", error.action, error.message),
            IamErrorKind::Blind => {
                format!("trailguard cannot act in account {}: {}", step.account(), error.message)
            }
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

/// What execution needs beside IAM: a lock per role, and a record of what is about to be removed, delivered
/// before the removal so that a failed report afterwards loses nothing.
pub trait Safeguards {
    /// Takes the lock on one role's revocation policy, waiting a while for another holder; returns a token.
    fn lock(&self, account: &str, role: &str) -> impl Future<Output = Result<String, IamError>> + Send;
    /// Releases a lock taken with [`Safeguards::lock`] (a lost release expires by itself).
    fn unlock(&self, account: &str, role: &str, token: &str) -> impl Future<Output = ()> + Send;
    /// Delivers the record of a removal about to be made; an error means: do not remove.
    fn about_to(&self, outcome: &StepOutcome) -> impl Future<Output = Result<(), IamError>> + Send;
    /// Whether `key` was recorded (and has not expired): work finished by an earlier attempt.
    fn recorded(&self, key: &str) -> impl Future<Output = Result<bool, IamError>> + Send;
    /// Records `key` for `ttl`.
    fn record(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<(), IamError>> + Send;
}

/// No lock and no prior record: for one person running the kill switch by hand, and for unit tests.
pub struct Unguarded;

impl Safeguards for Unguarded {
    async fn lock(&self, _account: &str, _role: &str) -> Result<String, IamError> {
        Ok(String::new())
    }

    async fn unlock(&self, _account: &str, _role: &str, _token: &str) {}

    async fn about_to(&self, _outcome: &StepOutcome) -> Result<(), IamError> {
        Ok(())
    }

    async fn recorded(&self, _key: &str) -> Result<bool, IamError> {
        Ok(false)
    }

    async fn record(&self, _key: &str, _ttl: Duration) -> Result<(), IamError> {
        Ok(())
    }
}

/// Executes every step of a plan in order, in one account, unguarded (the kill switch). A failed step does not
/// stop the next; the outcomes say what happened to each.
pub async fn execute<I: IamActions + Sync>(
    plan: &Plan,
    occasion: Occasion<'_>,
    iam: &I,
    config: &Config,
    now: OffsetDateTime,
) -> Vec<StepOutcome> {
    let mut outcomes = Vec::new();
    for planned in &plan.steps {
        outcomes.push(execute_step(planned, occasion, iam, &Unguarded, config, now).await);
    }
    outcomes
}

/// Executes one planned step with IAM of the step's own account.
pub async fn execute_step<I: IamActions + Sync, G: Safeguards + Sync>(
    planned: &PlannedStep,
    occasion: Occasion<'_>,
    iam: &I,
    guard: &G,
    config: &Config,
    now: OffsetDateTime,
) -> StepOutcome {
    let step = &planned.step;
    let dry_run = match &planned.decision {
        Decision::Skip { reason } => return StepOutcome::new(step, Status::Skipped, reason.clone()),
        Decision::DryRun => true,
        Decision::Execute => false,
    };
    let run = Run { step, occasion, iam, guard, config, now, dry_run };
    match run.step().await {
        Ok(outcome) => outcome,
        Err(error) => StepOutcome::failed(step, &error),
    }
}

/// One step being carried out, with everything it needs.
struct Run<'a, I, G> {
    step: &'a Remediation,
    occasion: Occasion<'a>,
    iam: &'a I,
    guard: &'a G,
    config: &'a Config,
    now: OffsetDateTime,
    dry_run: bool,
}

impl<I: IamActions + Sync, G: Safeguards + Sync> Run<'_, I, G> {
    fn outcome(&self, status: Status, detail: impl Into<String>) -> StepOutcome {
        StepOutcome::new(self.step, status, detail)
    }

    /// Whether the finding is recent enough to act on without proof that the state is exactly the event's.
    fn fresh(&self) -> bool {
        let window = Duration::minutes(i64::from(self.config.remediation.freshness_minutes));
        self.occasion.happened.is_some_and(|t| self.now - t <= window)
    }

    fn stale(&self, what: &str) -> StepOutcome {
        self.outcome(
            Status::Skipped,
            format!(
                "stale, nothing done: the event is older than {} minutes and {what}",
                self.config.remediation.freshness_minutes
            ),
        )
    }

    /// Why a role must not be touched, from what IAM says of it now (path and exact ARN).
    fn protected_role(&self, role: &RoleInfo, name: &str) -> Option<StepOutcome> {
        let reason = protected_by_path(role).or_else(|| {
            self.config
                .protected_principal(name, Some(&role.arn))
                .map(|p| format!("role {} is protected by configuration (`{p}`)", role.arn))
        })?;
        Some(self.outcome(Status::Skipped, reason))
    }

    /// For a role, why it must not be touched, from what IAM says of it now; users and groups were judged by
    /// the plan.
    async fn protected_principal(&self, kind: PrincipalKind, name: &str) -> Result<Option<StepOutcome>, IamError> {
        if kind != PrincipalKind::Role {
            return Ok(None);
        }
        Ok(self.iam.get_role(name).await?.and_then(|role| self.protected_role(&role, name)))
    }

    async fn step(&self) -> Result<StepOutcome, IamError> {
        let step = self.step;
        match step {
            Remediation::RevokeSession { role_name, user_id, source_identity, rotating, .. } => {
                // A source identity is shared by every run of an agent: revoking by it stops them all, so only
                // where the configuration asks for it.
                let by_source = self.config.remediation.revoke_source_identity;
                let revocation = match (user_id, source_identity.as_ref().filter(|_| by_source), rotating) {
                    (Some(id), _, Some(_)) => Revocation::Quarantine {
                        user_id: id.clone(),
                        until: self.now + Duration::hours(i64::from(self.config.remediation.quarantine_hours)),
                    },
                    (_, Some(si), None) => Revocation::SourceIdentity(si.clone()),
                    (Some(id), None, None) => Revocation::Session(id.clone()),
                    (None, _, _) => return Ok(self.outcome(Status::Skipped, "the finding names no session")),
                };
                self.revoke(role_name, &revocation).await
            }
            // Identity Center is reached through the sso-admin role, which only the remediator has.
            Remediation::DenySsoUserInPermissionSet { .. } => Ok(self.outcome(
                Status::Skipped,
                "carried out by the remediator through its sso-admin role (remediation.sso_admin_role_arn)",
            )),
            Remediation::RevokeOlderSessions { role_name, .. } => {
                self.revoke(role_name, &Revocation::AllSessions).await
            }
            Remediation::RevokeUserSessions { user_name, user_id, .. } => {
                let revocation = match user_id {
                    Some(id) => Revocation::Session(id.clone()),
                    None => Revocation::AllSessions,
                };
                self.revoke_user(user_name, &revocation).await
            }
            Remediation::DeactivateAccessKey { user_name, access_key_id, .. } => {
                let keys = self.iam.access_keys(user_name).await?;
                match keys.iter().find(|(id, _)| id == access_key_id) {
                    None => Ok(self.outcome(Status::AlreadyDone, "the key no longer exists")),
                    Some((_, false)) => Ok(self.outcome(Status::AlreadyDone, "the key is already inactive")),
                    // A key may have been re-enabled by a person since: never undo that on an old finding.
                    Some(_) if !self.fresh() => Ok(self.stale("a key is never deactivated on an old finding")),
                    Some(_) if self.dry_run => Ok(self.outcome(Status::DryRun, "would deactivate the key")),
                    Some(_) => {
                        self.iam.deactivate_access_key(user_name, access_key_id).await?;
                        Ok(self.outcome(Status::Done, "key deactivated"))
                    }
                }
            }
            Remediation::DetachManagedPolicy {
                principal_kind, principal_name, policy_arn, document_sha256, ..
            } => {
                if let Some(skip) = self.protected_principal(*principal_kind, principal_name).await? {
                    return Ok(skip);
                }
                let attached = self.iam.attached_policies(*principal_kind, principal_name).await?;
                if !attached.iter().any(|a| a == policy_arn) {
                    return Ok(self.outcome(Status::AlreadyDone, "the policy is no longer attached"));
                }
                let current = current_managed_document(self.iam, policy_arn).await?;
                if let Some(text) = &current {
                    if !still_dangerous(self.occasion.rule, text) {
                        return Ok(self.outcome(Status::Skipped, "the policy no longer grants what was flagged"));
                    }
                }
                if !self.fresh() {
                    let same = match (document_sha256, current.as_deref().map(decode_json_text)) {
                        (Some(expected), Some(Ok(doc))) => sha256(&doc) == *expected,
                        // An AWS managed policy attached: the attachment is the whole state.
                        (None, _) => crate::policy::managed::summary(policy_arn).is_some(),
                        _ => false,
                    };
                    if !same {
                        return Ok(self.stale("the policy's document is no longer the one the event attached"));
                    }
                }
                let outcome = |status, detail: String| StepOutcome {
                    removed: Some(json!({"policy_arn": policy_arn, "attached_to": principal_name})),
                    ..self.outcome(status, detail)
                };
                if self.dry_run {
                    return Ok(outcome(Status::DryRun, "would detach the policy".to_owned()));
                }
                self.guard.about_to(&outcome(Status::Done, "about to detach the policy".to_owned())).await?;
                self.iam.detach_policy(*principal_kind, principal_name, policy_arn).await?;
                Ok(outcome(Status::Done, format!("detached from {} {principal_name} only", principal_kind.as_str())))
            }
            Remediation::DeleteInlinePolicy {
                principal_kind, principal_name, policy_name, document_sha256, ..
            } => {
                if let Some(skip) = self.protected_principal(*principal_kind, principal_name).await? {
                    return Ok(skip);
                }
                let Some(text) = self.iam.get_inline_policy(*principal_kind, principal_name, policy_name).await? else {
                    return Ok(self.outcome(Status::AlreadyDone, "the inline policy no longer exists"));
                };
                if !still_dangerous(self.occasion.rule, &text) {
                    return Ok(self.outcome(Status::Skipped, "the inline policy no longer grants what was flagged"));
                }
                let removed = decode_json_text(&text).ok();
                if !self.fresh() {
                    let same = removed.as_ref().zip(document_sha256.as_ref()).is_some_and(|(d, e)| sha256(d) == *e);
                    if !same {
                        return Ok(self.stale("the inline policy's document is no longer the one the event wrote"));
                    }
                }
                let outcome =
                    |status, detail: &str| StepOutcome { removed: removed.clone(), ..self.outcome(status, detail) };
                if self.dry_run {
                    return Ok(outcome(Status::DryRun, "would delete the inline policy"));
                }
                self.guard.about_to(&outcome(Status::Done, "about to delete the inline policy")).await?;
                self.iam.delete_inline_policy(*principal_kind, principal_name, policy_name).await?;
                Ok(outcome(Status::Done, "inline policy deleted; its document is kept here"))
            }
            Remediation::RollBackPolicyVersion { policy_arn, version_id, .. } => {
                self.roll_back(policy_arn, version_id.as_deref()).await
            }
            Remediation::RemoveTrustStatements { role_name, statements, .. } => {
                self.remove_trust(role_name, statements).await
            }
        }
    }

    async fn remove_trust(&self, role_name: &str, statements: &[Value]) -> Result<StepOutcome, IamError> {
        let Some(role) = self.iam.get_role(role_name).await? else {
            return Ok(self.outcome(Status::AlreadyDone, "the role no longer exists"));
        };
        if let Some(skip) = self.protected_role(&role, role_name) {
            return Ok(skip);
        }
        let trust = role.trust_policy.as_deref().and_then(|t| decode_json_text(t).ok()).unwrap_or(Value::Null);
        let current: Vec<Value> = match trust.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => Vec::new(),
        };
        // Compared as IAM means them: IAM returns its own canonical form of what the event wrote.
        let (removed, kept): (Vec<Value>, Vec<Value>) =
            current.into_iter().partition(|s| statements.iter().any(|o| same_statement(o, s)));
        if removed.is_empty() {
            return Ok(self.outcome(Status::AlreadyDone, "the offending statements are no longer in the trust policy"));
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
            ..self.outcome(status, detail)
        };
        if self.dry_run {
            return Ok(outcome(Status::DryRun, "would remove the offending trust statements"));
        }
        self.guard.about_to(&outcome(Status::Done, "about to remove the offending trust statements")).await?;
        self.iam.update_trust_policy(role_name, &written.to_string()).await?;
        Ok(outcome(Status::Done, "offending statements removed, the rest kept"))
    }

    async fn revoke(&self, role_name: &str, revocation: &Revocation) -> Result<StepOutcome, IamError> {
        let Some(role) = self.iam.get_role(role_name).await? else {
            return Ok(self.outcome(Status::AlreadyDone, "the role no longer exists, nor do its sessions"));
        };
        if let Some(skip) = self.protected_role(&role, role_name) {
            return Ok(skip);
        }
        if let Revocation::Session(id) | Revocation::Quarantine { user_id: id, .. } = revocation {
            // A role deleted and re-created under the same name has a new id: the session belonged to the old
            // role, which took its sessions with it. Never write a deny for someone else's role.
            if id.split(':').next() != Some(role.role_id.as_str()) {
                return Ok(self.outcome(
                    Status::AlreadyDone,
                    format!(
                        "the session {id} belongs to an earlier role of that name (now {}); nothing to deny",
                        role.role_id
                    ),
                ));
            }
        }
        let max_session = Duration::seconds(role.max_session_seconds.max(3600));
        let expired = self.occasion.happened.is_some_and(|t| t + max_session < self.now);
        if expired && !matches!(revocation, Revocation::Quarantine { .. }) {
            return Ok(self.outcome(
                Status::AlreadyDone,
                "credentials issued before the event have expired (the role's maximum session duration has passed)",
            ));
        }
        let token = self.guard.lock(self.step.account(), role_name).await?;
        let result = self.write_revocation(PrincipalKind::Role, role_name, revocation, max_session).await;
        self.guard.unlock(self.step.account(), role_name, &token).await;
        result
    }

    /// Denies temporary credentials an IAM user issued (derived from its key, or one federated user's) with the
    /// same revocation policy, on the user. They live at most 36 hours (`GetSessionToken` and
    /// `GetFederationToken`'s maximum), which bounds how long an entry is kept.
    async fn revoke_user(&self, user_name: &str, revocation: &Revocation) -> Result<StepOutcome, IamError> {
        let max_session = Duration::hours(USER_CREDENTIALS_HOURS);
        if self.occasion.happened.is_some_and(|t| t + max_session < self.now) {
            return Ok(self.outcome(
                Status::AlreadyDone,
                "temporary credentials issued before the event have expired (36 hours have passed)",
            ));
        }
        // Users and roles share the lock table; the prefix keeps a user and a role of the same name apart.
        let key = format!("user/{user_name}");
        let token = self.guard.lock(self.step.account(), &key).await?;
        let result = self.write_revocation(PrincipalKind::User, user_name, revocation, max_session).await;
        self.guard.unlock(self.step.account(), &key, &token).await;
        result
    }

    /// Reads, merges and writes a role's or user's revocation policy; called under its lock.
    async fn write_revocation(
        &self,
        kind: PrincipalKind,
        principal: &str,
        revocation: &Revocation,
        max_session: Duration,
    ) -> Result<StepOutcome, IamError> {
        let name = &self.config.remediation.revocation_policy_name;
        let budget = if kind == PrincipalKind::User { USER_INLINE_BUDGET } else { ROLE_INLINE_BUDGET };
        // IAM's size limit counts all of the principal's inline policies together.
        let mut others = 0;
        let mut existing = None;
        for policy in self.iam.inline_policy_names(kind, principal).await? {
            let text = self.iam.get_inline_policy(kind, principal, &policy).await?;
            let doc = text.as_deref().and_then(|t| decode_json_text(t).ok());
            if policy == *name {
                existing = doc;
            } else {
                others += doc.as_ref().map_or_else(|| text.as_deref().map_or(0, str::len), compact_len);
            }
        }
        let room = budget.saturating_sub(others);
        let merged = merge(existing.as_ref(), revocation, self.occasion.happened, self.now, max_session, room);
        let written = Some(merged.document.clone());
        if !merged.changed && merged.fits {
            return Ok(StepOutcome { written, ..self.outcome(Status::AlreadyDone, "already revoked") });
        }
        if !merged.fits {
            return Ok(StepOutcome {
                written,
                ..self.outcome(
                    Status::Failed,
                    format!(
                        "NOT REVOKED: the {}'s other inline policies take {others} of IAM's {budget} characters, \
                         leaving {room}, too few even for a deny of every older session; revoke by hand (attach a \
                         managed policy with the deny below, or remove an inline policy and retry)",
                        kind.as_str()
                    ),
                )
            });
        }
        let bound = super::revocation::rfc3339(self.now);
        let (verb, mut detail) = match revocation {
            Revocation::Quarantine { until, .. } => (
                if self.dry_run { "would quarantine" } else { "quarantined" },
                format!(
                    "a deny in inline policy {name} for this session whatever its credentials' issue time, until {}",
                    super::revocation::rfc3339(*until)
                ),
            ),
            _ => (
                if self.dry_run { "would write a deny to" } else { "deny written to" },
                format!("inline policy {name} for credentials issued before {bound}"),
            ),
        };
        detail = format!("{verb} {detail}");
        if merged.pruned > 0 {
            detail.push_str(&format!("; pruned {} expired entr(ies)", merged.pruned));
        }
        if merged.collapsed {
            detail = format!(
                "EVERY older session of the {} revoked (no room for one more entry within IAM's size limit): {detail}",
                kind.as_str()
            );
        }
        if self.dry_run {
            return Ok(StepOutcome { written, ..self.outcome(Status::DryRun, detail) });
        }
        match kind {
            PrincipalKind::User => self.iam.put_user_policy(principal, name, &merged.document.to_string()).await?,
            _ => self.iam.put_role_policy(principal, name, &merged.document.to_string()).await?,
        }
        Ok(StepOutcome { written, ..self.outcome(Status::Done, detail) })
    }

    async fn roll_back(&self, arn: &str, offending: Option<&str>) -> Result<StepOutcome, IamError> {
        let versions = self.iam.policy_versions(arn).await?;
        let Some(default) = versions.iter().find(|v| v.is_default) else {
            return Ok(self.outcome(Status::AlreadyDone, "the policy no longer exists"));
        };
        // The default being the offending version is exactly the state the event created, at any age.
        if offending.is_some_and(|v| v != default.id) {
            return Ok(self.outcome(
                Status::AlreadyDone,
                format!("the default is now {}, not the offending version", default.id),
            ));
        }
        if offending.is_none() && !self.fresh() {
            return Ok(self.stale("the finding does not say which version was offending"));
        }
        let offending_doc = self.iam.policy_version_document(arn, &default.id).await?;
        if !still_dangerous(self.occasion.rule, &offending_doc) {
            return Ok(self.outcome(Status::Skipped, "the default version no longer grants what was flagged"));
        }
        // Rolling back changes every principal the policy is attached to: none of them may be protected.
        let entities = self.iam.policy_entities(arn).await?;
        if let Some((kind, name)) = entities.iter().find(|(kind, name)| {
            self.config.protected_principal(name, None).is_some()
                || (*kind == PrincipalKind::Role && self.config.is_own_role(Some(self.step.account()), name))
        }) {
            return Ok(self.outcome(
                Status::Skipped,
                format!("the policy is attached to protected {} {name}; roll it back by hand", kind.as_str()),
            ));
        }
        let removed = decode_json_text(&offending_doc).ok();
        let number = |id: &str| id.trim_start_matches('v').parse::<u32>().unwrap_or(0);
        let mut candidates: Vec<&PolicyVersion> =
            versions.iter().filter(|v| number(&v.id) < number(&default.id)).collect();
        candidates.sort_by_key(|v| std::cmp::Reverse(number(&v.id)));
        for candidate in candidates {
            let doc = self.iam.policy_version_document(arn, &candidate.id).await?;
            // Safe means: no grant rule would flag it, not only the rule that fired.
            if still_dangerous("", &doc) {
                continue;
            }
            let outcome =
                |status, detail: String| StepOutcome { removed: removed.clone(), ..self.outcome(status, detail) };
            if self.dry_run {
                return Ok(outcome(
                    Status::DryRun,
                    format!("would make {} the default instead of {}", candidate.id, default.id),
                ));
            }
            self.guard.about_to(&outcome(Status::Done, format!("about to make {} the default", candidate.id))).await?;
            self.iam.set_default_policy_version(arn, &candidate.id).await?;
            return Ok(outcome(
                Status::Done,
                format!("{} is the default again; {} is kept but not in effect", candidate.id, default.id),
            ));
        }
        // No earlier version is safe: take the policy off every principal instead, and say so.
        let outcome = |status, detail: String| StepOutcome {
            removed: Some(
                json!({"policy_arn": arn, "document": removed, "attached_to": entities.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect::<Vec<_>>()}),
            ),
            ..self.outcome(status, detail)
        };
        if self.dry_run {
            return Ok(outcome(
                Status::DryRun,
                format!("no earlier version is safe: would detach it from {} principal(s)", entities.len()),
            ));
        }
        self.guard
            .about_to(&outcome(Status::Done, "about to detach the policy from every principal".to_owned()))
            .await?;
        for (kind, name) in &entities {
            self.iam.detach_policy(*kind, name, arn).await?;
        }
        Ok(outcome(
            Status::Done,
            format!("no earlier version is safe to restore: detached from {} principal(s) instead", entities.len()),
        ))
    }
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

/// Roles AWS manages, told by their path (reserved: nobody can create a role there), never by name.
fn protected_by_path(role: &RoleInfo) -> Option<String> {
    if role.path.starts_with("/aws-service-role/") {
        return Some("the role is service-linked and managed by AWS".to_owned());
    }
    if role.path.starts_with("/aws-reserved/sso.amazonaws.com/") {
        return Some("the role belongs to IAM Identity Center; revoke the user's access there".to_owned());
    }
    None
}
