//! The remediation plan: which of a finding's suggested steps to take, and why not the others.
//!
//! Pure: the same finding and configuration always give the same plan, which can be printed (dry run),
//! reported, and executed. Protection is decided here by name and again at execution time by what IAM says
//! (a role's path shows whether it is service-linked).

use serde::{Deserialize, Serialize};

use crate::config::{Config, Mode};
use crate::finding::{Finding, PrincipalKind, Remediation};

/// What to do with one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Carry it out.
    Execute,
    /// Work out and report what would change, change nothing.
    DryRun,
    /// Leave it, for this reason.
    Skip {
        /// Why.
        reason: String,
    },
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step.
    pub step: Remediation,
    /// Whether it is taken.
    pub decision: Decision,
}

/// A finding's remediation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The finding.
    pub finding_id: String,
    /// Its rule.
    pub rule: String,
    /// The account the steps act in.
    pub account: Option<String>,
    /// The mode that applied.
    pub mode: Mode,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Whether any step will change (or, in a dry run, would change) something.
    pub fn acts(&self) -> bool {
        self.steps.iter().any(|s| !matches!(s.decision, Decision::Skip { .. }))
    }

    /// A readable rendering, one line per step.
    pub fn to_text(&self) -> String {
        let mut out = format!("Plan for finding {} ({}), {}:\n", self.finding_id, self.rule, mode_name(self.mode));
        if self.steps.is_empty() {
            out.push_str("  nothing to undo (alert only)\n");
        }
        for (i, s) in self.steps.iter().enumerate() {
            let what = s.step.describe();
            let decision = match &s.decision {
                Decision::Execute => "do".to_owned(),
                Decision::DryRun => "dry run".to_owned(),
                Decision::Skip { reason } => format!("skip: {reason}"),
            };
            out.push_str(&format!("  {}. {what} [{decision}]\n", i + 1));
        }
        out
    }
}

/// Builds the plan for a finding.
pub fn plan(finding: &Finding, config: &Config) -> Plan {
    let settings = &config.remediation;
    let rule_mode = config.rule(&finding.rule).mode;
    let forgeable = finding.actor.agent.as_ref().is_some_and(|a| a.rests_on_role_tag()) && !settings.trust_role_tags;
    let (actor_mode, who) = if forgeable {
        // Anyone with iam:TagRole can set the tag: act on it only where the configuration says it is protected.
        (
            settings.humans,
            "people (remediation.humans): an agent known only by a role tag, which anyone with \
                           iam:TagRole can set, is treated as a person unless remediation.trust_role_tags",
        )
    } else if finding.actor.is_agent() {
        (settings.agents, "agents (remediation.agents)")
    } else {
        (settings.humans, "people (remediation.humans)")
    };
    let mode = rule_mode.unwrap_or(actor_mode);
    let why_not = match rule_mode {
        Some(_) => format!("rule {} is in {} mode", finding.rule, mode_name(mode)),
        None => format!("{} mode for {who}", mode_name(mode)),
    };
    let steps = finding
        .remediation
        .iter()
        .map(|step| {
            let decision = if let Some(reason) = protected(step, config) {
                Decision::Skip { reason }
            } else if mode != Mode::Enforce {
                Decision::Skip { reason: why_not.clone() }
            } else if settings.dry_run {
                Decision::DryRun
            } else {
                Decision::Execute
            };
            PlannedStep { step: step.clone(), decision }
        })
        .collect();
    Plan { finding_id: finding.id.clone(), rule: finding.rule.clone(), account: finding.account.clone(), mode, steps }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Off => "off",
        Mode::Alert => "alert-only",
        Mode::Enforce => "enforce",
    }
}

/// The principal a step acts on, if it acts on one.
pub fn principal_of(step: &Remediation) -> Option<(PrincipalKind, &str)> {
    match step {
        Remediation::RevokeSession { role_name, .. }
        | Remediation::RevokeOlderSessions { role_name, .. }
        | Remediation::RemoveTrustStatements { role_name, .. }
        | Remediation::DenySsoUserInPermissionSet { role_name, .. } => Some((PrincipalKind::Role, role_name)),
        Remediation::DeactivateAccessKey { user_name, .. } | Remediation::RevokeUserSessions { user_name, .. } => {
            Some((PrincipalKind::User, user_name))
        }
        Remediation::DetachManagedPolicy { principal_kind, principal_name, .. }
        | Remediation::DeleteInlinePolicy { principal_kind, principal_name, .. } => {
            Some((*principal_kind, principal_name))
        }
        Remediation::RollBackPolicyVersion { .. } => None,
    }
}

