//! Findings: what trailguard reports, to people and to machines.
//!
//! A finding is a value, not an error: it says which rule saw what, who did it, what it touched, the evidence,
//! and what should be undone. Its JSON field names are a versioned contract (`schema_version`) read by the
//! remediator, by subscribers of the findings bus and by anyone who stores them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Actor;

/// The version of the finding's JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording.
    Info,
    /// Worth a look during the day.
    Low,
    /// Worth a look today.
    Medium,
    /// Page: someone gained, or tried to gain, dangerous access.
    High,
    /// Page now: the account is, or was nearly, taken over.
    Critical,
}

impl Severity {
    /// One level lower (for a call that failed and so changed nothing).
    pub fn lowered(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Info => Severity::Info,
        }
    }

    /// The lower-case name used in JSON and message attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the event touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `role`, `user`, `group`, `policy`, `account`, `trail`, `detector`, `security-group`, ... or `none`.
    pub kind: String,
    /// The resource's name, when it has one.
    pub name: Option<String>,
    /// The resource's ARN, when known.
    pub arn: Option<String>,
    /// The managed policy involved.
    pub policy_arn: Option<String>,
    /// The inline policy involved.
    pub policy_name: Option<String>,
    /// The managed policy version involved.
    pub policy_version: Option<String>,
}

/// The facts behind a finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sentences for people: what exactly is dangerous.
    pub notes: Vec<String>,
    /// The offending policy statements, as written.
    pub statements: Vec<Value>,
    /// The whole policy document, kept so that a removal can be undone by hand.
    pub document: Option<Value>,
}

/// A principal that owns policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// An IAM role.
    Role,
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
}

impl PrincipalKind {
    /// `role`, `user` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Role => "role",
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        }
    }
}

/// A step that would undo the danger. The remediator decides, by configuration, whether to take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Remediation {
    /// Deny one session of a role (by `aws:userid`, or by `aws:SourceIdentity`), for credentials issued before
    /// the revocation, so that a fresh legitimate session still works.
    RevokeSession {
        /// The account of the role.
        account: String,
        /// The role's name.
        role_name: String,
        /// `<role id>:<session name>`, the `aws:userid` of the session.
        user_id: Option<String>,
        /// The session's source identity, when it has one (covers every session it chained into).
        source_identity: Option<String>,
        /// Why the session's credentials rotate under the same session name (an EC2 instance profile, an ECS
        /// task, a Lambda function), when they do: such a session is quarantined for a fixed time instead,
        /// since a deny bounded by issue time would lift at the next rotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rotating: Option<String>,
    },
    /// Deny every session of a role issued before now.
    RevokeOlderSessions {
        /// The account of the role.
        account: String,
        /// The role's name.
        role_name: String,
    },
    /// Deny the temporary credentials an IAM user issued before now: those derived from its long-term key
    /// (`GetSessionToken`, `GetFederationToken`; `user_id` `None`), or one federated user's (`user_id` =
    /// `<account>:<name>`, its `aws:userid`). Written as an inline policy on the user, bounded by
    /// `aws:TokenIssueTime`: requests signed with a long-term key carry no issue time and are not denied.
    RevokeUserSessions {
        /// The account of the user.
        account: String,
        /// The IAM user that issued the credentials.
        user_name: String,
        /// The federated user's `aws:userid`, to deny that one only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// Deactivate a long-term access key of an IAM user.
    DeactivateAccessKey {
        /// The account of the user.
        account: String,
        /// The user's name.
        user_name: String,
        /// The key.
        access_key_id: String,
    },
    /// Detach one managed policy from the one principal it was attached to.
    DetachManagedPolicy {
        /// The account of the principal.
        account: String,
        /// Role, user or group.
        principal_kind: PrincipalKind,
        /// The principal's name.
        principal_name: String,
        /// The policy.
        policy_arn: String,
        /// SHA-256 of the document the detector judged (canonical JSON), when it read one: after the freshness
        /// window the step acts only while the policy still holds exactly that document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_sha256: Option<String>,
    },
    /// Delete an inline policy (its document stays in the finding's evidence).
    DeleteInlinePolicy {
        /// The account of the principal.
        account: String,
        /// Role, user or group.
        principal_kind: PrincipalKind,
        /// The principal's name.
        principal_name: String,
        /// The inline policy's name.
        policy_name: String,
        /// SHA-256 of the document the event wrote (canonical JSON): after the freshness window the step acts only
        /// while the policy still holds exactly that document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_sha256: Option<String>,
    },
    /// Make the previous version of a managed policy the default again (when `version_id` is still default).
    RollBackPolicyVersion {
        /// The account of the policy.
        account: String,
        /// The policy.
        policy_arn: String,
        /// The offending version, which must no longer be the default afterwards.
        version_id: Option<String>,
    },
    /// Remove the offending statements from a role's trust policy, keeping the rest.
    RemoveTrustStatements {
        /// The account of the role.
        account: String,
        /// The role's name.
        role_name: String,
        /// The offending statements, as written (matched by content, since positions can change).
        statements: Vec<Value>,
    },
    /// Deny one IAM Identity Center session in its permission set's inline policy (the `AWSReservedSSO_*` role
    /// itself cannot be edited), bounded by `aws:TokenIssueTime`, and re-provision the permission set to the
    /// session's account. Carried out through the optional sso-admin role (`remediation.sso_admin_role_arn`).
    DenySsoUserInPermissionSet {
        /// The account of the session's role.
        account: String,
        /// The `AWSReservedSSO_<permission set>_<hash>` role, checked in IAM to be Identity Center's.
        role_name: String,
        /// The permission set's name, from the role's name.
        permission_set: String,
        /// `<role id>:<user name>`, the session's `aws:userid`.
        user_id: String,
    },
}

