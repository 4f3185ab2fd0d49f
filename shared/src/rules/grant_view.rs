//! A grant or trust change with its document and analysis, prepared once per event for the rules.

use serde_json::Value;

use crate::change::{Grant, GrantKind, TrustChange};
use crate::finding::{Remediation, Target};
use crate::policy::{Grants, PolicyDocument, TrustIssue};

/// A permissions grant, its document (when available) and what it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantView {
    /// What the event did.
    pub grant: Grant,
    /// The document, parsed.
    pub document: Option<PolicyDocument>,
    /// The document as JSON.
    pub raw: Option<Value>,
    /// The analysis of the document.
    pub grants: Option<Grants>,
    /// Why there is no document, when there is none (not looked up offline, look-up failed, unparseable).
    pub unavailable: Option<String>,
}

/// A trust policy change and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustView {
    /// The change.
    pub change: TrustChange,
    /// The issues found, or why the document could not be read.
    pub issues: Result<Vec<TrustIssue>, String>,
}

impl GrantView {
    /// What the grant touched.
    pub fn target(&self) -> Target {
        let g = &self.grant;
        let (kind, name) = match &g.principal {
            Some((kind, name)) => (kind.as_str().to_owned(), Some(name.clone())),
            None => {
                ("policy".to_owned(), g.policy_arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_owned))
            }
        };
        Target {
            kind,
            name,
            arn: None,
            policy_arn: g.policy_arn.clone(),
            policy_name: g.policy_name.clone(),
            policy_version: g.version_id.clone(),
        }
    }

    /// How people should read the grant: "inline policy `p` on role `r`".
    pub fn subject(&self) -> String {
        let g = &self.grant;
        let on = g.principal.as_ref().map(|(k, n)| format!(" on {} {n}", k.as_str())).unwrap_or_default();
        let policy = g.policy_arn.as_deref().or(g.policy_name.as_deref()).unwrap_or("policy");
        match g.kind {
            GrantKind::PutInline => format!("inline policy {}{on}", g.policy_name.as_deref().unwrap_or("?")),
            GrantKind::AttachManaged => format!("managed policy {policy} attached{on}"),
            GrantKind::CreatePolicy => format!("new managed policy {policy} (not attached yet)"),
            GrantKind::CreateVersion if g.in_effect => format!("new default version of {policy}"),
            GrantKind::CreateVersion => format!("new non-default version of {policy} (not in effect yet)"),
            GrantKind::SetDefaultVersion => {
                format!("version {} of {policy} made the default", g.version_id.as_deref().unwrap_or("?"))
            }
            GrantKind::PutBoundary => format!("permissions boundary {policy} set{on}"),
            GrantKind::RemoveBoundary => format!("permissions boundary removed{on}"),
        }
    }

    /// The statements at the given positions, as written.
    pub fn statements(&self, positions: &[usize]) -> Vec<Value> {
        let Some(doc) = &self.document else { return Vec::new() };
        positions.iter().filter_map(|&i| doc.statements.get(i).map(|s| s.raw.clone())).collect()
    }

    /// The step that undoes exactly this grant (only this attachment, only this version), if there is one.
    pub fn undo(&self, account: &str) -> Vec<Remediation> {
        let g = &self.grant;
        let account = account.to_owned();
        let step = match (g.kind, &g.principal) {
            (GrantKind::PutInline, Some((kind, name))) => {
                g.policy_name.clone().map(|policy_name| Remediation::DeleteInlinePolicy {
                    account,
                    principal_kind: *kind,
                    principal_name: name.clone(),
                    policy_name,
                    document_sha256: self.raw.as_ref().map(crate::policy::canonical::sha256),
                })
            }
            (GrantKind::AttachManaged, Some((kind, name))) => {
                g.policy_arn.clone().map(|policy_arn| Remediation::DetachManagedPolicy {
                    account,
                    principal_kind: *kind,
                    principal_name: name.clone(),
                    policy_arn,
                    document_sha256: self
                        .raw
                        .as_ref()
                        .filter(|_| self.unavailable.is_none())
                        .map(crate::policy::canonical::sha256),
                })
            }
            (GrantKind::CreateVersion | GrantKind::SetDefaultVersion, _) if g.in_effect => {
                g.policy_arn.clone().map(|policy_arn| Remediation::RollBackPolicyVersion {
                    account,
                    policy_arn,
                    version_id: g.version_id.clone(),
                })
            }
            _ => None,
        };
        step.into_iter().collect()
    }
}

/// The verdict every grant rule gives: about this grant, with these statements as evidence, undoing exactly
/// this grant and stopping the actor. A grant not yet in effect (a created policy, a non-default version) is
/// reported at `Low`: nothing is granted until it is attached or made the default, which is caught then.
pub(crate) fn grant_verdict(
    ctx: &super::Context<'_>,
    view: &GrantView,
    severity: crate::finding::Severity,
    what: &str,
    statements: &[usize],
    notes: Vec<String>,
) -> super::Verdict {
    let severity = if view.grant.in_effect { severity } else { crate::finding::Severity::Low };
    let title = format!("{}: {what}", capitalised(&view.subject()));
    let mut verdict = super::Verdict::new(severity, title, view.target());
    verdict.notes = notes;
    verdict.statements = view.statements(statements);
    verdict.document = view.raw.clone();
    if view.grant.in_effect {
        verdict.remediation = view.undo(&ctx.account());
        verdict.remediation.extend(ctx.contain_actor());
    }
    verdict
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
