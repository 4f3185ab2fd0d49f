//! What a policy grants: the questions trailguard's rules ask of a document.
//!
//! The analyzer answers for one document at a time, the way IAM would for a principal holding only it:
//! Allow statements grant, and an explicit Deny removes what it covers. It is deliberately conservative in
//! one direction: a Deny subtracts only when it applies without conditions to every resource, while an Allow
//! counts whatever its conditions, unless the condition is one that AWS documents as the way to narrow that
//! very grant (`iam:PassedToService` on `iam:PassRole`, `iam:PolicyARN` and `iam:PermissionsBoundary` on
//! policy attachment). A missed danger costs more than a second look.
//! Evaluation logic: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>.

use super::catalogue::{AccessLevel, ActionSet, Catalogue};
use super::document::{Actions, Condition, PolicyDocument, Resources, Statement};
use crate::wildcard;

/// Actions that, on any resource, let a principal give itself or take over any other permission.
pub const ESCALATION_ACTIONS: &[&str] = &[
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
];

/// Escalation actions that need a second grant to be one: rewriting a role's trust policy helps only a principal
/// that can then assume that role.
const ESCALATION_NEEDS: &[(&str, &str)] = &[("iam:UpdateAssumeRolePolicy", "sts:AssumeRole")];

/// Actions that run code or infrastructure under a role passed with `iam:PassRole`.
pub const PASSROLE_COMPUTE_ACTIONS: &[&str] = &[
    "lambda:CreateFunction",
    "ec2:RunInstances",
    "cloudformation:CreateStack",
    "glue:CreateDevEndpoint",
    "ecs:RunTask",
    "sagemaker:CreateNotebookInstance",
    "codebuild:CreateProject",
    "datapipeline:CreatePipeline",
];

/// Policies that make an `iam:PolicyARN` limit no limit at all.
const ADMIN_POLICY_PROBES: &[&str] = &[
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
];

/// Services that run code under a passed role. A `iam:PassedToService` value matching more than one of them
/// (`*.amazonaws.com`, `*`) limits nothing.
const COMPUTE_SERVICE_PROBES: &[&str] = &[
    "lambda.amazonaws.com",
    "ec2.amazonaws.com",
    "cloudformation.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "glue.amazonaws.com",
    "sagemaker.amazonaws.com",
    "codebuild.amazonaws.com",
    "datapipeline.amazonaws.com",
];

/// A share of all actions above which a grant is treated as admin-equivalent (PowerUserAccess grants ~98%).
const NEAR_ADMIN_SHARE: f64 = 0.9;

/// What one identity (or permissions) policy grants on broad resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    /// Statements that together allow every action on every resource; empty when the policy is not full admin.
    pub full_admin: Vec<usize>,
    /// Most actions but not all (`Allow NotAction` forms such as PowerUserAccess): the statements and the share.
    pub near_admin: Option<(Vec<usize>, f64)>,
    /// Privilege-escalation actions allowed on any resource, each with the statements allowing it.
    pub escalation: Vec<(String, Vec<usize>)>,
    /// Services for which every action is allowed on broad resources, with the statements and whether the
    /// service has permissions-management actions (policies, grants, ACLs).
    pub service_wildcards: Vec<ServiceWildcard>,
    /// `iam:PassRole` on any role without an `iam:PassedToService` limit.
    pub passrole: Option<PassRoleGrant>,
    /// Action patterns the catalogue does not know (new services, typos); reported, never fatal.
    pub unknown_actions: Vec<String>,
}

/// Every action of one service allowed on broad resources.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceWildcard {
    /// The service prefix, such as `s3`.
    pub service: String,
    /// Statements that allow it.
    pub statements: Vec<usize>,
    /// Whether the service has actions that change permissions (bucket policies, key policies, grants).
    pub permissions_management: bool,
}

/// An unrestricted `iam:PassRole` grant.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRoleGrant {
    /// Statements that allow it.
    pub statements: Vec<usize>,
    /// The action patterns that reach `iam:PassRole` (`iam:*`, `iam:Pass*`, `NotAction ...`).
    pub via: Vec<String>,
    /// Compute-creating actions the same policy allows, which turn the pass into an escalation.
    pub with_compute: Vec<String>,
}

