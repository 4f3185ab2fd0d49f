//! The IAM changes that grant permissions, read out of a CloudTrail record.
//!
//! Three rules (`admin-policy-grant`, `wildcard-policy-grant`, `passrole-grant`) judge the same thing: a policy
//! that now applies to a principal. This module says, once per event, what that policy is (a document in the
//! request, or a managed policy ARN that must be looked up) and who receives it. `trust-policy-grant` gets the
//! same for trust policies. Parameter names: <https://docs.aws.amazon.com/IAM/latest/APIReference/API_Operations.html>.

use serde_json::Value;

use crate::finding::PrincipalKind;
use crate::policy::{PolicyDocument, PolicyError};

/// The IAM events that attach, write or activate a permissions policy.
pub const GRANT_EVENTS: &[&str] = &[
    "PutUserPolicy",
    "PutRolePolicy",
    "PutGroupPolicy",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "AttachGroupPolicy",
    "CreatePolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "PutUserPermissionsBoundary",
    "PutRolePermissionsBoundary",
    "DeleteUserPermissionsBoundary",
    "DeleteRolePermissionsBoundary",
];

/// The IAM events that set a role's trust policy.
pub const TRUST_EVENTS: &[&str] = &["CreateRole", "UpdateAssumeRolePolicy"];

/// What kind of grant an event makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// An inline policy written on a principal.
    PutInline,
    /// A managed policy attached to a principal.
    AttachManaged,
    /// A managed policy created (attached to nobody yet).
    CreatePolicy,
    /// A new version of a managed policy (in effect when made the default).
    CreateVersion,
    /// An existing version made the default.
    SetDefaultVersion,
    /// A permissions boundary set (the boundary caps what the principal's policies grant).
    PutBoundary,
    /// A permissions boundary removed: the principal's policies now apply in full.
    RemoveBoundary,
}

/// Where the granted document is.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSource {
    /// In the request itself: the parsed document and the JSON as written.
    Request(Result<PolicyDocument, PolicyError>, Value),
    /// In IAM: a managed policy version to look up (`None` = the default version).
    Managed {
        /// The policy.
        arn: String,
        /// The version.
        version: Option<String>,
    },
    /// No document is involved (boundary removal).
    None,
}

/// A permissions grant made by one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// What the event did.
    pub kind: GrantKind,
    /// The role, user or group that receives the policy, when there is one.
    pub principal: Option<(PrincipalKind, String)>,
    /// The managed policy, when one is involved.
    pub policy_arn: Option<String>,
    /// The inline policy's (or new managed policy's) name.
    pub policy_name: Option<String>,
    /// The managed policy version involved.
    pub version_id: Option<String>,
    /// Whether the grant applies now (false for a created policy or a non-default version).
    pub in_effect: bool,
    /// The document.
    pub source: DocumentSource,
}

/// A trust policy written by `CreateRole` or `UpdateAssumeRolePolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustChange {
    /// The role.
    pub role_name: String,
    /// The trust policy, parsed, and as written.
    pub document: Result<PolicyDocument, PolicyError>,
    /// The trust policy as JSON.
    pub raw: Value,
}

fn text<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// A policy document in the request: a JSON string (maybe URL-encoded) or an object.
fn request_document(params: &Value, key: &str) -> Option<DocumentSource> {
    let value = params.get(key)?;
    let (parsed, raw) = match value {
        Value::String(s) => match crate::policy::document::decode_json_text(s) {
            Ok(json) => (PolicyDocument::from_value(&json), json),
            Err(e) => (Err(e), value.clone()),
        },
        other => (PolicyDocument::from_value(other), other.clone()),
    };
    Some(DocumentSource::Request(parsed, raw))
}

fn principal_of(params: &Value) -> Option<(PrincipalKind, String)> {
    [("roleName", PrincipalKind::Role), ("userName", PrincipalKind::User), ("groupName", PrincipalKind::Group)]
        .into_iter()
        .find_map(|(key, kind)| text(params, key).map(|name| (kind, name.to_owned())))
}

/// Reads the grant an IAM event makes, if it makes one.
pub fn grant(event_name: &str, params: &Value, response: Option<&Value>) -> Option<Grant> {
    let principal = principal_of(params);
    let policy_arn = text(params, "policyArn").map(str::to_owned);
    let base = |kind, source, in_effect| Grant {
        kind,
        principal: principal.clone(),
        policy_arn: policy_arn.clone(),
        policy_name: text(params, "policyName").map(str::to_owned),
        version_id: None,
        in_effect,
        source,
    };
    let managed = |arn: &str, version: Option<String>| DocumentSource::Managed { arn: arn.to_owned(), version };
    Some(match event_name {
        "PutUserPolicy" | "PutRolePolicy" | "PutGroupPolicy" => {
            base(GrantKind::PutInline, request_document(params, "policyDocument")?, true)
        }
        "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy" => {
            base(GrantKind::AttachManaged, managed(policy_arn.as_deref()?, None), true)
        }
        "CreatePolicy" => {
            let mut g = base(GrantKind::CreatePolicy, request_document(params, "policyDocument")?, false);
            g.policy_arn = response.and_then(|r| r.pointer("/policy/arn")).and_then(Value::as_str).map(str::to_owned);
            g
        }
        "CreatePolicyVersion" => {
            let default = matches!(params.get("setAsDefault"), Some(Value::Bool(true)))
                || text(params, "setAsDefault").is_some_and(|s| s.eq_ignore_ascii_case("true"));
            let mut g = base(GrantKind::CreateVersion, request_document(params, "policyDocument")?, default);
            g.version_id =
                response.and_then(|r| r.pointer("/policyVersion/versionId")).and_then(Value::as_str).map(str::to_owned);
            g
        }
        "SetDefaultPolicyVersion" => {
            let version = text(params, "versionId").map(str::to_owned);
            let mut g = base(GrantKind::SetDefaultVersion, managed(policy_arn.as_deref()?, version.clone()), true);
            g.version_id = version;
            g
        }
        "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => {
            let arn = text(params, "permissionsBoundary")?;
            let mut g = base(GrantKind::PutBoundary, managed(arn, None), true);
            g.policy_arn = Some(arn.to_owned());
            g
        }
        "DeleteUserPermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            base(GrantKind::RemoveBoundary, DocumentSource::None, true)
        }
        _ => return None,
    })
}

/// Reads the trust policy a `CreateRole` or `UpdateAssumeRolePolicy` writes.
pub fn trust_change(event_name: &str, params: &Value) -> Option<TrustChange> {
    let key = match event_name {
        "CreateRole" => "assumeRolePolicyDocument",
        "UpdateAssumeRolePolicy" => "policyDocument",
        _ => return None,
    };
    let role_name = text(params, "roleName")?.to_owned();
    match request_document(params, key)? {
        DocumentSource::Request(document, raw) => Some(TrustChange { role_name, document, raw }),
        _ => None,
    }
}
