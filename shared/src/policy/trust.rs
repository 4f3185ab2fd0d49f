//! Who a role's trust policy lets assume it.
//!
//! A trust policy is a resource-based policy on the role: its Allow statements with `sts:AssumeRole*` say which
//! principals may obtain the role's credentials. Danger is a principal outside the organisation's control:
//! anyone (`*`), an account that is neither the role's own nor on the allow-list, or a web identity provider
//! whose conditions do not pin the identity (any GitHub repository, for instance).
//!
//! Conditions narrow only to what their values name, as IAM evaluates them:
//! - `Principal: "*"` is narrowed by `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:PrincipalAccount` and
//!   `aws:PrincipalArn` only when every value lies inside the configured organisations or trusted accounts (or
//!   the role's own account); a foreign organisation or account there is an issue that names it. A wildcard in
//!   the part that names the organisation or account narrows nothing under `StringLike`/`ArnLike`; under
//!   `StringEquals` it is a literal character and admits nobody.
//! - `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOrgID`, `aws:SourceOrgPaths` exist only in requests that a
//!   service principal makes for a resource: an IAM caller never carries them, so a test on them admits no IAM
//!   caller at all.
//! - `sts:ExternalId` narrows only a named outside account (the confused-deputy case): it is no secret, so it
//!   never narrows `*`. <https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html>
//! - `...IfExists` and `ForAllValues:` narrow nothing (both hold when the key is absent); `ForAnyValue:` does.

use serde::{Deserialize, Serialize};

use super::analysis::{is_literal, narrowed, narrowing_operator};
use super::document::{Actions, Condition, Effect, PolicyDocument, PrincipalSpec, Statement};
use crate::wildcard;

/// Keys that tie the calling principal to an organisation, account or principal.
const PRINCIPAL_KEYS: &[&str] =
    &["aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:PrincipalAccount", "aws:PrincipalArn"];

/// Keys present only when a service principal calls on behalf of a resource: no IAM caller carries them.
const SOURCE_KEYS: &[&str] = &["aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID", "aws:SourceOrgPaths"];

/// The organisations and accounts a trust may admit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The role's own account.
    pub own_account: Option<&'a str>,
    /// Accounts the configuration vouches for.
    pub accounts: &'a [String],
    /// Organisations the configuration vouches for.
    pub organizations: &'a [String],
}

impl Known<'_> {
    fn account(&self, account: &str) -> bool {
        self.own_account == Some(account) || self.accounts.iter().any(|a| a == account)
    }

    fn organization(&self, org: &str) -> bool {
        self.organizations.iter().any(|o| o.eq_ignore_ascii_case(org))
    }
}

/// What is wrong with one statement of a trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TrustIssue {
    /// Any principal of any account may assume the role.
    Anyone {
        /// Position of the statement.
        statement: usize,
    },
    /// Anyone in an organisation or account outside the configured ones may assume the role: the statement's
    /// principal is `*`, narrowed by conditions that name them.
    ForeignPrincipals {
        /// Position of the statement.
        statement: usize,
        /// The organisations, accounts or principal ARNs named.
        names: Vec<String>,
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
    /// A web identity provider may hand the role to any repository of one organisation (GitHub `repo:org/*`).
    OrganizationWideWebIdentity {
        /// Position of the statement.
        statement: usize,
        /// The provider.
        provider: String,
        /// The organisation (or enterprise) the condition names.
        organization: String,
    },
}

impl TrustIssue {
    /// The statement the issue is in.
    pub fn statement(&self) -> usize {
        match self {
            TrustIssue::Anyone { statement }
            | TrustIssue::ForeignPrincipals { statement, .. }
            | TrustIssue::ExternalAccount { statement, .. }
            | TrustIssue::UnboundWebIdentity { statement, .. }
            | TrustIssue::OrganizationWideWebIdentity { statement, .. } => *statement,
        }
    }

