//! Who a role's trust policy lets assume it.
//!
//! A trust policy is a resource-based policy on the role: its Allow statements with `sts:AssumeRole*` say which
//! principals may obtain the role's credentials. Danger is a principal outside the organisation's control:
//! anyone (`*`), an account that is neither the role's own nor on the allow-list, or a web identity provider
//! without a subject condition (any GitHub repository, for instance). Conditions AWS documents for exactly this
//! (`aws:PrincipalOrgID`, `aws:SourceAccount`, `sts:ExternalId`, ...) make such a statement acceptable.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html>

use serde::{Deserialize, Serialize};

use super::analysis::narrowed;
use super::document::{Actions, Effect, PolicyDocument, PrincipalSpec};
use crate::wildcard;

/// Keys that tie a principal to a known organisation, account or principal.
const ORG_KEYS: &[&str] = &[
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
];

/// What is wrong with one statement of a trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TrustIssue {
    /// Any principal of any account may assume the role.
    Anyone {
        /// Position of the statement.
        statement: usize,
    },
    /// An account outside the allow-list may assume the role with no external id or organisation condition.
    ExternalAccount {
        /// Position of the statement.
        statement: usize,
        /// The account id.
        account: String,
    },
    /// A web identity (OIDC) provider may hand the role to any of its subjects.
    UnboundWebIdentity {
        /// Position of the statement.
        statement: usize,
        /// The provider.
        provider: String,
    },
}

impl TrustIssue {
    /// The statement the issue is in.
    pub fn statement(&self) -> usize {
        match self {
            TrustIssue::Anyone { statement }
            | TrustIssue::ExternalAccount { statement, .. }
            | TrustIssue::UnboundWebIdentity { statement, .. } => *statement,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            TrustIssue::Anyone { statement } => format!("statement {statement} lets any AWS principal assume the role"),
            TrustIssue::ExternalAccount { statement, account } => format!(
                "statement {statement} lets account {account} (not on the allow-list) assume the role without an external id or organisation condition"
            ),
            TrustIssue::UnboundWebIdentity { statement, provider } => format!(
                "statement {statement} lets any identity of {provider} assume the role (no `sub` condition)"
            ),
        }
    }
}

/// Finds every statement of a trust policy that lets an outsider assume the role.
///
/// `own_account` is the role's account; `trusted_accounts` are accounts the configuration vouches for.
pub fn analyze_trust(doc: &PolicyDocument, own_account: Option<&str>, trusted_accounts: &[String]) -> Vec<TrustIssue> {
    // A Deny for everyone outside the organisation narrows every Allow.
    let org_fenced = doc.denies().any(|s| {
        s.conditions
            .iter()
            .any(|c| c.operator.contains("Not") && ORG_KEYS.iter().any(|k| c.key.eq_ignore_ascii_case(k)))
    });
    let mut issues = Vec::new();
    for statement in doc.statements.iter().filter(|s| s.effect == Effect::Allow && grants_assume(&s.actions)) {
        let index = statement.index;
        let org_narrowed = org_fenced || narrowed(&statement.conditions, ORG_KEYS);
        let principals = match &statement.principals {
            Some(PrincipalSpec::Only(p)) => p,
            // Allow with NotPrincipal grants to everyone but the listed ones.
            Some(PrincipalSpec::AllExcept(_)) | None => {
                if !org_narrowed {
                    issues.push(TrustIssue::Anyone { statement: index });
                }
                continue;
            }
        };
        if principals.anyone {
            if !org_narrowed {
                issues.push(TrustIssue::Anyone { statement: index });
            }
            continue;
        }
        let external_id = narrowed(&statement.conditions, &["sts:ExternalId"]);
        for principal in &principals.aws {
            let Some(account) = account_of(principal) else { continue };
            let known = own_account == Some(account.as_str()) || trusted_accounts.iter().any(|t| t == &account);
            if !known && !org_narrowed && !external_id {
                issues.push(TrustIssue::ExternalAccount { statement: index, account });
            }
        }
        for provider in &principals.federated {
            if is_web_identity(provider) && !subject_bound(statement, provider) {
                issues.push(TrustIssue::UnboundWebIdentity { statement: index, provider: provider.clone() });
            }
        }
    }
    issues.dedup();
    issues
}

