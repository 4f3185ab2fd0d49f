//! What the operator configures: agent matchers, trusted accounts, trailguard's own names, rule settings.
//!
//! One JSON document (the Lambdas read it from their environment, the CLI from `--config`). Every field has
//! a default, so `{}` is a complete configuration; unknown fields are refused, so a typo does not silently
//! switch a protection off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::{Actor, AgentMatchers};
use crate::wildcard;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How AI agents are recognised.
    pub agents: AgentMatchers,
    /// Accounts outside the event's own that trust policies may name without conditions.
    pub trusted_accounts: Vec<String>,
    /// AWS Organizations ids (`o-...`) whose principals trust policies may admit: an `aws:PrincipalOrgID` (or
    /// `aws:PrincipalOrgPaths`) condition narrows a trust only to one of these, or to a trusted account.
    pub organization_ids: Vec<String>,
    /// The exact ARNs of trailguard's function roles (the template passes them). Their sessions never yield
    /// findings (trailguard's remediation is recorded by CloudTrail too) and are never touched. Exact, never a
    /// glob: anyone who can create a role could otherwise give it a matching name and become invisible.
    pub own_role_arns: Vec<String>,
    /// The exact ARNs of the roles that deploy trailguard (pipelines, StackSets' execution roles). Only they may
    /// change trailguard's own resources without a `guardrail-tampering` finding.
    pub deployment_role_arns: Vec<String>,
    /// The exact ARNs of trailguard's resources as deployed (keys, functions, rules, bus, topic, queues, table,
    /// alarms; the template passes them). A change to one by anyone but the deployment roles is guardrail
    /// tampering, however the request names it (a KMS key by alias, id or ARN).
    pub own_resource_arns: Vec<String>,
    /// Globs on the names of trailguard's own resources (functions, rules, topic, bus, queues, table, keys,
    /// stacks, roles and policies). A change to one by anyone but the deployment roles is guardrail tampering;
    /// a name here only widens detection, it never exempts anyone.
    pub own_resources: Vec<String>,
    /// The name of the canary role in every account (`<name>`, the global path's) and of each region's
    /// (`<name>-<region>`). Its exact role in the record's own account makes a canary call a heartbeat.
    pub canary_role_name: String,
    /// Extra calls, `service:EventName` globs (`s3:PutBucketPolicy`, `kms:Schedule*`), that are sensitive when an
    /// agent makes them.
    pub sensitive_calls: Vec<String>,
    /// Thresholds of `agent-behaviour`.
    pub behaviour: crate::behaviour::BehaviourSettings,
    /// Per-rule settings, by rule id.
    pub rules: BTreeMap<String, RuleSettings>,
    /// How the remediator acts.
    pub remediation: RemediationSettings,
}

