//! Containing an IAM Identity Center session: a deny in its permission set's inline policy, then
//! re-provisioning the permission set to the session's account.
//!
//! An `AWSReservedSSO_<permission set>_<hash>` role cannot be edited in IAM; Identity Center provisions it from
//! the permission set. AWS documents revoking such a session with an explicit Deny of every action in the
//! permission set's inline policy, conditioned on the user (`aws:userid` or `identitystore:userid`), then
//! provisioning it again:
//! <https://docs.aws.amazon.com/singlesignon/latest/userguide/authconcept-revoke-access.html> and
//! <https://docs.aws.amazon.com/singlesignon/latest/userguide/prereqs-revoking-user-permissions.html> (read
//! 2026-11-29). CloudTrail names the session by its `aws:userid` (`<role id>:<user name>`), never by its identity
//! store id, so trailguard denies that `aws:userid`, bounded by `aws:TokenIssueTime` like every other revocation
//! (the same statement [`Revocation::Session`] writes on a role): the role id is the role's in that one account,
//! so the deny matches nothing in any other account the permission set is provisioned to, and a fresh sign-in
//! of the same user works.
//!
//! `PutInlinePolicyToPermissionSet` replaces the whole inline policy: the current one is read, trailguard's
//! statement merged in beside everything else, and written back under a per-permission-set lock. A policy that
//! cannot be read, or that would outgrow the limits, is never overwritten: the step fails and says so.

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::execute::{Occasion, Safeguards, Status, StepOutcome};
use super::plan::{Decision, PlannedStep};
use super::revocation::{compact_len, merge, Revocation, ROLE_INLINE_BUDGET};
use crate::finding::Remediation;
use crate::iam::{IamActions, IamError};
use crate::policy::canonical::sha256;
use crate::policy::document::decode_json_text;

/// `InlinePolicy`'s length limit in `PutInlinePolicyToPermissionSet`, in characters as sent
/// (<https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_PutInlinePolicyToPermissionSet.html>,
/// read 2026-11-29).
pub const PERMISSION_SET_INLINE_CHARS: usize = 32_768;
/// Provisioning writes the inline policy to the role in each account, where IAM's 10,240 characters (without
/// white space) for a role's inline policies apply ([`ROLE_INLINE_BUDGET`]): the tighter of the two bounds.
pub const PERMISSION_SET_BUDGET: usize = ROLE_INLINE_BUDGET;
/// The longest session a permission set can grant (`SessionDuration` at most `PT12H`,
/// <https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_CreatePermissionSet.html>).
const LONGEST_SESSION: Duration = Duration::hours(12);
/// The path under which Identity Center creates its roles, which nobody else can use.
pub const SSO_ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

/// How a provisioning request stands (`PermissionSetProvisioningStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provisioning {
    /// `IN_PROGRESS`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The request id, to ask again.
    pub request_id: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// A permission set found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    /// Its ARN.
    pub arn: String,
    /// Its `SessionDuration` (ISO 8601, `PT1H` by default), when set.
    pub session_duration: Option<String>,
}

