//! The IAM calls trailguard makes, as traits that speak trailguard's types, and their error.
//!
//! [`IamReader`] is what the detector may ask (read-only look-ups); [`IamActions`] is what remediation may do.
//! The `aws` module implements both with the SDK; tests can implement them to record the exact calls. Keeping
//! them narrow is also what keeps trailguard's own IAM roles least-privilege: each method is one IAM action.

use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::behaviour::{Count, Crossing};
use crate::engine::{Need, Resolved};
use crate::finding::PrincipalKind;
use crate::session::Session;

/// What kind of failure an IAM call had; decides whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IamErrorKind {
    /// The entity does not exist.
    NotFound,
    /// trailguard's role lacks the permission.
    AccessDenied,
    /// IAM throttled the call.
    Throttled,
    /// A network error, timeout or 5xx.
    Transient,
    /// trailguard cannot act in that account at all: its member role cannot be assumed (missing, or the trust
    /// refuses). Permanent until someone fixes the account; on-call is told once an hour.
    Blind,
    /// Anything else (a malformed request, a limit).
    Other,
}

/// A failed IAM call.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("`{action}` failed ({kind:?}): {message}")]
pub struct IamError {
    /// What kind of failure.
    pub kind: IamErrorKind,
    /// The IAM action, such as `iam:DetachRolePolicy`.
    pub action: String,
    /// The service's message.
    pub message: String,
}

impl IamError {
    /// Whether retrying later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self.kind, IamErrorKind::Throttled | IamErrorKind::Transient)
    }
}

/// What trailguard needs to know of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// The role's ARN, with its path.
    pub arn: String,
    /// The role's unique id (`AROA...`), the first half of its sessions' `aws:userid`.
    pub role_id: String,
    /// The role's path (`/aws-service-role/...` for service-linked roles).
    pub path: String,
    /// The role's maximum session duration in seconds.
    pub max_session_seconds: i64,
    /// The trust policy, as IAM returns it (URL-encoded on real AWS).
    pub trust_policy: Option<String>,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, ...
    pub id: String,
    /// Whether it is the default.
    pub is_default: bool,
}