impl Grants {
    /// Whether the policy gives admin or an admin-equivalent (full, near-full, or a way to grant oneself more).
    pub fn is_admin_class(&self) -> bool {
        !self.full_admin.is_empty() || self.near_admin.is_some() || !self.escalation.is_empty()
    }

    /// One sentence per thing the rules flag, in the order of the rules (empty: nothing flagged).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.full_admin.is_empty() {
            out.push(format!("full administrator access (statements {:?})", self.full_admin));
        }
        if let Some((statements, share)) = &self.near_admin {
            out.push(format!(
                "{:.1}% of all actions on every resource, admin-equivalent (statements {statements:?})",
                share * 100.0
            ));
        }
        // Full admin implies every escalation and PassRole; listing them would bury the one line that matters.
        if !self.full_admin.is_empty() {
            return out;
        }
        for (action, statements) in &self.escalation {
            out.push(format!("privilege escalation: {action} on any resource (statements {statements:?})"));
        }
        if let Some(pass) = &self.passrole {
            let mut text = format!(
                "iam:PassRole on any role without iam:PassedToService, through {} (statements {:?})",
                pass.via.join(", "),
                pass.statements
            );
            if !pass.with_compute.is_empty() {
                text.push_str(&format!("; with {}, it can run code as any passed role", pass.with_compute.join(", ")));
            }
            out.push(text);
        }
        // Service wildcards are implied by admin grants; they are the news only below admin.
        if !self.is_admin_class() {
            for w in &self.service_wildcards {
                out.push(format!("every action of {} on broad resources (statements {:?})", w.service, w.statements));
            }
        }
        out
    }
}

/// One Allow statement, expanded.
struct Allowed<'a> {
    statement: &'a Statement,
    actions: ActionSet,
}