/// How the remediator acts on findings. A rule's own `mode` overrides the per-actor defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemediationSettings {
    /// Plan and report, change nothing.
    pub dry_run: bool,
    /// Mode for findings whose actor is an AI agent (default: enforce).
    pub agents: Mode,
    /// Mode for findings whose actor is a person or workload (default: alert).
    pub humans: Mode,
    /// Globs on role and user names or ARNs that are never touched by any step (rollback included), beside the
    /// always-protected ones (root, service-linked roles, `AWSReservedSSO_*`, trailguard's own roles). Matched
    /// case-insensitively, as IAM treats role and user names as unique whatever their case.
    pub protected_principals: Vec<String>,
    /// How long after the flagged event a grant is undone or a key deactivated without further proof; later,
    /// a grant is undone only while the current state is exactly what the event created, and a key never.
    /// A replayed or redriven finding thus cannot undo a later, legitimate change.
    pub freshness_minutes: u32,
    /// How long a quarantine lasts: sessions whose credentials rotate under the same session name (EC2 instance
    /// profiles, ECS tasks, Lambda functions) are denied outright until then, since a deny bounded by issue
    /// time would lift itself at the next rotation.
    pub quarantine_hours: u32,
    /// The name of the inline policy that holds a role's revocations.
    pub revocation_policy_name: String,
    /// The role the remediator assumes in other accounts (with the external id from its environment).
    pub member_role_name: String,
    /// The read-only role the detector assumes in other accounts for its look-ups.
    pub member_reader_role_name: String,
    /// Revoke an agent session by its source identity rather than by its own `aws:userid`. A source identity is
    /// shared by every run of an agent, so this stops all its concurrent runs on that role; off by default.
    pub revoke_source_identity: bool,
    /// Remediate agents recognised only by a role tag (`agents.role_tags`) as agents. Off by default: anyone with
    /// `iam:TagRole` on a role can set the tag and so have a workload's sessions revoked. Turn it on only where
    /// the tag keys are protected (the optional SCP `infra/scp.json` denies `iam:TagRole` / `iam:UntagRole` on
    /// them to everyone but the deployment roles); until then such an agent is treated as a person.
    pub trust_role_tags: bool,
    /// The optional sso-admin role (`infra/sso-admin.yaml`, in the management or delegated administrator
    /// account) through which an IAM Identity Center session is contained: a deny in its permission set's inline
    /// policy, then re-provisioning. Unset (the default): the finding prints those steps for a person.
    pub sso_admin_role_arn: Option<String>,
    /// The IAM Identity Center instance; unset: the only instance `ListInstances` returns.
    pub sso_instance_arn: Option<String>,
    /// The region of the IAM Identity Center instance; unset: the remediator's own region.
    pub sso_region: Option<String>,
}

impl Default for RemediationSettings {
    fn default() -> Self {
        RemediationSettings {
            dry_run: false,
            agents: Mode::Enforce,
            humans: Mode::Alert,
            protected_principals: Vec::new(),
            freshness_minutes: 60,
            quarantine_hours: 24,
            revocation_policy_name: "trailguard-revocations".to_owned(),
            member_role_name: "trailguard-member".to_owned(),
            member_reader_role_name: "trailguard-member-reader".to_owned(),
            revoke_source_identity: false,
            trust_role_tags: false,
            sso_admin_role_arn: None,
            sso_instance_arn: None,
            sso_region: None,
        }
    }
}

/// What to do with one rule's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The rule does not run.
    Off,
    /// Findings are reported, never remediated.
    Alert,
    /// Findings are reported and remediated (subject to the remediator's own checks).
    Enforce,
}

/// Settings of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    /// The mode; unset means the default (enforce for agents, alert for people, decided by the remediator).
    pub mode: Option<Mode>,
    /// Globs on actor ARNs (session ARN, role ARN or user ARN) whose events this rule ignores. Not accepted for
    /// `guardrail-tampering`, whose only exemption is `deployment_role_arns` (exact).
    pub allow_principals: Vec<String>,
    /// Accounts whose events this rule ignores.
    pub allow_accounts: Vec<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The JSON is malformed or has an unknown field.
    #[error("configuration is not valid: {0}")]
    Json(String),
    /// A rule id that no rule has.
    #[error("configuration names unknown rule `{0}`")]
    UnknownRule(String),
    /// An organisation id that is not `o-` and 10 to 32 lower-case letters or digits.
    #[error("configuration has invalid organization id `{0}` (expected `o-` and 10 to 32 letters or digits)")]
    Organization(String),
    /// An account id that is not 12 digits.
    #[error("configuration has invalid account id `{0}` (expected 12 digits)")]
    Account(String),
    /// A field that must hold exact IAM role ARNs holds something else.
    #[error("configuration field `{field}` has `{value}`, which is not an exact IAM role ARN (no wildcards)")]
    RoleArn {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// `allow_principals` on `guardrail-tampering`: a glob would let a role named to match it tamper unseen.
    #[error("`guardrail-tampering` takes no `allow_principals`; name the deploying roles in `deployment_role_arns`")]
    TamperingAllowList,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agents: AgentMatchers::default(),
            trusted_accounts: Vec::new(),
            organization_ids: Vec::new(),
            own_role_arns: Vec::new(),
            deployment_role_arns: Vec::new(),
            own_resource_arns: Vec::new(),
            // StackSets name the stacks they create `StackSet-<stack set>-<id>` in member accounts.
            own_resources: vec!["trailguard*".to_owned(), "StackSet-trailguard*".to_owned()],
            canary_role_name: "trailguard-canary".to_owned(),
            sensitive_calls: Vec::new(),
            behaviour: crate::behaviour::BehaviourSettings::default(),
            rules: BTreeMap::new(),
            remediation: RemediationSettings::default(),
        }
    }
}