/// The IAM calls remediation makes. Documents go in as JSON text and come back as IAM returns them.
pub trait IamActions {
    /// `GetRole`; `None` when the role does not exist.
    fn get_role(&self, role: &str) -> impl Future<Output = Result<Option<RoleInfo>, IamError>> + Send;
    /// `Get{Role,User,Group}Policy`; `None` when there is no such inline policy.
    fn get_inline_policy(
        &self,
        kind: PrincipalKind,
        principal: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, IamError>> + Send;
    /// `List{Role,User,Group}Policies`: the names of the principal's inline policies.
    fn inline_policy_names(
        &self,
        kind: PrincipalKind,
        principal: &str,
    ) -> impl Future<Output = Result<Vec<String>, IamError>> + Send;
    /// `PutRolePolicy`.
    fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `PutUserPolicy`.
    fn put_user_policy(
        &self,
        user: &str,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `Delete{Role,User,Group}Policy`.
    fn delete_inline_policy(
        &self,
        kind: PrincipalKind,
        principal: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `ListAttached{Role,User,Group}Policies`: the ARNs.
    fn attached_policies(
        &self,
        kind: PrincipalKind,
        principal: &str,
    ) -> impl Future<Output = Result<Vec<String>, IamError>> + Send;
    /// `Detach{Role,User,Group}Policy`.
    fn detach_policy(
        &self,
        kind: PrincipalKind,
        principal: &str,
        arn: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `ListEntitiesForPolicy`: the roles, users and groups a managed policy is attached to.
    fn policy_entities(&self, arn: &str)
        -> impl Future<Output = Result<Vec<(PrincipalKind, String)>, IamError>> + Send;
    /// `ListPolicyVersions`, newest first.
    fn policy_versions(&self, arn: &str) -> impl Future<Output = Result<Vec<PolicyVersion>, IamError>> + Send;
    /// `GetPolicyVersion`: the document.
    fn policy_version_document(
        &self,
        arn: &str,
        version: &str,
    ) -> impl Future<Output = Result<String, IamError>> + Send;
    /// `SetDefaultPolicyVersion`.
    fn set_default_policy_version(&self, arn: &str, version: &str)
        -> impl Future<Output = Result<(), IamError>> + Send;
    /// `UpdateAssumeRolePolicy`.
    fn update_trust_policy(&self, role: &str, document: &str) -> impl Future<Output = Result<(), IamError>> + Send;
    /// `ListAccessKeys`: `(key id, active)`.
    fn access_keys(&self, user: &str) -> impl Future<Output = Result<Vec<(String, bool)>, IamError>> + Send;
    /// `UpdateAccessKey` to `Inactive`.
    fn deactivate_access_key(&self, user: &str, key: &str) -> impl Future<Output = Result<(), IamError>> + Send;
}

/// The read-only look-ups the detector makes for the rules (IAM, and the session registry in its state table).
pub trait IamReader {
    /// A managed policy's document: the given version, or the default (`GetPolicy`, `GetPolicyVersion`).
    fn policy_document(
        &self,
        account: &str,
        arn: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<String, IamError>> + Send;
    /// A role's tags (`ListRoleTags`).
    fn role_tags(
        &self,
        account: &str,
        role: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, IamError>> + Send;
    /// The registry's agent session for a temporary access key, live at `at` (epoch seconds); `None` when there
    /// is none (not an agent session, or expired).
    fn session(&self, access_key_id: &str, at: i64) -> impl Future<Output = Result<Option<Session>, IamError>> + Send;
    /// Counts one event of a session's behaviour, atomically; the evidence when this event crossed the threshold.
    fn count(&self, count: &Count) -> impl Future<Output = Result<Crossing, IamError>> + Send;
    /// Remembers an agent identity's use of a region, atomically; the page when it is a first use after learning.
    fn region(
        &self,
        used: &crate::regions::RegionUse,
    ) -> impl Future<Output = Result<crate::regions::Novelty, IamError>> + Send;
}

/// Answers the engine's needs through a reader. A failure a retry may fix is returned (the caller fails the
/// invocation so the event is retried); any other failure becomes an "unavailable" answer the engine reports.
pub async fn resolve<R: IamReader>(needs: &[Need], reader: &R) -> Result<Resolved, IamError> {
    let mut resolved = Resolved::default();
    for need in needs {
        match need {
            Need::Policy { account, arn, version } => {
                let answer = match reader.policy_document(account, arn, version.as_deref()).await {
                    Ok(document) => Ok(document),
                    Err(e) if e.retryable() => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                resolved.policies.insert((arn.clone(), version.clone()), answer);
            }
            Need::RoleTags { account, role_name } => {
                let answer = match reader.role_tags(account, role_name).await {
                    Ok(tags) => Ok(tags),
                    Err(e) if e.retryable() => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                resolved.role_tags = Some(answer);
            }
            Need::Count(count) => {
                let answer = match reader.count(count).await {
                    Ok(crossing) => Ok(crossing),
                    Err(e) if e.retryable() => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                resolved.crossing = Some((count.clone(), answer));
            }
            Need::Region(used) => {
                let answer = match reader.region(used).await {
                    Ok(novelty) => Ok(novelty),
                    Err(e) if e.retryable() => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                resolved.region = Some(answer);
            }
            Need::Session { access_key_id, at } => {
                let answer = match reader.session(access_key_id, *at).await {
                    Ok(session) => Ok(session),
                    Err(e) if e.retryable() => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                resolved.session = Some(answer);
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers from a script and records each call.
    struct Scripted {
        calls: Mutex<Vec<String>>,
        policy: Result<String, IamError>,
    }

    impl IamReader for Scripted {
        async fn policy_document(&self, account: &str, arn: &str, version: Option<&str>) -> Result<String, IamError> {
            self.calls.lock().unwrap().push(format!("policy {account} {arn} {version:?}"));
            self.policy.clone()
        }

        async fn role_tags(&self, account: &str, role: &str) -> Result<Vec<(String, String)>, IamError> {
            self.calls.lock().unwrap().push(format!("tags {account} {role}"));
            Ok(vec![("trailguard:agent".into(), "true".into())])
        }

        async fn session(&self, key: &str, at: i64) -> Result<Option<Session>, IamError> {
            self.calls.lock().unwrap().push(format!("session {key} {at}"));
            Ok(None)
        }

        async fn count(&self, count: &Count) -> Result<Crossing, IamError> {
            self.calls.lock().unwrap().push(format!("count {}", count.key));
            Ok(None)
        }

        async fn region(&self, used: &crate::regions::RegionUse) -> Result<crate::regions::Novelty, IamError> {
            self.calls.lock().unwrap().push(format!("region {}", used.region));
            Ok(None)
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        // The readers here never wait, so one poll with a no-op waker completes them.
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => unreachable!("scripted readers are ready at once"),
        }
    }

    fn needs() -> Vec<Need> {
        vec![
            Need::Policy {
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:policy/p".into(),
                version: None,
            },
            Need::RoleTags { account: "123456789012".into(), role_name: "dev".into() },
        ]
    }

    fn error(kind: IamErrorKind) -> IamError {
        IamError { kind, action: "iam:GetPolicy".into(), message: "no".into() }
    }

    #[test]
    fn answers_are_filled_in_and_calls_made_once_each() {
        let reader = Scripted { calls: Mutex::new(Vec::new()), policy: Ok("{}".into()) };
        let resolved = block_on(resolve(&needs(), &reader)).unwrap();
        assert_eq!(resolved.policies.len(), 1);
        assert_eq!(resolved.role_tags, Some(Ok(vec![("trailguard:agent".into(), "true".into())])));
        assert_eq!(
            *reader.calls.lock().unwrap(),
            ["policy 123456789012 arn:aws:iam::123456789012:policy/p None", "tags 123456789012 dev"]
        );
    }

    #[test]
    fn permanent_failures_become_unavailable_and_transient_ones_are_returned() {
        let denied = Scripted { calls: Mutex::new(Vec::new()), policy: Err(error(IamErrorKind::AccessDenied)) };
        let resolved = block_on(resolve(&needs(), &denied)).unwrap();
        let answer = resolved.policies.values().next().unwrap();
        assert!(answer.as_ref().unwrap_err().contains("AccessDenied"));
        let throttled = Scripted { calls: Mutex::new(Vec::new()), policy: Err(error(IamErrorKind::Throttled)) };
        assert_eq!(block_on(resolve(&needs(), &throttled)).unwrap_err().kind, IamErrorKind::Throttled);
    }
}
