//! The remediator's work for one finding: plan, act in the finding's account, report.

use thiserror::Error;
use time::OffsetDateTime;

use super::accounts::Accounts;
use super::delivery::{Delivery, DeliveryError};
use super::iam::SdkIam;
use crate::config::Config;
use crate::finding::{Finding, FindingEventError};
use crate::remediation::execute::Occasion;
use crate::remediation::{execute, plan, Report};

/// Why a finding event failed. Every variant fails the invocation, so Lambda retries and then dead-letters it.
#[derive(Debug, Error)]
pub enum RemediateError {
    /// The event is not a finding.
    #[error("{0}")]
    Unreadable(FindingEventError),
    /// A step failed in a way a retry may fix; the report (already delivered) says which.
    #[error("remediation incomplete, will be retried: {failed}")]
    Incomplete {
        /// The failed steps' details.
        failed: String,
        /// The report delivered.
        report: Box<Report>,
    },
    /// The report could not be delivered.
    #[error("remediation report not delivered: {0}")]
    Delivery(DeliveryError),
}

/// The remediator, built once per Lambda environment.
pub struct Remediator {
    config: Config,
    accounts: Accounts,
    delivery: Delivery,
}

impl Remediator {
    /// Puts the parts together.
    pub fn new(config: Config, accounts: Accounts, delivery: Delivery) -> Remediator {
        Remediator { config, accounts, delivery }
    }

    /// Handles one finding event; `now` bounds revocations.
    pub async fn handle(&self, event: &str, now: OffsetDateTime) -> Result<Report, RemediateError> {
        let finding = Finding::from_event(event).map_err(RemediateError::Unreadable)?;
        let plan = plan(&finding, &self.config);
        tracing::info!(finding = %finding.id, rule = %finding.rule, plan = %plan.to_text(), "plan");
        let account = finding.account.clone().unwrap_or_else(|| self.accounts.home_account().to_owned());
        let iam = SdkIam::new(aws_sdk_iam::Client::new(&self.accounts.config_for(&account).await));
        let outcomes = execute(&plan, Occasion::of(&finding), &iam, &self.config, now).await;
        let report = Report::new(&finding, &plan, self.config.remediation.dry_run, outcomes);
        tracing::info!(finding = %finding.id, status = ?report.status, "remediation");
        self.delivery.report(&report).await.map_err(RemediateError::Delivery)?;
        if report.retryable() {
            let failed =
                report.steps.iter().filter(|s| s.retryable).map(|s| s.detail.clone()).collect::<Vec<_>>().join("; ");
            return Err(RemediateError::Incomplete { failed, report: Box::new(report) });
        }
        Ok(report)
    }
}