/// Whether the statement allows one of the ways to assume a role.
fn grants_assume(actions: &Actions) -> bool {
    let assume = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"];
    match actions {
        Actions::Only(patterns) => patterns.iter().any(|p| assume.iter().any(|a| wildcard::matches(p.trim(), a, true))),
        Actions::AllExcept(patterns) => {
            !assume.iter().all(|a| patterns.iter().any(|p| wildcard::matches(p.trim(), a, true)))
        }
    }
}

/// The account of an `AWS` principal: a bare account id or any IAM ARN.
fn account_of(principal: &str) -> Option<String> {
    let principal = principal.trim();
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return Some(principal.to_owned());
    }
    let account = principal.strip_prefix("arn:")?.split(':').nth(3)?;
    (!account.is_empty()).then(|| account.to_owned())
}

/// OIDC providers: an `oidc-provider/` ARN or one of the built-in web identity providers.
fn is_web_identity(provider: &str) -> bool {
    provider.contains(":oidc-provider/")
        || matches!(
            provider,
            "cognito-identity.amazonaws.com" | "accounts.google.com" | "graph.facebook.com" | "www.amazon.com"
        )
}

/// Whether the statement pins the provider's subject (or, for Cognito, the identity pool audience).
fn subject_bound(statement: &super::document::Statement, provider: &str) -> bool {
    let host = provider.rsplit_once("oidc-provider/").map_or(provider, |(_, host)| host);
    let wanted = if host == "cognito-identity.amazonaws.com" { "aud" } else { "sub" };
    let key = format!("{host}:{wanted}");
    narrowed(&statement.conditions, &[key.as_str()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(json: &str) -> Vec<TrustIssue> {
        analyze_trust(&PolicyDocument::parse(json).unwrap(), Some("123456789012"), &["111122223333".to_owned()])
    }

    fn trust(principal: &str, condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"{condition}}}]}}"#
        )
    }

    #[test]
    fn anyone_is_flagged_unless_fenced_to_the_organisation() {
        assert_eq!(issues(&trust(r#""*""#, "")), vec![TrustIssue::Anyone { statement: 0 }]);
        assert_eq!(issues(&trust(r#"{"AWS":"*"}"#, "")), vec![TrustIssue::Anyone { statement: 0 }]);
        assert!(issues(&trust(r#"{"AWS":"*"}"#, r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}"#))
            .is_empty());
        // An external id alone is no secret: it does not fence `*`.
        assert_eq!(issues(&trust(r#""*""#, r#","Condition":{"StringEquals":{"sts:ExternalId":"x"}}"#)).len(), 1);
    }

    #[test]
    fn accounts_are_checked_against_the_allow_list() {
        assert!(issues(&trust(r#"{"AWS":"arn:aws:iam::123456789012:root"}"#, "")).is_empty());
        assert!(issues(&trust(r#"{"AWS":"111122223333"}"#, "")).is_empty());
        assert_eq!(
            issues(&trust(r#"{"AWS":["arn:aws:iam::444455556666:role/x"]}"#, "")),
            vec![TrustIssue::ExternalAccount { statement: 0, account: "444455556666".into() }]
        );
        assert!(issues(&trust(
            r#"{"AWS":"arn:aws:iam::444455556666:root"}"#,
            r#","Condition":{"StringEquals":{"sts:ExternalId":"vendor-7"}}"#
        ))
        .is_empty());
        assert_eq!(
            issues(&trust(
                r#"{"AWS":"arn:aws:iam::444455556666:root"}"#,
                r#","Condition":{"StringEqualsIfExists":{"sts:ExternalId":"vendor-7"}}"#
            ))
            .len(),
            1,
            "IfExists passes when the caller sends no external id"
        );
    }

    #[test]
    fn services_are_fine_and_web_identity_needs_a_subject() {
        assert!(issues(&trust(r#"{"Service":"lambda.amazonaws.com"}"#, "")).is_empty());
        let github = r#"{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}"#;
        let with_web =
            |cond: &str| issues(&trust(github, cond).replace("sts:AssumeRole\"", "sts:AssumeRoleWithWebIdentity\""));
        assert_eq!(
            with_web(
                r#","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}"#
            )
            .len(),
            1
        );
        assert!(with_web(
            r#","Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:example/app:*"}}"#
        )
        .is_empty());
    }

    #[test]
    fn not_principal_and_deny_fences() {
        assert_eq!(
            issues(r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#).len(),
            1
        );
        assert!(issues(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
               {"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-abc"}}}]}"#
        )
        .is_empty());
    }
}