/// The IAM Identity Center (`sso-admin`) calls the step makes.
pub trait SsoAdminActions {
    /// `ListInstances`: the instances' ARNs.
    fn instances(&self) -> impl Future<Output = Result<Vec<String>, IamError>> + Send;
    /// `ListPermissionSets` and `DescribePermissionSet` until one has this exact name.
    fn permission_set_named(
        &self,
        instance: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<PermissionSet>, IamError>> + Send;
    /// `GetInlinePolicyForPermissionSet`: the policy's text, empty when there is none.
    fn inline_policy(&self, instance: &str, set: &str) -> impl Future<Output = Result<String, IamError>> + Send;
    /// `PutInlinePolicyToPermissionSet` (replaces the whole inline policy).
    fn put_inline_policy(
        &self,
        instance: &str,
        set: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `ProvisionPermissionSet` to one account (`TargetType` `AWS_ACCOUNT`).
    fn provision(
        &self,
        instance: &str,
        set: &str,
        account: &str,
    ) -> impl Future<Output = Result<Provisioning, IamError>> + Send;
    /// `DescribePermissionSetProvisioningStatus`.
    fn provisioning(
        &self,
        instance: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<Provisioning, IamError>> + Send;
}

/// The permission set's inline policy with trailguard's deny merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct SetPolicy {
    /// The document to write (the existing one's other keys and statements kept as they were).
    pub document: Value,
    /// Whether writing it changes anything.
    pub changed: bool,
    /// Whether it fits both limits; when not, nothing may be written.
    pub fits: bool,
    /// trailguard's expired entries dropped.
    pub pruned: usize,
}

/// Merges the deny of session `user_id` (credentials issued before `now`) into a permission set's inline policy
/// `existing` (its text; empty: none). `Err`: the existing text is not a policy trailguard can read, and so must
/// not be replaced. Never collapses other sessions' entries into a deny of everyone: a permission set serves many
/// people in many accounts, so a policy with no room fails loudly instead.
pub fn merge_into_set(
    existing: &str,
    user_id: &str,
    issued_before_event: Option<OffsetDateTime>,
    now: OffsetDateTime,
    max_session: Duration,
) -> Result<SetPolicy, String> {
    let current = if existing.trim().is_empty() {
        None
    } else {
        let doc = decode_json_text(existing).map_err(|e| format!("the inline policy is not readable JSON: {e}"))?;
        if !doc.is_object() {
            return Err("the inline policy is not a JSON object".to_owned());
        }
        Some(doc)
    };
    let revocation = Revocation::Session(user_id.to_owned());
    // Unbounded room: `merge` never collapses entries then; the limits are checked on the result below.
    let merged = merge(current.as_ref(), &revocation, issued_before_event, now, max_session, usize::MAX);
    // `merge` builds a fresh document from the statements: put them back into the existing one, so its own
    // `Version`, `Id` and any other key stay as the owner wrote them.
    let mut document = current.unwrap_or_else(|| serde_json::json!({"Version": "2012-10-17"}));
    if let (Value::Object(map), Some(statements)) = (&mut document, merged.document.get("Statement")) {
        map.insert("Statement".to_owned(), statements.clone());
    }
    let fits = compact_len(&document) <= PERMISSION_SET_BUDGET
        && document.to_string().chars().count() <= PERMISSION_SET_INLINE_CHARS;
    Ok(SetPolicy { document, changed: merged.changed, fits, pruned: merged.pruned })
}

/// A permission set's `SessionDuration` (`PT1H`, `PT2H30M`, `PT45M`): unreadable or absent, the longest.
pub fn session_duration(iso: Option<&str>) -> Duration {
    let Some(text) = iso.and_then(|t| t.strip_prefix("PT")) else { return LONGEST_SESSION };
    let mut total = Duration::ZERO;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let Ok(n) = number.parse::<i64>() else { return LONGEST_SESSION };
        number.clear();
        total += match c {
            'H' => Duration::hours(n),
            'M' => Duration::minutes(n),
            'S' => Duration::seconds(n),
            _ => return LONGEST_SESSION,
        };
    }
    if !number.is_empty() || total <= Duration::ZERO {
        return LONGEST_SESSION;
    }
    total.min(LONGEST_SESSION)
}

/// Where the step runs: the sso-admin role, and the Identity Center instance when configured.
pub struct SsoTarget<'a, S> {
    /// Identity Center through the sso-admin role.
    pub sso: &'a S,
    /// `remediation.sso_instance_arn`.
    pub instance: Option<&'a str>,
    /// How long to wait for a provisioning request before calling it unfinished (retryable).
    pub provisioning_wait: std::time::Duration,
}

/// Carries out a [`Remediation::DenySsoUserInPermissionSet`] step: `iam` is IAM of the session's account (to
/// check that the role really is Identity Center's), `target` Identity Center.
pub async fn deny_in_permission_set<I: IamActions + Sync, S: SsoAdminActions + Sync, G: Safeguards + Sync>(
    planned: &PlannedStep,
    occasion: Occasion<'_>,
    iam: &I,
    target: &SsoTarget<'_, S>,
    guard: &G,
    now: OffsetDateTime,
) -> StepOutcome {
    let step = &planned.step;
    let dry_run = match &planned.decision {
        Decision::Skip { reason } => return StepOutcome::new(step, Status::Skipped, reason.clone()),
        Decision::DryRun => true,
        Decision::Execute => false,
    };
    let Remediation::DenySsoUserInPermissionSet { account, role_name, permission_set, user_id } = step else {
        return StepOutcome::new(step, Status::Skipped, "not a permission-set step");
    };
    let job = Job { step, account, permission_set, user_id, occasion, target, guard, now, dry_run };
    match job.deny(iam, role_name).await {
        Ok(outcome) => outcome,
        Err(error) => StepOutcome::failed(step, &error),
    }
}