/// Analyzes an identity or permissions policy.
pub fn analyze(doc: &PolicyDocument) -> Grants {
    let catalogue = Catalogue::get();
    let mut grants = Grants::default();

    // An unconditional Deny on every resource removes what it names from every Allow.
    let mut denied = catalogue.empty();
    for deny in doc.denies().filter(|s| s.conditions.is_empty() && covers_everything(&s.resources)) {
        denied.union_with(&expand_actions(catalogue, &deny.actions, &mut grants.unknown_actions));
    }
    let passrole = catalogue.index_of("iam:PassRole");
    // A Deny on PassRole that names `iam:PassedToService` is the other documented way to limit passing.
    let passrole_limited_by_deny = doc.denies().any(|s| {
        passrole.is_some_and(|i| expand_actions(catalogue, &s.actions, &mut Vec::new()).contains(i))
            && s.conditions.iter().any(|c| c.key.eq_ignore_ascii_case("iam:PassedToService"))
    });

    // Unknown actions are worth a word wherever they are, broad resources or not.
    for statement in doc.allows().filter(|s| !is_broad(&s.resources)) {
        expand_actions(catalogue, &statement.actions, &mut grants.unknown_actions);
    }
    let broad: Vec<Allowed> = doc
        .allows()
        .filter(|s| is_broad(&s.resources))
        .map(|statement| {
            let mut actions = expand_actions(catalogue, &statement.actions, &mut grants.unknown_actions);
            actions.subtract(&denied);
            Allowed { statement, actions }
        })
        .filter(|a| !a.actions.is_empty())
        .collect();
    let mut union = catalogue.empty();
    for allowed in &broad {
        union.union_with(&allowed.actions);
    }

    let total = catalogue.len().max(1);
    let share = union.count() as f64 / total as f64;
    if union.count() == catalogue.len() {
        grants.full_admin = covering_statements(catalogue, &broad, &union);
    } else if share >= NEAR_ADMIN_SHARE {
        grants.near_admin = Some((covering_statements(catalogue, &broad, &union), share));
    }

    for action in ESCALATION_ACTIONS {
        let Some(index) = catalogue.index_of(action) else { continue };
        let partner_missing = ESCALATION_NEEDS
            .iter()
            .filter(|(a, _)| a == action)
            .any(|(_, needed)| !catalogue.index_of(needed).is_some_and(|i| union.contains(i)));
        if partner_missing {
            continue;
        }
        let statements: Vec<usize> = broad
            .iter()
            .filter(|a| a.actions.contains(index) && !escalation_narrowed(&a.statement.conditions))
            .map(|a| a.statement.index)
            .collect();
        if !statements.is_empty() {
            grants.escalation.push(((*action).to_owned(), statements));
        }
    }

    for (service, range) in catalogue.services() {
        // A service with nothing but read and list actions cannot be changed through its wildcard.
        let writable = catalogue.writable(range.clone());
        if range.is_empty() || !writable || union.count_in(range.clone()) < range.len() {
            continue;
        }
        let statements = broad.iter().filter(|a| a.actions.count_in(range.clone()) > 0).map(|a| a.statement.index);
        grants.service_wildcards.push(ServiceWildcard {
            service: service.to_owned(),
            statements: statements.collect(),
            permissions_management: range.clone().any(|i| catalogue.level(i) == AccessLevel::PermissionsManagement),
        });
    }
    // A wildcard over a service the catalogue does not know yet is still a service-wide grant.
    for statement in doc.allows().filter(|s| is_broad(&s.resources)) {
        if let Actions::Only(patterns) = &statement.actions {
            for pattern in patterns {
                if let Some(service) = pattern.strip_suffix(":*") {
                    let known = catalogue.has_service(service) || wildcard::has_wildcard(service);
                    if !known && !grants.service_wildcards.iter().any(|w| w.service.eq_ignore_ascii_case(service)) {
                        grants.service_wildcards.push(ServiceWildcard {
                            service: service.to_ascii_lowercase(),
                            statements: vec![statement.index],
                            permissions_management: false,
                        });
                    }
                }
            }
        }
    }

    if let (Some(index), false) = (passrole, passrole_limited_by_deny) {
        let passing: Vec<&Allowed> = broad
            .iter()
            .filter(|a| {
                a.actions.contains(index)
                    && !narrowed_to_few(&a.statement.conditions, "iam:PassedToService", COMPUTE_SERVICE_PROBES, 1)
            })
            .collect();
        if !passing.is_empty() {
            let with_compute = PASSROLE_COMPUTE_ACTIONS
                .iter()
                .filter(|name| catalogue.index_of(name).is_some_and(|i| union.contains(i)))
                .map(|name| (*name).to_owned())
                .collect();
            grants.passrole = Some(PassRoleGrant {
                statements: passing.iter().map(|a| a.statement.index).collect(),
                via: passing.iter().flat_map(|a| patterns_reaching(&a.statement.actions, "iam:PassRole")).collect(),
                with_compute,
            });
        }
    }
    grants.unknown_actions.sort();
    grants.unknown_actions.dedup();
    grants
}

/// The actions of an `Action` or `NotAction` element.
fn expand_actions(catalogue: &Catalogue, actions: &Actions, unknown: &mut Vec<String>) -> ActionSet {
    match actions {
        Actions::Only(patterns) => {
            let expansion = catalogue.expand(patterns);
            unknown.extend(expansion.unknown);
            expansion.set
        }
        // Unknown names inside NotAction only mean fewer exceptions: nothing to report.
        Actions::AllExcept(patterns) => catalogue.expand(patterns).set.complement(catalogue),
    }
}

