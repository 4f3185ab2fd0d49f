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
    /// Globs on role names of trailguard's own roles: their calls never yield findings (trailguard's
    /// remediation is recorded by CloudTrail too), and changes to them are guardrail tampering.
    pub own_roles: Vec<String>,
    /// Globs on the names of trailguard's own resources (functions, rules, topic, bus, queues, stacks, roles).
    pub own_resources: Vec<String>,
    /// Extra calls, `service:EventName` globs (`s3:PutBucketPolicy`, `kms:Schedule*`), that are sensitive when an
    /// agent makes them.
    pub sensitive_calls: Vec<String>,
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
    /// Globs on role and user names (or ARNs) that are never touched, beside the always-protected ones
    /// (root, service-linked roles, `AWSReservedSSO_*`, trailguard's own roles).
    pub protected_principals: Vec<String>,
    /// The name of the inline policy that holds a role's revocations.
    pub revocation_policy_name: String,
    /// The role the remediator assumes in other accounts (with the external id from its environment).
    pub member_role_name: String,
    /// The read-only role the detector assumes in other accounts for its look-ups.
    pub member_reader_role_name: String,
}

impl Default for RemediationSettings {
    fn default() -> Self {
        RemediationSettings {
            dry_run: false,
            agents: Mode::Enforce,
            humans: Mode::Alert,
            protected_principals: Vec::new(),
            revocation_policy_name: "trailguard-revocations".to_owned(),
            member_role_name: "trailguard-member".to_owned(),
            member_reader_role_name: "trailguard-member-reader".to_owned(),
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
    /// Globs on actor ARNs (session ARN, role ARN or user ARN) whose events this rule ignores.
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agents: AgentMatchers::default(),
            trusted_accounts: Vec::new(),
            organization_ids: Vec::new(),
            own_roles: vec!["trailguard-*".to_owned()],
            own_resources: vec!["trailguard*".to_owned()],
            sensitive_calls: Vec::new(),
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

    /// Whether the actor is one of trailguard's own roles.
    pub fn is_own_actor(&self, actor: &Actor) -> bool {
        actor.role_name.as_deref().is_some_and(|name| self.is_own_role(name))
    }

    /// Whether a role name is one of trailguard's own.
    pub fn is_own_role(&self, name: &str) -> bool {
        self.own_roles.iter().any(|p| wildcard::matches(p, name, true))
    }

    /// Whether a resource name or ARN belongs to trailguard (the last `/` or `:` part of an ARN is compared).
    pub fn is_own_resource(&self, name_or_arn: &str) -> bool {
        let name = name_or_arn.rsplit(['/', ':']).next().unwrap_or(name_or_arn);
        self.own_resources.iter().any(|p| wildcard::matches(p, name, true)) || self.is_own_role(name)
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
    }
}