/// One permission-set step being carried out, with everything it needs.
struct Job<'a, S, G> {
    step: &'a Remediation,
    account: &'a str,
    permission_set: &'a str,
    user_id: &'a str,
    occasion: Occasion<'a>,
    target: &'a SsoTarget<'a, S>,
    guard: &'a G,
    now: OffsetDateTime,
    dry_run: bool,
}

impl<S: SsoAdminActions + Sync, G: Safeguards + Sync> Job<'_, S, G> {
    fn outcome(&self, status: Status, detail: impl Into<String>) -> StepOutcome {
        StepOutcome::new(self.step, status, detail)
    }

    fn not_done(&self, detail: String) -> StepOutcome {
        self.outcome(Status::Failed, format!("NOT REVOKED: {detail}"))
    }

    async fn deny<I: IamActions + Sync>(&self, iam: &I, role_name: &str) -> Result<StepOutcome, IamError> {
        let (permission_set, user_id) = (self.permission_set, self.user_id);
        // The role's name is anyone's to choose; its path is not: only Identity Center creates roles there.
        let Some(role) = iam.get_role(role_name).await? else {
            return Ok(self.outcome(Status::AlreadyDone, "the role no longer exists, nor do its sessions"));
        };
        if !role.path.starts_with(SSO_ROLE_PATH) {
            return Ok(self.outcome(
                Status::Skipped,
                format!(
                    "role {role_name} is not Identity Center's (path {}): its own revocation step covers it",
                    role.path
                ),
            ));
        }
        if user_id.split(':').next() != Some(role.role_id.as_str()) {
            return Ok(self.outcome(
                Status::AlreadyDone,
                format!("the session {user_id} belongs to an earlier role of that name (now {})", role.role_id),
            ));
        }
        let instance = match self.target.instance {
            Some(arn) => arn.to_owned(),
            None => match self.target.sso.instances().await?.as_slice() {
                [only] => only.clone(),
                [] => return Ok(self.not_done("the sso-admin role sees no IAM Identity Center instance".to_owned())),
                many => {
                    return Ok(self.not_done(format!(
                        "{} IAM Identity Center instances: set remediation.sso_instance_arn to the one to use",
                        many.len()
                    )))
                }
            },
        };
        let Some(set) = self.target.sso.permission_set_named(&instance, permission_set).await? else {
            return Ok(self.not_done(format!("no permission set named `{permission_set}` in {instance}")));
        };
        let max_session = session_duration(set.session_duration.as_deref());
        if self.occasion.happened.is_some_and(|t| t + max_session < self.now) {
            return Ok(self.outcome(
                Status::AlreadyDone,
                "credentials issued before the event have expired (the permission set's session duration has passed)",
            ));
        }
        let key = format!("permission-set/{}", set.arn);
        let token = self.guard.lock("sso", &key).await?;
        let result = self.write_and_provision(&instance, &set, max_session).await;
        self.guard.unlock("sso", &key, &token).await;
        result
    }

    /// Reads, merges, writes and provisions; called under the permission set's lock.
    async fn write_and_provision(
        &self,
        instance: &str,
        set: &PermissionSet,
        max_session: Duration,
    ) -> Result<StepOutcome, IamError> {
        let (account, permission_set, sso) = (self.account, self.permission_set, self.target.sso);
        let existing = sso.inline_policy(instance, &set.arn).await?;
        let merged = match merge_into_set(&existing, self.user_id, self.occasion.happened, self.now, max_session) {
            Ok(merged) => merged,
            Err(why) => {
                return Ok(self.not_done(format!(
                    "{why}; permission set `{permission_set}`'s policy was left as it is: add the deny by hand"
                )))
            }
        };
        let written = Some(merged.document.clone());
        if !merged.fits {
            return Ok(StepOutcome {
                written,
                ..self.not_done(format!(
                    "permission set `{permission_set}`'s inline policy would exceed {PERMISSION_SET_BUDGET} characters \
                     (IAM's limit for the role it is provisioned to) with the deny; nothing was written: make room \
                     or deny the session with an SCP (statement below)"
                ))
            });
        }
        // Provisioned is recorded per policy content and account, so a retry after a failed provisioning
        // provisions again, and a retry after success changes nothing.
        let provisioned = format!("provisioned#{}#{account}#{}", set.arn, sha256(&merged.document));
        if !merged.changed && self.guard.recorded(&provisioned).await? {
            return Ok(StepOutcome {
                written,
                ..self.outcome(Status::AlreadyDone, "already denied in the permission set and provisioned")
            });
        }
        let bound = super::revocation::rfc3339(self.now);
        let mut detail = if merged.changed {
            format!(
                "deny for credentials issued before {bound} added to permission set `{permission_set}`'s inline policy"
            )
        } else {
            format!("the deny was already in permission set `{permission_set}`'s inline policy")
        };
        if merged.pruned > 0 {
            detail.push_str(&format!("; pruned {} expired entr(ies)", merged.pruned));
        }
        if self.dry_run {
            return Ok(StepOutcome {
                written,
                ..self.outcome(Status::DryRun, format!("would do: {detail}, and re-provision it to account {account}"))
            });
        }
        if merged.changed {
            sso.put_inline_policy(instance, &set.arn, &merged.document.to_string()).await?;
        }
        let mut status = sso.provision(instance, &set.arn, account).await?;
        // Provisioning is asynchronous: ask again (at once, then with growing pauses) until it ends or time is up.
        let deadline = std::time::Instant::now() + self.target.provisioning_wait;
        let mut pause = std::time::Duration::from_millis(500);
        while status.status == "IN_PROGRESS" && std::time::Instant::now() < deadline {
            let Some(request) = status.request_id.clone() else { break };
            status = sso.provisioning(instance, &request).await?;
            if status.status == "IN_PROGRESS" {
                sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(4));
            }
        }
        match status.status.as_str() {
            "SUCCEEDED" => {
                self.guard.record(&provisioned, max_session).await?;
                Ok(StepOutcome { written, ..self.outcome(Status::Done, format!("{detail}; re-provisioned to {account}")) })
            }
            "IN_PROGRESS" => Ok(StepOutcome {
                written,
                retryable: true,
                ..self.outcome(
                    Status::Failed,
                    format!(
                        "{detail}; provisioning to {account} is still in progress (request {}): will be checked again",
                        status.request_id.as_deref().unwrap_or("unknown")
                    ),
                )
            }),
            other => Ok(StepOutcome {
                written,
                ..self.not_done(format!(
                    "{detail}, but provisioning to {account} ended {other}: {}; re-provision the permission set by hand",
                    status.failure.as_deref().unwrap_or("no reason given")
                ))
            }),
        }
    }
}