    /// Whether the issue is less than an open door: one organisation's repositories, not anyone's.
    pub fn is_lesser(&self) -> bool {
        matches!(self, TrustIssue::OrganizationWideWebIdentity { .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            TrustIssue::Anyone { statement } => format!("statement {statement} lets any AWS principal assume the role"),
            TrustIssue::ForeignPrincipals { statement, names } => format!(
                "statement {statement} lets any principal of {} (not among the configured organisations or trusted accounts) assume the role",
                names.join(", ")
            ),
            TrustIssue::ExternalAccount { statement, account } => format!(
                "statement {statement} lets account {account} (not on the allow-list) assume the role without an external id or organisation condition"
            ),
            TrustIssue::UnboundWebIdentity { statement, provider } => format!(
                "statement {statement} lets any identity of {provider} assume the role (no condition pins the subject)"
            ),
            TrustIssue::OrganizationWideWebIdentity { statement, provider, organization } => format!(
                "statement {statement} lets any repository or workflow of {organization} on {provider} assume the role (the subject is pinned to the organisation only)"
            ),
        }
    }
}

/// How a statement's conditions bind the calling principal.
#[derive(Debug, Clone, PartialEq)]
enum Binding {
    /// To the configured organisations or accounts, or to no IAM caller at all.
    Known,
    /// To these organisations, accounts or ARNs, some of them foreign.
    Foreign(Vec<String>),
    /// Not at all.
    Unbound,
}

/// Finds every statement of a trust policy that lets an outsider assume the role.
pub fn analyze_trust(doc: &PolicyDocument, known: &Known<'_>) -> Vec<TrustIssue> {
    // A Deny for every principal outside known organisations or accounts narrows every Allow.
    let fenced = doc.denies().any(|s| deny_fences(&s.conditions, known));
    let mut issues = Vec::new();
    for statement in doc.statements.iter().filter(|s| s.effect == Effect::Allow && grants_assume(&s.actions)) {
        let index = statement.index;
        let binding = if fenced { Binding::Known } else { principal_binding(&statement.conditions, known) };
        let open = |issues: &mut Vec<TrustIssue>| match &binding {
            Binding::Known => {}
            Binding::Foreign(names) => {
                issues.push(TrustIssue::ForeignPrincipals { statement: index, names: names.clone() })
            }
            Binding::Unbound => issues.push(TrustIssue::Anyone { statement: index }),
        };
        let principals = match &statement.principals {
            Some(PrincipalSpec::Only(p)) => p,
            // Allow with NotPrincipal grants to everyone but the listed ones.
            Some(PrincipalSpec::AllExcept(_)) | None => {
                open(&mut issues);
                continue;
            }
        };
        if principals.anyone {
            open(&mut issues);
            continue;
        }
        let external_id = narrowed(&statement.conditions, &["sts:ExternalId"]);
        for principal in &principals.aws {
            let Some(account) = account_of(principal) else { continue };
            if !known.account(&account) && binding != Binding::Known && !external_id {
                issues.push(TrustIssue::ExternalAccount { statement: index, account });
            }
        }
        for provider in &principals.federated {
            if !is_web_identity(provider) {
                continue;
            }
            match web_identity(statement, provider) {
                WebBinding::Pinned => {}
                WebBinding::Organization(organization) => issues.push(TrustIssue::OrganizationWideWebIdentity {
                    statement: index,
                    provider: provider.clone(),
                    organization,
                }),
                WebBinding::Unbound => {
                    issues.push(TrustIssue::UnboundWebIdentity { statement: index, provider: provider.clone() })
                }
            }
        }
    }
    issues.dedup();
    issues
}

/// Whether a Deny statement denies every principal outside known organisations or accounts
/// (`StringNotEquals aws:PrincipalOrgID o-mine`), or every caller that is not a service acting for a resource.
fn deny_fences(conditions: &[Condition], known: &Known<'_>) -> bool {
    conditions.iter().any(|c| {
        let negated = c.operator.contains("Not") && !c.operator.starts_with("ForAllValues:");
        let on_principal = PRINCIPAL_KEYS.iter().any(|k| c.key.eq_ignore_ascii_case(k));
        let on_source = SOURCE_KEYS.iter().any(|k| c.key.eq_ignore_ascii_case(k));
        negated
            && !c.values.is_empty()
            && (on_source
                || on_principal && c.values.iter().all(|v| value_binding(c, v, known) != ValueBinding::Foreign))
    })
}

/// How one condition value binds the principal.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueBinding {
    Known,
    Foreign,
    Unbound,
}

