//! The remediator's work for one finding event: authenticate it, plan, act in each step's own account under the
//! role's lock, report.

use serde_json::{json, Value};
use thiserror::Error;
use time::OffsetDateTime;

use super::accounts::Accounts;
use super::delivery::{Delivery, DeliveryError};
use super::detect::{blind_finding, hour};
use super::iam::SdkIam;
use super::mac::MacKey;
use super::ssoadmin::SdkSsoAdmin;
use super::state::StateTable;
use crate::authenticity::{read_finding_event, signing_digest, Refusal};
use crate::config::Config;
use crate::finding::Finding;
use crate::finding::Remediation;
use crate::iam::{IamError, IamErrorKind};
use crate::remediation::execute::{execute_step, Occasion, Safeguards, StepOutcome};
use crate::remediation::plan::{Decision, PlannedStep};
use crate::remediation::sso::{self, SsoTarget};
use crate::remediation::{plan, Report};

/// How long a provisioning request is awaited before the step is called unfinished (and retried): within the
/// function's 60-second timeout, with room for the other steps.
const PROVISIONING_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Why a finding event failed. Every variant fails the invocation, so Lambda retries and then dead-letters it.
#[derive(Debug, Error)]
pub enum RemediateError {
    /// A step failed in a way a retry may fix; the report (already delivered) says which.
    #[error("remediation incomplete, will be retried: {failed}")]
    Incomplete {
        /// The failed steps' details.
        failed: String,
        /// The report delivered.
        report: Box<Report>,
    },
    /// The MAC could not be checked now (KMS unreachable or throttled), or the state table could not be reached.
    #[error("finding not verified, will be retried: {0}")]
    Unverified(IamError),
    /// The report could not be delivered.
    #[error("remediation report not delivered: {0}")]
    Delivery(DeliveryError),
}

/// The remediator, built once per Lambda environment.
pub struct Remediator {
    config: Config,
    accounts: Accounts,
    delivery: Delivery,
    state: StateTable,
    mac: MacKey,
}

impl Remediator {
    /// Puts the parts together.
    pub fn new(config: Config, accounts: Accounts, delivery: Delivery, state: StateTable, mac: MacKey) -> Remediator {
        Remediator { config, accounts, delivery, state, mac }
    }

    /// Handles one finding event; `now` bounds revocations. Returns the report, or the refusal, as JSON.
    pub async fn handle(&self, event: &str, now: OffsetDateTime) -> Result<Value, RemediateError> {
        let finding = match self.authenticate(event).await? {
            Ok(finding) => finding,
            Err(refusal) => return self.refuse(&refusal, now).await,
        };
        let plan = plan(&finding, &self.config);
        tracing::info!(finding = %finding.id, rule = %finding.rule, plan = %plan.to_text(), "plan");
        let occasion = Occasion::of(&finding);
        let guard = Guard { state: &self.state, delivery: &self.delivery, finding_id: &finding.id };
        let mut outcomes = Vec::new();
        let mut blind = Vec::new();
        for planned in &plan.steps {
            let account = planned.step.account();
            let iam = match &planned.decision {
                Decision::Skip { .. } => None,
                _ => match self.accounts.config_for(account).await {
                    Ok(config) => Some(SdkIam::new(aws_sdk_iam::Client::new(&config))),
                    Err(e) => {
                        if e.kind == IamErrorKind::Blind {
                            blind.push(account.to_owned());
                        }
                        outcomes.push(StepOutcome::failed(&planned.step, &e));
                        continue;
                    }
                },
            };
            // A skipped step never reaches IAM; the home client stands in.
            let iam = match iam {
                Some(iam) => iam,
                None => SdkIam::new(aws_sdk_iam::Client::new(&self.accounts.home_config())),
            };
            if let Remediation::DenySsoUserInPermissionSet { .. } = planned.step {
                outcomes.push(self.deny_in_permission_set(planned, occasion, &iam, &guard, now).await);
                continue;
            }
            outcomes.push(execute_step(planned, occasion, &iam, &guard, &self.config, now).await);
        }
        let report = Report::new(&finding, &plan, self.config.remediation.dry_run, outcomes);
        tracing::info!(finding = %finding.id, status = ?report.status, "remediation");
        self.delivery.report(&report).await.map_err(RemediateError::Delivery)?;
        for account in blind {
            if self.first_this_hour(&format!("blind#{account}"), now).await? {
                self.delivery.finding(&blind_finding(&account, &hour(now))).await.map_err(RemediateError::Delivery)?;
            }
        }
        if report.retryable() {
            let failed =
                report.steps.iter().filter(|s| s.retryable).map(|s| s.detail.clone()).collect::<Vec<_>>().join("; ");
            return Err(RemediateError::Incomplete { failed, report: Box::new(report) });
        }
        Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
    }