/// Waits without a runtime dependency in the pure library: the remediator runs on tokio, whose timer this is
/// when the `aws` feature is on.
async fn sleep(pause: std::time::Duration) {
    #[cfg(feature = "aws")]
    tokio::time::sleep(pause).await;
    #[cfg(not(feature = "aws"))]
    std::thread::sleep(pause);
}

/// A step the plan leaves out.
pub fn skipped(step: &Remediation, reason: &str) -> StepOutcome {
    StepOutcome::new(step, Status::Skipped, reason)
}

/// Fails loudly when the sso-admin role is not configured but a finding carries the step (the detector's and
/// the remediator's configurations differ): the steps for a person, in the detail.
pub fn unconfigured(step: &Remediation) -> StepOutcome {
    StepOutcome::new(
        step,
        Status::Failed,
        "NOT REVOKED: remediation.sso_admin_role_arn is not set in the remediator's configuration; add the deny to \
         the permission set's inline policy by hand and re-provision it (see the finding's notes)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-29 10:00:00 UTC);

    #[test]
    fn the_deny_is_added_beside_the_owners_statements_and_keys() {
        let existing = r#"{"Version":"2012-10-17","Id":"owners-id","Statement":[{"Sid":"ReadLogs","Effect":"Allow",
            "Action":"logs:Get*","Resource":"*"}]}"#;
        let m = merge_into_set(existing, "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).unwrap();
        assert!(m.changed && m.fits);
        assert_eq!(m.document["Id"], "owners-id");
        let statements = m.document["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "ReadLogs");
        assert_eq!(statements[1]["Effect"], "Deny");
        assert_eq!(statements[1]["Condition"]["StringEquals"]["aws:userid"], "AROASSO:alice");
        assert_eq!(statements[1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2026-11-29T10:00:00Z");
    }

    #[test]
    fn a_second_merge_of_the_same_session_changes_nothing() {
        let first = merge_into_set("", "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).unwrap();
        let text = first.document.to_string();
        let again =
            merge_into_set(&text, "AROASSO:alice", Some(NOW), NOW + Duration::minutes(1), Duration::hours(1)).unwrap();
        assert!(!again.changed);
        assert_eq!(again.document, first.document);
        // Another session of the same permission set is one more statement.
        let bob = merge_into_set(&text, "AROASSO:bob", Some(NOW), NOW, Duration::hours(1)).unwrap();
        assert!(bob.changed);
        assert_eq!(bob.document["Statement"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_unreadable_policy_is_never_replaced() {
        assert!(merge_into_set("{not json", "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).is_err());
        assert!(merge_into_set("[1,2]", "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).is_err());
    }

    #[test]
    fn a_policy_without_room_fails_and_is_not_truncated_or_collapsed() {
        // The owner's policy takes nearly all of IAM's 10,240 characters.
        let filler = "x".repeat(PERMISSION_SET_BUDGET - 200);
        let existing =
            json!({"Version":"2012-10-17","Statement":[{"Sid":"Big","Effect":"Allow","Action":"s3:GetObject",
            "Resource": format!("arn:aws:s3:::{filler}")}]})
            .to_string();
        let m = merge_into_set(&existing, "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).unwrap();
        assert!(!m.fits, "{}", compact_len(&m.document));
        // What would have been written still holds the owner's statement whole, and no deny of everyone.
        let statements = m.document["Statement"].as_array().unwrap();
        assert!(statements.iter().any(|s| s["Sid"] == "Big" && s["Resource"].as_str().unwrap().ends_with(&filler)));
        assert!(!statements.iter().any(|s| s["Sid"] == "TrailguardRevokeAllOlder"));
        // Just under: it fits.
        let small = "x".repeat(PERMISSION_SET_BUDGET - 400);
        let roomy = json!({"Version":"2012-10-17","Statement":[{"Sid":"Big","Effect":"Allow","Action":"s3:GetObject",
            "Resource": format!("arn:aws:s3:::{small}")}]})
        .to_string();
        assert!(merge_into_set(&roomy, "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).unwrap().fits);
    }

    #[test]
    fn expired_entries_are_pruned_by_the_permission_sets_session_duration() {
        let old = merge_into_set("", "AROASSO:alice", Some(NOW), NOW, Duration::hours(1)).unwrap();
        let later = NOW + Duration::hours(2);
        let m =
            merge_into_set(&old.document.to_string(), "AROASSO:bob", Some(later), later, Duration::hours(1)).unwrap();
        assert_eq!(m.pruned, 1);
        assert_eq!(m.document["Statement"].as_array().unwrap().len(), 1);
    }

    /// Identity Center as a script: the inline policy, and the provisioning answers in order (the asynchronous
    /// states moto does not model: it answers `SUCCEEDED` at once). Records every call.
    struct Scripted {
        policy: String,
        answers: std::sync::Mutex<Vec<&'static str>>,
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(policy: &str, answers: &[&'static str]) -> Scripted {
            Scripted {
                policy: policy.to_owned(),
                answers: std::sync::Mutex::new(answers.iter().rev().copied().collect()),
                calls: std::sync::Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn answer(&self, call: &str) -> Result<Provisioning, IamError> {
            self.calls.lock().unwrap().push(call.to_owned());
            let status = self.answers.lock().unwrap().pop().unwrap_or("SUCCEEDED");
            Ok(Provisioning {
                status: status.to_owned(),
                request_id: Some("req-1".into()),
                failure: (status == "FAILED").then(|| "the role's policy is too large".to_owned()),
            })
        }
    }

    impl SsoAdminActions for Scripted {
        async fn instances(&self) -> Result<Vec<String>, IamError> {
            Ok(vec!["arn:aws:sso:::instance/ssoins-0123456789abcdef".into()])
        }

        async fn permission_set_named(&self, _: &str, _: &str) -> Result<Option<PermissionSet>, IamError> {
            Ok(None)
        }

        async fn inline_policy(&self, _: &str, _: &str) -> Result<String, IamError> {
            self.calls.lock().unwrap().push("get".into());
            Ok(self.policy.clone())
        }

        async fn put_inline_policy(&self, _: &str, _: &str, _: &str) -> Result<(), IamError> {
            self.calls.lock().unwrap().push("put".into());
            Ok(())
        }

        async fn provision(&self, _: &str, _: &str, _: &str) -> Result<Provisioning, IamError> {
            self.answer("provision")
        }

        async fn provisioning(&self, _: &str, _: &str) -> Result<Provisioning, IamError> {
            self.answer("status")
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        // The script never waits, so one poll with a no-op waker completes it.
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => unreachable!("the script answers at once"),
        }
    }

    fn run(sso: &Scripted, wait: std::time::Duration) -> StepOutcome {
        let step = Remediation::DenySsoUserInPermissionSet {
            account: "111122223333".into(),
            role_name: "AWSReservedSSO_AgentAccess_0123abcd".into(),
            permission_set: "AgentAccess".into(),
            user_id: "AROASSO:agent-run-1".into(),
        };
        let target = SsoTarget { sso, instance: None, provisioning_wait: wait };
        let job = Job {
            step: &step,
            account: "111122223333",
            permission_set: "AgentAccess",
            user_id: "AROASSO:agent-run-1",
            occasion: Occasion { rule: "agent-sensitive-call", happened: Some(NOW) },
            target: &target,
            guard: &super::super::execute::Unguarded,
            now: NOW,
            dry_run: false,
        };
        let set = PermissionSet {
            arn: "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-1".into(),
            session_duration: None,
        };
        block_on(job.write_and_provision("arn:aws:sso:::instance/ssoins-0123456789abcdef", &set, Duration::hours(1)))
            .unwrap()
    }

    #[test]
    fn provisioning_in_progress_is_asked_again_until_it_succeeds() {
        let sso = Scripted::new("", &["IN_PROGRESS", "SUCCEEDED"]);
        let outcome = run(&sso, std::time::Duration::from_secs(20));
        assert_eq!(outcome.status, Status::Done, "{}", outcome.detail);
        assert_eq!(sso.calls(), ["get", "put", "provision", "status"]);
    }

    #[test]
    fn provisioning_still_in_progress_at_the_deadline_is_a_retryable_failure() {
        let sso = Scripted::new("", &["IN_PROGRESS"]);
        let outcome = run(&sso, std::time::Duration::ZERO);
        assert_eq!(outcome.status, Status::Failed);
        assert!(
            outcome.retryable && outcome.detail.contains("still in progress (request req-1)"),
            "{}",
            outcome.detail
        );
    }

    #[test]
    fn failed_provisioning_is_reported_with_its_reason_and_not_retried() {
        let sso = Scripted::new("", &["FAILED"]);
        let outcome = run(&sso, std::time::Duration::from_secs(20));
        assert_eq!(outcome.status, Status::Failed);
        assert!(!outcome.retryable);
        assert!(
            outcome.detail.starts_with("NOT REVOKED") && outcome.detail.contains("too large"),
            "{}",
            outcome.detail
        );
    }

    #[test]
    fn an_unreadable_inline_policy_is_neither_written_nor_provisioned() {
        let sso = Scripted::new("{\"Version\": ", &[]);
        let outcome = run(&sso, std::time::Duration::from_secs(20));
        assert_eq!(outcome.status, Status::Failed);
        assert!(outcome.detail.contains("left as it is"), "{}", outcome.detail);
        assert_eq!(sso.calls(), ["get"]);
    }

    #[test]
    fn session_durations_read_as_iso_8601() {
        assert_eq!(session_duration(Some("PT1H")), Duration::hours(1));
        assert_eq!(session_duration(Some("PT2H30M")), Duration::minutes(150));
        assert_eq!(session_duration(Some("PT45M")), Duration::minutes(45));
        for unreadable in [None, Some(""), Some("PT"), Some("P1D"), Some("PT1X"), Some("PT5"), Some("PT99H")] {
            assert_eq!(session_duration(unreadable), LONGEST_SESSION, "{unreadable:?}");
        }
    }
}