impl Config {
    /// Parses and checks a configuration document.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks rule ids and account ids.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let known = crate::rules::registry();
        if let Some(unknown) = self.rules.keys().find(|id| !known.iter().any(|r| r.id() == id.as_str())) {
            return Err(ConfigError::UnknownRule(unknown.clone()));
        }
        let accounts = self.trusted_accounts.iter().chain(self.rules.values().flat_map(|r| &r.allow_accounts));
        for account in accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Account(account.clone()));
            }
        }
        for (field, arns) in
            [("own_role_arns", &self.own_role_arns), ("deployment_role_arns", &self.deployment_role_arns)]
        {
            if let Some(bad) = arns.iter().find(|a| role_name_of_arn(a).is_none()) {
                return Err(ConfigError::RoleArn { field, value: bad.clone() });
            }
        }
        if self.rules.get("guardrail-tampering").is_some_and(|r| !r.allow_principals.is_empty()) {
            return Err(ConfigError::TamperingAllowList);
        }
        for org in &self.organization_ids {
            let id = org.strip_prefix("o-").unwrap_or_default();
            if !(10..=32).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Err(ConfigError::Organization(org.clone()));
            }
        }
        Ok(())
    }

    /// The organisations and accounts a trust policy in `own_account` may admit.
    pub fn known<'a>(&'a self, own_account: Option<&'a str>) -> crate::policy::Known<'a> {
        crate::policy::Known { own_account, accounts: &self.trusted_accounts, organizations: &self.organization_ids }
    }

    /// The settings of a rule (defaults when not configured).
    pub fn rule(&self, id: &str) -> RuleSettings {
        self.rules.get(id).cloned().unwrap_or_default()
    }

    /// Whether the actor is trailguard itself: a session of one of its function roles (exact ARN), or a
    /// session of a member role (exact name) under the exact session name trailguard uses when it assumes
    /// that role. Nothing else, whatever its name, is exempt.
    pub fn is_own_actor(&self, actor: &Actor) -> bool {
        if actor.kind != "AssumedRole" {
            return false;
        }
        let Some(role_arn) = actor.role_arn.as_deref() else { return false };
        if self.own_role_arns.iter().any(|own| same_role_arn(own, role_arn)) {
            return true;
        }
        let (role, session) = (actor.role_name.as_deref().unwrap_or_default(), actor.session_name.as_deref());
        let settings = &self.remediation;
        let sso_admin = settings.sso_admin_role_arn.as_deref().is_some_and(|own| same_role_arn(own, role_arn));
        (role.eq_ignore_ascii_case(&settings.member_role_name) && session == Some(REMEDIATOR_SESSION))
            || (role.eq_ignore_ascii_case(&settings.member_reader_role_name) && session == Some(DETECTOR_SESSION))
            || (sso_admin && session == Some(REMEDIATOR_SESSION))
    }

    /// Whether a role is one of trailguard's own roles: a function role (the exact name and account of one of
    /// `own_role_arns`; any account when `account` is unknown) or a member role (by its exact configured name).
    /// IAM role names are unique whatever their case, so the comparison ignores case.
    pub fn is_own_role(&self, account: Option<&str>, name: &str) -> bool {
        let settings = &self.remediation;
        let function_role = |arn: &String| {
            let in_account = account.is_none_or(|a| arn.split(':').nth(4) == Some(a));
            in_account && role_name_of_arn(arn).is_some_and(|own| own.eq_ignore_ascii_case(name))
        };
        // The optional sso-admin role is trailguard's too, known by its exact ARN like the function roles.
        self.own_role_arns.iter().chain(&settings.sso_admin_role_arn).any(function_role)
            || name.eq_ignore_ascii_case(&settings.member_role_name)
            || name.eq_ignore_ascii_case(&settings.member_reader_role_name)
    }

    /// Whether the actor deploys trailguard (exact role ARN of its session or user).
    pub fn is_deployer(&self, actor: &Actor) -> bool {
        let arn = if actor.kind == "AssumedRole" { actor.role_arn.as_deref() } else { actor.arn.as_deref() };
        arn.is_some_and(|arn| self.deployment_role_arns.iter().any(|d| same_role_arn(d, arn)))
    }

    /// Whether a resource name (a whole name, or one `/`- or `:`-separated part of an ARN) is named like one of
    /// trailguard's. Used only to widen tampering detection, never to exempt.
    pub fn is_own_resource(&self, name: &str) -> bool {
        self.own_resources.iter().any(|p| wildcard::matches(p, name, true)) || self.is_own_role(None, name)
    }

    /// Why a principal must never be touched by configuration (`protected_principals`), matched against its
    /// name and, when known, its ARN, ignoring case.
    pub fn protected_principal(&self, name: &str, arn: Option<&str>) -> Option<&str> {
        self.remediation
            .protected_principals
            .iter()
            .map(String::as_str)
            .find(|p| wildcard::matches(p, name, true) || arn.is_some_and(|arn| wildcard::matches(p, arn, true)))
    }

    /// Whether a rule's settings exempt this actor or account.
    pub fn allows(&self, rule: &str, actor: &Actor, account: Option<&str>) -> bool {
        let settings = self.rule(rule);
        let principal_allowed = [actor.arn.as_deref(), actor.role_arn.as_deref()]
            .into_iter()
            .flatten()
            .any(|arn| settings.allow_principals.iter().any(|p| wildcard::matches(p, arn, false)));
        let account_allowed = account.is_some_and(|a| settings.allow_accounts.iter().any(|x| x == a));
        principal_allowed || account_allowed
    }
}