    /// An Identity Center session's deny, through the sso-admin role (in the instance's region when one is set).
    async fn deny_in_permission_set(
        &self,
        planned: &PlannedStep,
        occasion: Occasion<'_>,
        iam: &SdkIam,
        guard: &Guard<'_>,
        now: OffsetDateTime,
    ) -> StepOutcome {
        let settings = &self.config.remediation;
        if let Decision::Skip { reason } = &planned.decision {
            return sso::skipped(&planned.step, reason);
        }
        let Some(role_arn) = settings.sso_admin_role_arn.as_deref() else {
            return sso::unconfigured(&planned.step);
        };
        let config = match self.accounts.config_for_role(&format!("sso#{role_arn}"), role_arn).await {
            Ok(config) => config,
            Err(e) => return StepOutcome::failed(&planned.step, &e),
        };
        let config = match &settings.sso_region {
            Some(region) => config.to_builder().region(aws_config::Region::new(region.clone())).build(),
            None => config,
        };
        let admin = SdkSsoAdmin::new(aws_sdk_ssoadmin::Client::new(&config));
        let target = SsoTarget {
            sso: &admin,
            instance: settings.sso_instance_arn.as_deref(),
            provisioning_wait: PROVISIONING_WAIT,
        };
        sso::deny_in_permission_set(planned, occasion, iam, &target, guard, now).await
    }

    /// The finding, if the event is a finding the detector signed; else why not. `Err`: cannot tell now.
    async fn authenticate(&self, event: &str) -> Result<Result<Finding, Refusal>, RemediateError> {
        let signed = match read_finding_event(event) {
            Ok(signed) => signed,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match self.mac.verify(&signing_digest(&signed.detail), &signed.mac).await {
            Ok(true) => Ok(Ok(signed.finding)),
            Ok(false) => Ok(Err(Refusal::Unauthenticated(
                "its MAC does not verify: it was altered after signing, or not signed by trailguard's detector"
                    .to_owned(),
            ))),
            Err(e) if e.retryable() => Err(RemediateError::Unverified(e)),
            Err(e) => Ok(Err(Refusal::Unauthenticated(format!("its MAC could not be verified: {e}")))),
        }
    }

    /// Reports a refused event (once per kind and hour to people; always in the log) and touches nothing.
    async fn refuse(&self, refusal: &Refusal, now: OffsetDateTime) -> Result<Value, RemediateError> {
        tracing::warn!(kind = refusal.kind(), reason = refusal.reason(), "finding event refused");
        if self.first_this_hour(&format!("refused#{}", refusal.kind()), now).await? {
            let finding = refusal.finding(Some(self.accounts.home_account().to_owned()), &hour(now));
            self.delivery.finding(&finding).await.map_err(RemediateError::Delivery)?;
        }
        Ok(json!({"refused": refusal.kind(), "reason": refusal.reason()}))
    }

    async fn first_this_hour(&self, key: &str, now: OffsetDateTime) -> Result<bool, RemediateError> {
        self.state
            .first_time(&format!("{key}#{}", hour(now)), time::Duration::hours(1), now)
            .await
            .map_err(RemediateError::Unverified)
    }
}

/// The remediator's safeguards: the per-role lock in the state table, and intents on the findings bus.
struct Guard<'a> {
    state: &'a StateTable,
    delivery: &'a Delivery,
    finding_id: &'a str,
}

impl Safeguards for Guard<'_> {
    async fn lock(&self, account: &str, role: &str) -> Result<String, IamError> {
        // Role names are unique case-insensitively: one lock per role whatever the spelling.
        self.state.lock(&format!("role#{account}#{}", role.to_ascii_lowercase())).await
    }

    async fn unlock(&self, account: &str, role: &str, token: &str) {
        self.state.unlock(&format!("role#{account}#{}", role.to_ascii_lowercase()), token).await;
    }

    async fn recorded(&self, key: &str) -> Result<bool, IamError> {
        self.state.recorded(key, OffsetDateTime::now_utc()).await
    }

    async fn record(&self, key: &str, ttl: time::Duration) -> Result<(), IamError> {
        self.state.first_time(key, ttl, OffsetDateTime::now_utc()).await.map(|_| ())
    }

    async fn about_to(&self, outcome: &StepOutcome) -> Result<(), IamError> {
        self.delivery.intent(self.finding_id, outcome).await.map_err(|e| IamError {
            kind: if e.retryable() { IamErrorKind::Transient } else { IamErrorKind::Other },
            action: "events:PutEvents".to_owned(),
            message: format!("the record of the removal could not be delivered, so nothing was removed: {e}"),
        })
    }
}