/// Why a step must not be taken, judged from the finding (`None`: nothing known against it yet). Roles AWS
/// manages are told at execution time by their path, which nobody can choose, never by a name anyone can give
/// a role; trailguard's own roles are known by exact ARN and member-role name.
pub fn protected(step: &Remediation, config: &Config) -> Option<String> {
    if let Remediation::RollBackPolicyVersion { policy_arn, .. } = step {
        let name = policy_arn.rsplit('/').next().unwrap_or(policy_arn);
        return config
            .protected_principal(name, Some(policy_arn))
            .map(|p| format!("policy {policy_arn} is protected by configuration (`{p}`)"));
    }
    let (kind, name) = principal_of(step)?;
    if kind == PrincipalKind::Role && config.is_own_role(Some(step.account()), name) {
        return Some(format!("role {name} is trailguard's own"));
    }
    let arn = format!("arn:aws:iam::{}:{}/{name}", step.account(), kind.as_str());
    config
        .protected_principal(name, Some(&arn))
        .map(|p| format!("{} {name} is protected by configuration (`{p}`)", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, AgentMatch};
    use crate::finding::{Evidence, Severity, Target, SCHEMA_VERSION};

    fn finding(agent: bool, role: &str) -> Finding {
        let actor = Actor {
            kind: "AssumedRole".into(),
            agent: agent.then(|| AgentMatch {
                signal: "session_name".into(),
                pattern: "agent-*".into(),
                value: "agent-1".into(),
            }),
            ..Actor::default()
        };
        let steps = vec![
            Remediation::DetachManagedPolicy {
                account: "123456789012".into(),
                principal_kind: PrincipalKind::Role,
                principal_name: role.into(),
                policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(),
                document_sha256: None,
            },
            Remediation::RevokeSession {
                account: "123456789012".into(),
                role_name: role.into(),
                user_id: Some("AROA:agent-1".into()),
                source_identity: None,
                rotating: None,
            },
        ];
        Finding {
            schema_version: SCHEMA_VERSION,
            id: "f".into(),
            rule: "admin-policy-grant".into(),
            severity: Severity::Critical,
            title: "t".into(),
            description: "d".into(),
            attempt: false,
            account: Some("123456789012".into()),
            region: None,
            time: None,
            event_id: None,
            event_source: "iam.amazonaws.com".into(),
            event_name: "AttachRolePolicy".into(),
            error_code: None,
            actor,
            target: Target::default(),
            evidence: Evidence::default(),
            remediable: !steps.is_empty(),
            remediation: steps,
        }
    }

    fn decisions(plan: &Plan) -> Vec<&Decision> {
        plan.steps.iter().map(|s| &s.decision).collect()
    }

    #[test]
    fn agents_are_enforced_and_people_alerted_by_default() {
        let config = Config::default();
        assert_eq!(decisions(&plan(&finding(true, "dev"), &config)), [&Decision::Execute, &Decision::Execute]);
        let human = plan(&finding(false, "dev"), &config);
        assert!(matches!(human.steps[0].decision, Decision::Skip { ref reason } if reason.contains("people")));
        assert!(!human.acts());
    }

    #[test]
    fn rule_mode_and_dry_run_override() {
        let mut config = Config::from_json(r#"{"rules":{"admin-policy-grant":{"mode":"enforce"}}}"#).unwrap();
        assert!(plan(&finding(false, "dev"), &config).acts(), "a rule in enforce mode acts for people too");
        config.remediation.dry_run = true;
        assert_eq!(decisions(&plan(&finding(true, "dev"), &config)), [&Decision::DryRun, &Decision::DryRun]);
    }

    #[test]
    fn protected_principals_are_skipped_in_every_mode() {
        let mut config = Config::from_json(
            r#"{"own_role_arns":["arn:aws:iam::123456789012:role/trailguard-remediate"],
                "remediation":{"protected_principals":["break-glass-*"]}}"#,
        )
        .unwrap();
        config.remediation.humans = Mode::Enforce;
        for role in
            ["trailguard-remediate", "TRAILGUARD-Remediate", "trailguard-member", "break-glass-admin", "Break-Glass-2"]
        {
            for agent in [true, false] {
                let p = plan(&finding(agent, role), &config);
                assert!(!p.acts(), "{role} must never be touched");
            }
        }
        // A name that merely looks like trailguard's or AWS's own is judged like any other.
        for role in ["trailguard-evil", "AWSReservedSSO_Fake", "AWSServiceRoleForFake"] {
            assert!(plan(&finding(true, role), &config).acts(), "{role} is not exempt by its name");
        }
    }
}