/// The session name the remediator uses when it assumes a member role (and so the one its calls show).
pub const REMEDIATOR_SESSION: &str = "trailguard-remediate";
/// The session name the detector uses when it assumes a member reader role.
pub const DETECTOR_SESSION: &str = "trailguard-detect";

/// The role name of an exact IAM role ARN (`arn:aws:iam::<12 digits>:role/[path/]name`), or `None` when the text
/// is not one (or holds a wildcard).
pub fn role_name_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_and_name = resource.strip_prefix("role/")?;
    let valid = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !arn.contains(['*', '?'])
        && !path_and_name.is_empty();
    valid.then(|| path_and_name.rsplit('/').next().unwrap_or(path_and_name))
}

/// Two role ARNs name the same role: same partition and account, same name ignoring case (IAM role names are
/// unique case-insensitively; the path is part of the ARN IAM reports and is compared as written).
fn same_role_arn(a: &str, b: &str) -> bool {
    // Compared in place: this runs for every call a session makes (own-actor and deployer checks).
    match (a.rsplit_once('/'), b.rsplit_once('/')) {
        (Some((head_a, name_a)), Some((head_b, name_b))) => head_a == head_b && name_a.eq_ignore_ascii_case(name_b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_default() {
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(matches!(Config::from_json(r#"{"trusted_acounts":[]}"#), Err(ConfigError::Json(_))));
        assert_eq!(
            Config::from_json(r#"{"rules":{"no-such-rule":{}}}"#),
            Err(ConfigError::UnknownRule("no-such-rule".into()))
        );
        assert_eq!(Config::from_json(r#"{"trusted_accounts":["12345"]}"#), Err(ConfigError::Account("12345".into())));
        assert_eq!(Config::from_json(r#"{"organization_ids":["o-*"]}"#), Err(ConfigError::Organization("o-*".into())));
        assert!(Config::from_json(r#"{"organization_ids":["o-a1b2c3d4e5"]}"#).is_ok());
        let ok = Config::from_json(r#"{"rules":{"root-usage":{"mode":"alert","allow_accounts":["111122223333"]}}}"#)
            .unwrap();
        assert_eq!(ok.rule("root-usage").mode, Some(Mode::Alert));
        assert!(matches!(
            Config::from_json(r#"{"own_role_arns":["arn:aws:iam::123456789012:role/trailguard-*"]}"#),
            Err(ConfigError::RoleArn { .. })
        ));
        assert_eq!(
            Config::from_json(r#"{"rules":{"guardrail-tampering":{"allow_principals":["*deploy*"]}}}"#),
            Err(ConfigError::TamperingAllowList)
        );
    }

    fn session<'a>(role_arn: &'a str, session: &'a str) -> Actor<'a> {
        Actor {
            kind: "AssumedRole".into(),
            role_name: role_name_of_arn(role_arn).map(Into::into),
            role_arn: Some(role_arn.into()),
            session_name: Some(session.into()),
            ..Actor::default()
        }
    }

    #[test]
    fn only_exact_identities_are_trailguard_itself() {
        let config =
            Config::from_json(r#"{"own_role_arns":["arn:aws:iam::123456789012:role/tg/trailguard-remediate-Role"]}"#)
                .unwrap();
        assert!(config.is_own_actor(&session("arn:aws:iam::123456789012:role/tg/trailguard-remediate-Role", "x")));
        assert!(config.is_own_actor(&session("arn:aws:iam::123456789012:role/tg/TRAILGUARD-remediate-role", "x")));
        // A look-alike name, another account, or another path is someone else.
        assert!(!config.is_own_actor(&session("arn:aws:iam::123456789012:role/trailguard-remediate-Role", "x")));
        assert!(!config.is_own_actor(&session("arn:aws:iam::111122223333:role/tg/trailguard-remediate-Role", "x")));
        assert!(!config.is_own_actor(&session("arn:aws:iam::123456789012:role/trailguard-anything", "x")));
        // A member role counts only under the session name trailguard uses.
        let member = "arn:aws:iam::111122223333:role/trailguard-member";
        assert!(config.is_own_actor(&session(member, REMEDIATOR_SESSION)));
        assert!(!config.is_own_actor(&session(member, "attacker")));
        assert!(!config
            .is_own_actor(&session("arn:aws:iam::111122223333:role/trailguard-member-reader", REMEDIATOR_SESSION)));
    }

    #[test]
    fn the_sso_admin_role_is_trailguards_own_by_exact_arn_and_session() {
        let config = Config::from_json(
            r#"{"remediation":{"sso_admin_role_arn":"arn:aws:iam::111122223333:role/trailguard-sso-admin"}}"#,
        )
        .unwrap();
        let role = "arn:aws:iam::111122223333:role/trailguard-sso-admin";
        assert!(config.is_own_actor(&session(role, REMEDIATOR_SESSION)));
        assert!(!config.is_own_actor(&session(role, "attacker")));
        assert!(
            !config.is_own_actor(&session("arn:aws:iam::123456789012:role/trailguard-sso-admin", REMEDIATOR_SESSION))
        );
        assert!(config.is_own_role(Some("111122223333"), "TRAILGUARD-SSO-ADMIN"));
        assert!(!config.is_own_role(Some("123456789012"), "trailguard-sso-admin"));
        assert!(!Config::default().is_own_role(Some("111122223333"), "trailguard-sso-admin"));
    }

    #[test]
    fn protected_principals_match_names_and_arns_ignoring_case() {
        let config = Config::from_json(
            r#"{"remediation":{"protected_principals":["break-glass-*","arn:aws:iam::123456789012:user/ops/*"]}}"#,
        )
        .unwrap();
        assert!(config.protected_principal("Break-Glass-Admin", None).is_some());
        assert!(config.protected_principal("alice", Some("arn:aws:iam::123456789012:user/ops/alice")).is_some());
        assert!(config.protected_principal("alice", Some("arn:aws:iam::123456789012:user/dev/alice")).is_none());
    }
}