/// The fewest statements (greedily, largest first) whose actions add up to `target`: the evidence to show.
fn covering_statements(catalogue: &Catalogue, broad: &[Allowed], target: &ActionSet) -> Vec<usize> {
    let mut order: Vec<&Allowed> = broad.iter().collect();
    order.sort_by_key(|a| std::cmp::Reverse(a.actions.count()));
    let mut covered = catalogue.empty();
    let mut chosen = Vec::new();
    for allowed in order {
        if covered == *target {
            break;
        }
        let before = covered.count();
        covered.union_with(&allowed.actions);
        if covered.count() > before {
            chosen.push(allowed.statement.index);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// Which patterns of an element reach a given action (for the evidence: "through `iam:*`").
fn patterns_reaching(actions: &Actions, action: &str) -> Vec<String> {
    match actions {
        Actions::Only(patterns) => {
            patterns.iter().filter(|p| wildcard::matches(p.trim(), action, true)).cloned().collect()
        }
        Actions::AllExcept(patterns) => vec![format!("NotAction {}", patterns.join(", "))],
    }
}

/// Whether a statement's resources reach every resource of a kind, not a named few.
///
/// `*`, `NotResource`, and ARNs whose resource part is `*`, `type/*` or `type:*` count as broad; a path or a
/// name (`role/service-role/*`, `bucket/*`) narrows. A missing `Resource` (only valid in resource-based
/// policies) is treated as broad.
pub fn is_broad(resources: &Resources) -> bool {
    match resources {
        Resources::Unspecified | Resources::AllExcept(_) => true,
        Resources::Only(list) => list.iter().any(|r| is_broad_arn(r.trim())),
    }
}

fn is_broad_arn(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let (Some(service), Some(rest)) = (parts.get(2), parts.get(5)) else {
        // Not an ARN: only wildcards left means everything.
        return resource.chars().all(|c| c == '*' || c == '?');
    };
    if *service == "*" {
        return true;
    }
    let only_wild = |s: &str| !s.is_empty() && s.chars().all(|c| c == '*' || c == '?');
    if only_wild(rest) {
        return true;
    }
    // S3 ARNs carry no resource type: `bucket/*` names the objects of one bucket.
    if *service == "s3" {
        return rest.split_once('/').is_some_and(|(bucket, key)| only_wild(bucket) && only_wild(key));
    }
    match rest.split_once(['/', ':']) {
        Some((kind, name)) => only_wild(name) && !kind.contains('/'),
        None => false,
    }
}

/// Whether an Allow statement covers every resource without conditions (a Deny that applies everywhere).
fn covers_everything(resources: &Resources) -> bool {
    match resources {
        Resources::Only(list) => list.iter().any(|r| r.trim() == "*"),
        Resources::Unspecified => true,
        Resources::AllExcept(_) => false,
    }
}

/// Whether a statement's policy-writing grant is limited to chosen policies (an `iam:PolicyARN` condition that
/// admits no admin policy) or to a permissions boundary.
fn escalation_narrowed(conditions: &[Condition]) -> bool {
    narrowed_to_few(conditions, "iam:PolicyARN", ADMIN_POLICY_PROBES, 0)
        || narrowed(conditions, &["iam:PermissionsBoundary"])
}

/// Like [`narrowed`] for one key, and stricter: each value may match at most `max` of the `probes`, the
/// values that would make the limit meaningless. Under `StringEquals` a value is compared literally (`*` is just
/// a character), so `iam:PassedToService = "*"` admits no service at all.
fn narrowed_to_few(conditions: &[Condition], key: &str, probes: &[&str], max: usize) -> bool {
    narrowed(conditions, &[key])
        && conditions
            .iter()
            .filter(|c| c.key.eq_ignore_ascii_case(key))
            .all(|c| c.values.iter().all(|v| probes.iter().filter(|p| value_matches(&c.operator, v, p)).count() <= max))
}

/// Whether a condition value admits `text` under `operator`: literally for `StringEquals` and its
/// `IgnoreCase` form, as a pattern for the `Like` and `Arn` operators (IAM expands `*` and `?` in `ArnEquals`
/// too). <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
pub fn value_matches(operator: &str, value: &str, text: &str) -> bool {
    if is_literal(operator) {
        if operator.contains("IgnoreCase") {
            value.eq_ignore_ascii_case(text)
        } else {
            value == text
        }
    } else {
        wildcard::matches(value, text, true)
    }
}

/// Whether an operator compares literally (no wildcard expansion).
pub fn is_literal(operator: &str) -> bool {
    let operator = operator.strip_prefix("ForAnyValue:").unwrap_or(operator);
    matches!(operator, "StringEquals" | "StringEqualsIgnoreCase")
}

/// Whether an operator is a positive test that must hold for the statement to apply, so that it narrows an
/// Allow: an equality or pattern test, possibly `ForAnyValue:` (false for an absent key). `...IfExists`,
/// `ForAllValues:` (true for an absent key) and the negated operators do not narrow.
pub fn narrowing_operator(operator: &str) -> bool {
    let operator = operator.strip_prefix("ForAnyValue:").unwrap_or(operator);
    matches!(operator, "StringEquals" | "StringEqualsIgnoreCase" | "StringLike" | "ArnEquals" | "ArnLike")
}

/// Whether some condition narrows on one of `keys`: an equality or pattern test that must hold, with a value
/// that is not itself a wildcard (under `StringEquals` a `*` is a literal character, so it narrows: it admits
/// only that literal). `...IfExists`, `ForAllValues:` (true for an absent key) and the negated operators do not
/// narrow an Allow.
pub fn narrowed(conditions: &[Condition], keys: &[&str]) -> bool {
    conditions.iter().any(|c| {
        narrowing_operator(&c.operator)
            && keys.iter().any(|k| c.key.eq_ignore_ascii_case(k))
            && !c.values.is_empty()
            && (is_literal(&c.operator) || c.values.iter().all(|v| !v.chars().all(|ch| ch == '*' || ch == '?')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(json: &str) -> Grants {
        analyze(&PolicyDocument::parse(json).unwrap())
    }

    fn allow(action: &str, resource: &str) -> String {
        format!(r#"{{"Statement":[{{"Effect":"Allow","Action":{action},"Resource":{resource}}}]}}"#)
    }

    #[test]
    fn star_is_full_admin_and_deny_takes_it_away() {
        assert_eq!(grants(&allow(r#""*""#, r#""*""#)).full_admin, vec![0]);
        assert_eq!(grants(&allow(r#"["*:*"]"#, r#"["arn:aws:s3:::only-this", "*"]"#)).full_admin, vec![0]);
        let denied = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
                {"Effect":"Deny","Action":["iam:*","organizations:*"],"Resource":"*"}]}"#,
        );
        assert!(denied.full_admin.is_empty());
        assert!(denied.escalation.is_empty());
        assert!(denied.passrole.is_none());
        assert!(denied.near_admin.is_some(), "most of AWS is still allowed");
    }

    #[test]
    fn conditional_deny_does_not_subtract() {
        let g = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
                {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}"#,
        );
        assert_eq!(g.full_admin, vec![0]);
    }

    #[test]
    fn not_action_forms_are_admin_class() {
        let power_user = grants(
            r#"{"Statement":[{"Effect":"Allow","NotAction":["iam:*","organizations:*","account:*"],"Resource":"*"}]}"#,
        );
        assert!(power_user.full_admin.is_empty());
        assert!(power_user.near_admin.is_some());
        let everything_but_one =
            grants(r#"{"Statement":[{"Effect":"Allow","NotAction":"s3:GetObject","Resource":"*"}]}"#);
        assert!(everything_but_one.passrole.is_some());
        assert!(everything_but_one.is_admin_class());
    }

    #[test]
    fn service_wildcards_need_broad_resources() {
        let g = grants(&allow(r#""s3:*""#, r#""*""#));
        assert_eq!(g.service_wildcards.len(), 1);
        assert_eq!(g.service_wildcards[0].service, "s3");
        assert!(g.service_wildcards[0].permissions_management);
        assert!(!g.is_admin_class());
        assert!(grants(&allow(r#""s3:*""#, r#""arn:aws:s3:::*""#)).service_wildcards.len() == 1);
        assert!(grants(&allow(r#""s3:*""#, r#""arn:aws:s3:::my-bucket/*""#)).service_wildcards.is_empty());
        assert!(grants(&allow(r#""s3:Get*""#, r#""*""#)).service_wildcards.is_empty());
        let unknown = grants(&allow(r#""brandnewservice:*""#, r#""*""#));
        assert_eq!(unknown.service_wildcards[0].service, "brandnewservice");
    }

    #[test]
    fn passrole_is_found_through_every_spelling() {
        for action in [
            r#""iam:PassRole""#,
            r#""iam:*""#,
            r#""iam:Pass*""#,
            r#""IAM:passrole""#,
            r#"["s3:GetObject","iam:P?ssRole"]"#,
        ] {
            let g = grants(&allow(action, r#""arn:aws:iam::*:role/*""#));
            assert!(g.passrole.is_some(), "{action}");
        }
        let narrowed = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                "Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
        );
        assert!(narrowed.passrole.is_none());
        let if_exists = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                "Condition":{"StringEqualsIfExists":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
        );
        assert!(if_exists.passrole.is_some(), "IfExists does not narrow");
        let wildcard_value = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                "Condition":{"StringLike":{"iam:PassedToService":"*"}}}]}"#,
        );
        assert!(wildcard_value.passrole.is_some(), "a `*` value does not narrow");
        let named_role = grants(&allow(r#""iam:PassRole""#, r#""arn:aws:iam::123456789012:role/app-role""#));
        assert!(named_role.passrole.is_none());
        let deny_limited = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"},
                {"Effect":"Deny","Action":"iam:PassRole","Resource":"*",
                 "Condition":{"StringNotEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}]}"#,
        );
        assert!(deny_limited.passrole.is_none());
    }

    #[test]
    fn escalation_respects_policy_arn_conditions() {
        let g = grants(&allow(r#""iam:AttachRolePolicy""#, r#""*""#));
        assert_eq!(g.escalation.len(), 1);
        let limited = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:AttachRolePolicy","Resource":"*",
                "Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::aws:policy/ReadOnlyAccess"}}}]}"#,
        );
        assert!(limited.escalation.is_empty());
        let admin_only = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:AttachRolePolicy","Resource":"*",
                "Condition":{"ArnLike":{"iam:PolicyARN":"arn:aws:iam::aws:policy/Admin*"}}}]}"#,
        );
        assert_eq!(admin_only.escalation.len(), 1, "a limit to admin policies is no limit");
    }

    #[test]
    fn trust_rewriting_needs_assume_role_to_escalate() {
        assert!(grants(&allow(r#""iam:UpdateAssumeRolePolicy""#, r#""*""#)).escalation.is_empty());
        let both = grants(&allow(r#"["iam:UpdateAssumeRolePolicy","sts:AssumeRole"]"#, r#""*""#));
        assert_eq!(both.escalation.len(), 1);
    }

    #[test]
    fn passed_to_service_must_name_a_service() {
        let with = |value: &str| {
            grants(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                    "Condition":{{"StringLike":{{"iam:PassedToService":{value}}}}}}}]}}"#
            ))
        };
        assert!(with(r#""lambda.amazonaws.com""#).passrole.is_none());
        assert!(with(r#"["lambda.amazonaws.com","ecs-tasks.amazonaws.com"]"#).passrole.is_none());
        assert!(with(r#""*.amazonaws.com""#).passrole.is_some());
        assert!(with(r#""*""#).passrole.is_some());
        let literal = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                "Condition":{"StringEquals":{"iam:PassedToService":"*"}}}]}"#,
        );
        assert!(literal.passrole.is_none(), "under StringEquals `*` is a literal: it allows passing to no service");
        let for_all = grants(
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
                "Condition":{"ForAllValues:StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
        );
        assert!(for_all.passrole.is_some(), "ForAllValues: is true when the key is absent");
    }

    #[test]
    fn read_only_services_are_no_wildcard() {
        let g = grants(&allow(r#"["*:Get*","*:List*","*:Describe*"]"#, r#""*""#));
        assert!(
            g.service_wildcards.is_empty(),
            "{:?}",
            g.service_wildcards.iter().map(|w| &w.service).collect::<Vec<_>>()
        );
    }

    #[test]
    fn broad_resources() {
        for (resource, broad) in [
            ("*", true),
            ("arn:aws:iam::*:role/*", true),
            ("arn:aws:iam::123456789012:role/*", true),
            ("arn:aws:iam::123456789012:*", true),
            ("arn:aws:s3:::*", true),
            ("arn:aws:*:*:*:*", true),
            ("arn:aws:iam::123456789012:role/service-role/*", false),
            ("arn:aws:iam::123456789012:role/app", false),
            ("arn:aws:s3:::bucket/*", false),
            ("arn:aws:s3:::bucket", false),
            ("arn:aws:s3:::*/*", true),
        ] {
            assert_eq!(is_broad(&Resources::Only(vec![resource.into()])), broad, "{resource}");
        }
    }
}