fn value_binding(condition: &Condition, value: &str, known: &Known<'_>) -> ValueBinding {
    let key = condition.key.to_ascii_lowercase();
    let (part, is_org) = match key.as_str() {
        "aws:principalorgid" => (value, true),
        "aws:principalorgpaths" => (value.split('/').next().unwrap_or_default(), true),
        "aws:principalaccount" => (value, false),
        // arn:aws:iam::ACCOUNT:role/name
        _ => (value.split(':').nth(4).unwrap_or(value), false),
    };
    let wild = part.contains(['*', '?']);
    if wild && is_literal(&condition.operator) {
        // Compared literally, no organisation or account is called `o-*`: the value admits nobody.
        return ValueBinding::Known;
    }
    if wild || part.is_empty() {
        return ValueBinding::Unbound;
    }
    let inside = if is_org { known.organization(part) } else { known.account(part) };
    if inside {
        ValueBinding::Known
    } else {
        ValueBinding::Foreign
    }
}

/// How a statement's conditions (all of which must hold) bind the calling principal.
fn principal_binding(conditions: &[Condition], known: &Known<'_>) -> Binding {
    let mut foreign = Vec::new();
    for c in conditions.iter().filter(|c| narrowing_operator(&c.operator) && !c.values.is_empty()) {
        if SOURCE_KEYS.iter().any(|k| c.key.eq_ignore_ascii_case(k))
            && (is_literal(&c.operator) || c.values.iter().all(|v| !v.chars().all(|ch| ch == '*' || ch == '?')))
        {
            // Only a service principal acting for a resource carries these keys: no IAM caller gets in.
            return Binding::Known;
        }
        if !PRINCIPAL_KEYS.iter().any(|k| c.key.eq_ignore_ascii_case(k)) {
            continue;
        }
        let values: Vec<ValueBinding> = c.values.iter().map(|v| value_binding(c, v, known)).collect();
        if values.iter().all(|v| *v == ValueBinding::Known) {
            return Binding::Known;
        }
        if !values.contains(&ValueBinding::Unbound) {
            foreign.extend(
                c.values.iter().zip(&values).filter(|(_, b)| **b == ValueBinding::Foreign).map(|(v, _)| v.clone()),
            );
        }
    }
    if foreign.is_empty() {
        Binding::Unbound
    } else {
        foreign.dedup();
        Binding::Foreign(foreign)
    }
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

/// How a web identity statement pins the identity.
#[derive(Debug, Clone, PartialEq)]
enum WebBinding {
    Pinned,
    Organization(String),
    Unbound,
}

/// GitHub's claims that name one repository (or a workflow in one), as STS evaluates them.
///
/// Contested between sources: GitHub's guide long said AWS supports no claim but `sub` and `aud`; AWS announced
/// in January 2026 that STS evaluates provider-specific claims of GitHub (`repository`, `repository_id`,
/// `job_workflow_ref`, `environment`, `ref`, `actor`, `enterprise_id`, ...) in trust policies. Both readings agree
/// that a positive test on such a key is no open door: where STS evaluates it, it pins what it names; where it
/// did not, the key would be absent and the test false, admitting nobody. So these keys pin (when their value
/// names one repository without a wildcard), and `enterprise_id` / `repository_owner` pin an organisation.
const GITHUB_REPOSITORY_KEYS: &[&str] = &["repository", "repository_id", "job_workflow_ref"];
const GITHUB_ORGANIZATION_KEYS: &[&str] = &["repository_owner", "repository_owner_id", "enterprise_id", "enterprise"];

fn web_identity(statement: &Statement, provider: &str) -> WebBinding {
    let host = provider.rsplit_once("oidc-provider/").map_or(provider, |(_, host)| host);
    let conditions = |claim: &str| {
        let key = format!("{host}:{claim}");
        statement.conditions.iter().filter(move |c| {
            narrowing_operator(&c.operator) && c.key.eq_ignore_ascii_case(&key) && !c.values.is_empty()
        })
    };
    if host == "cognito-identity.amazonaws.com" {
        // AWS's documented pattern: `aud` names the identity pool and `amr` the kind of identity.
        let pinned = |claim: &str| narrowed(&statement.conditions, &[format!("{host}:{claim}").as_str()]);
        return if pinned("aud") && pinned("amr") { WebBinding::Pinned } else { WebBinding::Unbound };
    }
    if host.starts_with("token.actions.githubusercontent.com") {
        let mut best = WebBinding::Unbound;
        for c in conditions("sub") {
            let worst = c.values.iter().map(|v| github_subject(&c.operator, v)).fold(WebBinding::Pinned, weaker);
            best = stronger(best, worst);
        }
        for claim in GITHUB_REPOSITORY_KEYS {
            for c in conditions(claim) {
                let pins = is_literal(&c.operator) || c.values.iter().all(|v| !repository_part(v).contains(['*', '?']));
                if pins {
                    best = WebBinding::Pinned;
                }
            }
        }
        for claim in GITHUB_ORGANIZATION_KEYS {
            for c in conditions(claim) {
                if is_literal(&c.operator) || c.values.iter().all(|v| !v.contains(['*', '?'])) {
                    best = stronger(best, WebBinding::Organization(c.values.join(", ")));
                }
            }
        }
        return best;
    }
    let builtin = !provider.contains(":oidc-provider/");
    let claims: &[&str] = if builtin { &["sub", "aud", "oaud"] } else { &["sub"] };
    let pinned = claims.iter().any(|claim| narrowed(&statement.conditions, &[format!("{host}:{claim}").as_str()]));
    if pinned {
        WebBinding::Pinned
    } else {
        WebBinding::Unbound
    }
}

/// `owner/repo` of a `repository` or `job_workflow_ref` value (`owner/repo/.github/workflows/x.yml@ref`).
fn repository_part(value: &str) -> &str {
    let mut slashes = value.match_indices('/');
    match slashes.nth(1) {
        Some((at, _)) => value.get(..at).unwrap_or(value),
        None => value,
    }
}

/// How one GitHub `sub` value pins: `repo:org/repo:...` pins a repository, `repo:org/*` an organisation,
/// `repo:*` or `*` nothing. Under `StringEquals` the value is literal: `*` is a character and matches no real
/// subject.
fn github_subject(operator: &str, value: &str) -> WebBinding {
    if is_literal(operator) {
        return WebBinding::Pinned;
    }
    let Some(rest) = value.strip_prefix("repo:") else {
        // A customised subject (`repository_owner_id:...`) or a bare pattern: pinned unless it is a wildcard.
        return if value.contains(['*', '?']) && value.split(':').next().unwrap_or_default().contains(['*', '?']) {
            WebBinding::Unbound
        } else if value.contains(['*', '?']) {
            WebBinding::Organization(value.to_owned())
        } else {
            WebBinding::Pinned
        };
    };
    let repository = rest.split(':').next().unwrap_or_default();
    let (owner, name) = repository.split_once('/').unwrap_or((repository, "*"));
    if owner.is_empty() || owner.contains(['*', '?']) {
        WebBinding::Unbound
    } else if name.is_empty() || name.contains(['*', '?']) {
        WebBinding::Organization(owner.to_owned())
    } else {
        WebBinding::Pinned
    }
}

/// The weaker of two bindings: for the values of one condition, any of which may match.
fn weaker(a: WebBinding, b: WebBinding) -> WebBinding {
    match (a, b) {
        (WebBinding::Unbound, _) | (_, WebBinding::Unbound) => WebBinding::Unbound,
        (WebBinding::Organization(o), _) | (_, WebBinding::Organization(o)) => WebBinding::Organization(o),
        _ => WebBinding::Pinned,
    }
}

/// The stronger of two bindings: for conditions that must all hold.
fn stronger(a: WebBinding, b: WebBinding) -> WebBinding {
    match (a, b) {
        (WebBinding::Pinned, _) | (_, WebBinding::Pinned) => WebBinding::Pinned,
        (WebBinding::Organization(o), _) | (_, WebBinding::Organization(o)) => WebBinding::Organization(o),
        _ => WebBinding::Unbound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "o-a1b2c3d4e5";

    fn issues(json: &str) -> Vec<TrustIssue> {
        let accounts = ["111122223333".to_owned()];
        let organizations = [ORG.to_owned()];
        let known = Known { own_account: Some("123456789012"), accounts: &accounts, organizations: &organizations };
        analyze_trust(&PolicyDocument::parse(json).unwrap(), &known)
    }

    fn trust(principal: &str, condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"{condition}}}]}}"#
        )
    }

    fn anyone_with(condition: &str) -> Vec<TrustIssue> {
        issues(&trust(r#"{"AWS":"*"}"#, &format!(r#","Condition":{condition}"#)))
    }

    #[test]
    fn anyone_is_flagged_unless_bound_to_known_principals() {
        assert_eq!(issues(&trust(r#""*""#, "")), vec![TrustIssue::Anyone { statement: 0 }]);
        assert_eq!(issues(&trust(r#"{"AWS":"*"}"#, "")), vec![TrustIssue::Anyone { statement: 0 }]);
        assert!(anyone_with(&format!(r#"{{"StringEquals":{{"aws:PrincipalOrgID":"{ORG}"}}}}"#)).is_empty());
        assert_eq!(
            anyone_with(r#"{"StringEquals":{"aws:PrincipalOrgID":"o-attacker999"}}"#),
            vec![TrustIssue::ForeignPrincipals { statement: 0, names: vec!["o-attacker999".into()] }]
        );
        assert!(anyone_with(r#"{"StringEquals":{"aws:PrincipalAccount":["111122223333","123456789012"]}}"#).is_empty());
        assert_eq!(
            anyone_with(r#"{"StringEquals":{"aws:PrincipalAccount":["111122223333","444455556666"]}}"#).len(),
            1
        );
        assert!(anyone_with(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/ci-*"}}"#).is_empty());
        assert_eq!(
            anyone_with(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/ci"}}"#),
            vec![TrustIssue::Anyone { statement: 0 }]
        );
        assert!(anyone_with(&format!(r#"{{"ForAnyValue:StringLike":{{"aws:PrincipalOrgPaths":"{ORG}/r-ab12/*"}}}}"#))
            .is_empty());
        // `StringLike` expands the wildcard (anyone); under `StringEquals` it is a literal that admits nobody.
        assert_eq!(anyone_with(r#"{"StringLike":{"aws:PrincipalOrgID":"*"}}"#).len(), 1);
        assert!(anyone_with(r#"{"StringEquals":{"aws:PrincipalOrgID":"*"}}"#).is_empty());
        // IfExists and ForAllValues: hold when the key is absent.
        assert_eq!(anyone_with(&format!(r#"{{"StringEqualsIfExists":{{"aws:PrincipalOrgID":"{ORG}"}}}}"#)).len(), 1);
        assert_eq!(
            anyone_with(&format!(r#"{{"ForAllValues:StringEquals":{{"aws:PrincipalOrgID":"{ORG}"}}}}"#)).len(),
            1
        );
        // An external id alone is no secret: it does not fence `*`.
        assert_eq!(issues(&trust(r#""*""#, r#","Condition":{"StringEquals":{"sts:ExternalId":"x"}}"#)).len(), 1);
        // Source keys admit no IAM caller.
        assert!(anyone_with(r#"{"StringEquals":{"aws:SourceAccount":"444455556666"}}"#).is_empty());
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

    fn web(provider: &str, condition: &str) -> Vec<TrustIssue> {
        let principal = format!(r#"{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{provider}"}}"#);
        issues(
            &trust(&principal, &format!(r#","Condition":{condition}"#))
                .replace("sts:AssumeRole\"", "sts:AssumeRoleWithWebIdentity\""),
        )
    }

    #[test]
    fn github_subjects_must_pin_a_repository() {
        let gh = "token.actions.githubusercontent.com";
        let sub = |op: &str, value: &str| {
            web(
                gh,
                &format!(r#"{{"StringEquals":{{"{gh}:aud":"sts.amazonaws.com"}},"{op}":{{"{gh}:sub":"{value}"}}}}"#),
            )
        };
        assert!(issues(&trust(r#"{"Service":"lambda.amazonaws.com"}"#, "")).is_empty());
        assert_eq!(web(gh, &format!(r#"{{"StringEquals":{{"{gh}:aud":"sts.amazonaws.com"}}}}"#)).len(), 1);
        assert!(sub("StringLike", "repo:example/app:*").is_empty());
        assert!(sub("StringEquals", "repo:example/app:ref:refs/heads/main").is_empty());
        assert!(matches!(
            sub("StringLike", "repo:example/*").as_slice(),
            [TrustIssue::OrganizationWideWebIdentity { .. }]
        ));
        assert!(matches!(sub("StringLike", "repo:*").as_slice(), [TrustIssue::UnboundWebIdentity { .. }]));
        assert!(matches!(sub("StringLike", "*").as_slice(), [TrustIssue::UnboundWebIdentity { .. }]));
        assert!(sub("StringEquals", "repo:*").is_empty(), "a literal `*` matches no subject");
        assert!(matches!(
            sub("StringLikeIfExists", "repo:example/app:*").as_slice(),
            [TrustIssue::UnboundWebIdentity { .. }]
        ));
        assert!(web(gh, &format!(r#"{{"StringEquals":{{"{gh}:repository_id":"123456"}}}}"#)).is_empty());
        assert!(matches!(
            web(gh, &format!(r#"{{"StringEquals":{{"{gh}:environment":"prod"}}}}"#)).as_slice(),
            [TrustIssue::UnboundWebIdentity { .. }]
        ));
    }

    #[test]
    fn cognito_needs_aud_and_amr() {
        let cognito = |condition: &str| {
            issues(
                &trust(r#"{"Federated":"cognito-identity.amazonaws.com"}"#, &format!(r#","Condition":{condition}"#))
                    .replace("sts:AssumeRole\"", "sts:AssumeRoleWithWebIdentity\""),
            )
        };
        let aud =
            r#""StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:12345678-1234-1234-1234-123456789012"}"#;
        let amr = r#""ForAnyValue:StringLike":{"cognito-identity.amazonaws.com:amr":"authenticated"}"#;
        assert!(cognito(&format!("{{{aud},{amr}}}")).is_empty());
        assert_eq!(cognito(&format!("{{{aud}}}")).len(), 1);
    }

    #[test]
    fn not_principal_and_deny_fences() {
        assert_eq!(
            issues(r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#).len(),
            1
        );
        assert!(issues(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}},
               {{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{{"StringNotEquals":{{"aws:PrincipalOrgID":"{ORG}"}}}}}}]}}"#
        ))
        .is_empty());
        assert_eq!(
            issues(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
               {"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-attacker999"}}}]}"#
            )
            .len(),
            1,
            "a fence around a foreign organisation lets that organisation in"
        );
    }
}