impl Remediation {
    /// The account the step acts in: its target's, which for a session is the role's own account (a
    /// cross-account session's role is not in the account that recorded the call).
    pub fn account(&self) -> &str {
        match self {
            Remediation::RevokeSession { account, .. }
            | Remediation::RevokeOlderSessions { account, .. }
            | Remediation::DeactivateAccessKey { account, .. }
            | Remediation::RevokeUserSessions { account, .. }
            | Remediation::DetachManagedPolicy { account, .. }
            | Remediation::DeleteInlinePolicy { account, .. }
            | Remediation::RollBackPolicyVersion { account, .. }
            | Remediation::RemoveTrustStatements { account, .. }
            | Remediation::DenySsoUserInPermissionSet { account, .. } => account,
        }
    }

    /// Whether the step removes something a person may want back (so its record is delivered first).
    pub fn removes(&self) -> bool {
        matches!(
            self,
            Remediation::DetachManagedPolicy { .. }
                | Remediation::DeleteInlinePolicy { .. }
                | Remediation::RollBackPolicyVersion { .. }
                | Remediation::RemoveTrustStatements { .. }
        )
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            // Said as the executor does it: by session id first, since a source identity may be shared by every
            // run of the same agent.
            Remediation::RevokeSession { role_name, user_id, source_identity, rotating, .. } => {
                match (user_id, source_identity) {
                    (Some(uid), _) if rotating.is_some() => format!(
                        "quarantine session {uid} of role {role_name} (its credentials rotate: {})",
                        rotating.as_deref().unwrap_or_default()
                    ),
                    (Some(uid), _) => {
                        format!("revoke session {uid} of role {role_name} (credentials issued before the revocation)")
                    }
                    (None, Some(si)) => format!("revoke the sessions of role {role_name} with source identity {si}"),
                    (None, None) => format!("revoke the session of role {role_name}"),
                }
            }
            Remediation::RevokeOlderSessions { role_name, .. } => {
                format!("revoke every session of role {role_name} issued before the revocation")
            }
            Remediation::DeactivateAccessKey { user_name, access_key_id, .. } => {
                format!("deactivate access key {access_key_id} of user {user_name}")
            }
            Remediation::RevokeUserSessions { user_name, user_id: Some(uid), .. } => {
                format!("revoke federated user {uid} with a deny on its issuing user {user_name}")
            }
            Remediation::RevokeUserSessions { user_name, user_id: None, .. } => {
                format!("revoke the temporary credentials user {user_name} obtained before the revocation")
            }
            Remediation::DetachManagedPolicy { principal_kind, principal_name, policy_arn, .. } => {
                format!("detach {policy_arn} from {} {principal_name}", principal_kind.as_str())
            }
            Remediation::DeleteInlinePolicy { principal_kind, principal_name, policy_name, .. } => {
                format!("delete inline policy {policy_name} of {} {principal_name}", principal_kind.as_str())
            }
            Remediation::RollBackPolicyVersion { policy_arn, version_id, .. } => format!(
                "make the previous version of {policy_arn} the default again (offending version {})",
                version_id.as_deref().unwrap_or("unknown")
            ),
            Remediation::RemoveTrustStatements { role_name, statements, .. } => {
                format!("remove {} statement(s) from the trust policy of role {role_name}", statements.len())
            }
            Remediation::DenySsoUserInPermissionSet { account, permission_set, user_id, .. } => format!(
                "deny session {user_id} in IAM Identity Center permission set {permission_set} (credentials issued \
                 before the revocation) and re-provision it to account {account}"
            ),
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The JSON shape's version, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable: the same event and rule always give the same id, so a repeated delivery can be dropped.
    pub id: String,
    /// The rule's id, such as `passrole-grant`.
    pub rule: String,
    /// How urgent.
    pub severity: Severity,
    /// One line saying what happened.
    pub title: String,
    /// Why it matters, from the rule.
    pub description: String,
    /// Whether the call failed, so nothing changed: an attempt.
    pub attempt: bool,
    /// The account the event belongs to.
    pub account: Option<String>,
    /// The region the event was recorded in.
    pub region: Option<String>,
    /// When the call was made.
    pub time: Option<String>,
    /// CloudTrail's event id.
    pub event_id: Option<String>,
    /// The event's source, such as `iam.amazonaws.com`.
    pub event_source: String,
    /// The event's name, such as `AttachRolePolicy`.
    pub event_name: String,
    /// The error code, for an attempt.
    pub error_code: Option<String>,
    /// Who did it.
    pub actor: Actor<'static>,
    /// What it touched.
    pub target: Target,
    /// Why it is dangerous.
    pub evidence: Evidence,
    /// What would undo it, in order.
    pub remediation: Vec<Remediation>,
    /// Whether `remediation` has steps: a plain field the findings-bus rule can route on (EventBridge patterns
    /// cannot portably test an array for emptiness).
    #[serde(default)]
    pub remediable: bool,
}

impl Finding {
    /// A short text a person can act on (SNS e-mail, chat, terminal).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("[{}] {}", self.severity.as_str().to_uppercase(), self.title));
        line(format!("Rule: {} - {}", self.rule, self.description));
        let mut who = format!("Who: {} ({})", self.actor.display_name(), self.actor.kind);
        if let Some(arn) = &self.actor.arn {
            who.push_str(&format!(", {arn}"));
        }
        line(who);
        if let Some(agent) = &self.actor.agent {
            line(format!("     AI agent: {} `{}` matches `{}`", agent.signal, agent.value, agent.pattern));
        }
        if let Some(si) = &self.actor.source_identity {
            line(format!("     source identity: {si}"));
        }
        if let Some(ip) = &self.actor.source_ip {
            line(format!("     from {ip}{}", if self.actor.mfa { " with MFA" } else { "" }));
        }
        line(format!(
            "When/where: {} in account {} ({}), {} {}",
            self.time.as_deref().unwrap_or("unknown time"),
            self.account.as_deref().unwrap_or("unknown"),
            self.region.as_deref().unwrap_or("unknown region"),
            self.event_source,
            self.event_name
        ));
        if self.attempt {
            line(format!(
                "The call FAILED ({}): nothing changed, but someone tried.",
                self.error_code.as_deref().unwrap_or("error")
            ));
        }
        for note in &self.evidence.notes {
            line(format!("- {note}"));
        }
        for statement in &self.evidence.statements {
            line(format!("  {}", serde_json::to_string(statement).unwrap_or_default()));
        }
        if !self.remediation.is_empty() {
            line("Suggested response:".to_owned());
            for (i, step) in self.remediation.iter().enumerate() {
                line(format!("  {}. {}", i + 1, step.describe()));
            }
        }
        line(format!("Event: {}  Finding: {}", self.event_id.as_deref().unwrap_or("no event id"), self.id));
        out
    }
}

/// A finding event could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a trailguard finding: {0}")]
pub struct FindingEventError(String);

impl Finding {
    /// Reads a finding from an EventBridge event (`detail-type` `Trailguard Finding`, the finding under
    /// `detail`) or from the bare finding JSON.
    pub fn from_event(json: &str) -> Result<Finding, FindingEventError> {
        let value: Value = serde_json::from_str(json).map_err(|e| FindingEventError(e.to_string()))?;
        let finding = match value.get("detail") {
            Some(detail) if value.get("detail-type").is_some() => detail.clone(),
            _ => value,
        };
        let finding: Finding = serde_path_to_error::deserialize(finding).map_err(|e| {
            let path = e.path().to_string();
            FindingEventError(format!("`{path}`: {}", e.into_inner()))
        })?;
        if finding.schema_version != SCHEMA_VERSION {
            return Err(FindingEventError(format!(
                "schema version {} is not {SCHEMA_VERSION}",
                finding.schema_version
            )));
        }
        Ok(finding)
    }
}

/// Lower-case hexadecimal of `bytes` (finding ids, MACs), without a `format!` per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.extend([byte >> 4, byte & 0x0f].into_iter().filter_map(|nibble| char::from_digit(u32::from(nibble), 16)));
    }
    text
}
