//! The detector's work for one event: read it, look up what the rules need, judge it, deliver the findings.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::accounts::Accounts;
use super::delivery::{Delivery, DeliveryError};
use super::iam::SdkIam;
use crate::engine::Engine;
use crate::event::{read_event, RecordError};
use crate::iam::{resolve, IamError, IamReader};

/// Role tags change rarely; a warm Lambda reuses them for this long.
const TAG_CACHE_TTL: Duration = Duration::from_secs(300);

/// Why an event could not be handled. Every variant fails the invocation: Lambda retries it, then keeps the
/// event in the dead-letter destination, so nothing is lost.
#[derive(Debug, Error)]
pub enum DetectError {
    /// The event is not a CloudTrail record in any wrapping trailguard knows. Retrying will not help.
    #[error("event could not be read: {0}")]
    Unreadable(RecordError),
    /// A look-up failed in a way a retry may fix (throttling, network).
    #[error("look-up failed, the event will be retried: {0}")]
    Lookup(IamError),
    /// A finding could not be delivered.
    #[error("{delivered} of {total} finding(s) delivered: {source}")]
    Delivery {
        /// Findings delivered before the failure.
        delivered: usize,
        /// Findings in all.
        total: usize,
        /// The failure.
        source: DeliveryError,
    },
}

/// What the detector did with one event (the Lambda's response).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectOutcome {
    /// The ids of the findings delivered.
    pub findings: Vec<String>,
    /// The rules behind them.
    pub rules: Vec<String>,
    /// Warnings (a document that could not be read, tags that could not be looked up).
    pub warnings: Vec<String>,
}

/// Role tags by `(account, role)`, with when they were read.
type TagCache = Mutex<HashMap<(String, String), (Instant, Vec<(String, String)>)>>;

/// The detector, built once per Lambda environment.
pub struct Detector {
    engine: Engine,
    accounts: Accounts,
    delivery: Delivery,
    tags: TagCache,
}

impl Detector {
    /// Puts the parts together.
    pub fn new(engine: Engine, accounts: Accounts, delivery: Delivery) -> Detector {
        Detector { engine, accounts, delivery, tags: Mutex::new(HashMap::new()) }
    }

    /// Handles one event (an EventBridge event or a bare record, as JSON text).
    pub async fn handle(&self, event: &str) -> Result<DetectOutcome, DetectError> {
        let record = read_event(event).map_err(DetectError::Unreadable)?;
        // Most events stop here, before any AWS call.
        let Some(prepared) = self.engine.prepare(&record) else { return Ok(DetectOutcome::default()) };
        let resolved = resolve(&self.engine.needs(&prepared), self).await.map_err(DetectError::Lookup)?;
        let evaluation = self.engine.evaluate(&prepared, &resolved);
        for warning in &evaluation.warnings {
            tracing::warn!(event_id = record.event_id.as_deref().unwrap_or_default(), %warning, "evaluation warning");
        }
        let total = evaluation.findings.len();
        let mut outcome = DetectOutcome { warnings: evaluation.warnings.clone(), ..DetectOutcome::default() };
        for (delivered, finding) in evaluation.findings.iter().enumerate() {
            self.delivery.finding(finding).await.map_err(|source| DetectError::Delivery {
                delivered,
                total,
                source,
            })?;
            tracing::info!(rule = %finding.rule, severity = %finding.severity, id = %finding.id,
                actor = finding.actor.arn.as_deref().unwrap_or_default(), "finding delivered");
            outcome.findings.push(finding.id.clone());
            outcome.rules.push(finding.rule.clone());
        }
        Ok(outcome)
    }

    async fn iam(&self, account: &str) -> SdkIam {
        SdkIam::new(aws_sdk_iam::Client::new(&self.accounts.config_for(account).await))
    }
}

impl IamReader for Detector {
    async fn policy_document(&self, account: &str, arn: &str, version: Option<&str>) -> Result<String, IamError> {
        self.iam(account).await.policy_document(arn, version).await
    }

    /// Tags are cached per role for a few minutes: agents' sessions call often, tags change rarely.
    async fn role_tags(&self, account: &str, role: &str) -> Result<Vec<(String, String)>, IamError> {
        let key = (account.to_owned(), role.to_owned());
        let cached = self.tags.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((_, tags)) = cached.filter(|(at, _)| at.elapsed() < TAG_CACHE_TTL) {
            return Ok(tags);
        }
        let tags = self.iam(account).await.role_tags(role).await?;
        if let Ok(mut m) = self.tags.lock() {
            m.insert(key, (Instant::now(), tags.clone()));
        }
        Ok(tags)
    }
}
