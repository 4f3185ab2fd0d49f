//! The detector's work for one event: check where it came from, read it, look up what the rules need, judge
//! it, deliver the findings (signed).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;
use time::OffsetDateTime;

use super::accounts::Accounts;
use super::delivery::{Delivery, DeliveryError};
use super::iam::SdkIam;
use super::state::StateTable;
use crate::authenticity::{guardrail_finding, read_delivered, Delivered};
use crate::engine::Engine;
use crate::event::RecordError;
use crate::finding::{Finding, Severity};
use crate::iam::{resolve, IamError, IamErrorKind, IamReader};

/// Role tags change rarely; a warm Lambda reuses them for this long.
const TAG_CACHE_TTL: Duration = Duration::from_secs(300);

/// Why an event could not be handled. Every variant fails the invocation: Lambda retries it, then keeps the
/// event in the dead-letter destination, so nothing is lost.
#[derive(Debug, Error)]
pub enum DetectError {
    /// The event is not a CloudTrail record in an EventBridge event. Retrying will not help.
    #[error("event could not be read: {0}")]
    Unreadable(RecordError),
    /// A look-up failed in a way a retry may fix (throttling, network).
    #[error("look-up failed, the event will be retried: {0}")]
    Lookup(IamError),
    /// The state table could not be reached (de-duplicating a page).
    #[error("state table unavailable, the event will be retried: {0}")]
    State(IamError),
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
    /// Why the event was taken for a forgery, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forged: Option<String>,
    /// The path a canary proved alive, when the event is a canary's successful call (the binary writes it as
    /// a metric in its log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<crate::canary::Heartbeat>,
}

/// Role tags by `(account, role)`, with when they were read.
type TagCache = Mutex<HashMap<(String, String), (Instant, Vec<(String, String)>)>>;

/// The detector, built once per Lambda environment.
pub struct Detector {
    engine: Engine,
    accounts: Accounts,
    delivery: Delivery,
    state: StateTable,
    tags: TagCache,
    /// Accounts whose reader role could not be assumed while handling the current event.
    blind: Mutex<BTreeSet<String>>,
}

impl Detector {
    /// Puts the parts together. `delivery` must sign (see [`Delivery::signing_with`]).
    pub fn new(engine: Engine, accounts: Accounts, delivery: Delivery, state: StateTable) -> Detector {
        Detector {
            engine,
            accounts,
            delivery,
            state,
            tags: Mutex::new(HashMap::new()),
            blind: Mutex::new(BTreeSet::new()),
        }
    }

    /// Handles one EventBridge event, as JSON text.
    pub async fn handle(&self, event: &str) -> Result<DetectOutcome, DetectError> {
        let now = OffsetDateTime::now_utc();
        let record = match read_delivered(event).map_err(DetectError::Unreadable)? {
            Delivered::Record(record) => record,
            Delivered::Forged(forgery) => {
                tracing::warn!(account = forgery.account.as_deref().unwrap_or_default(), reason = %forgery.reason, "forged event");
                let hour = hour(now);
                let account = forgery.account.clone().unwrap_or_default();
                let mut outcome = DetectOutcome { forged: Some(forgery.reason.clone()), ..DetectOutcome::default() };
                if self.first_this_hour(&format!("forged#{account}"), now).await? {
                    self.deliver(&[forgery.finding(&hour)], &mut outcome).await?;
                }
                return Ok(outcome);
            }
        };
        // A canary is recognised before anything else: a heartbeat and no finding, whatever the rules say.
        if let Some(canary) = crate::canary::recognise(self.engine.config(), &record) {
            let beat = &canary.heartbeat;
            if !canary.succeeded {
                tracing::warn!(account = %beat.account, region = %beat.region, path = beat.path.as_str(),
                    error = record.error_code.as_deref().unwrap_or_default(), "canary call failed: no heartbeat");
            }
            return Ok(DetectOutcome {
                heartbeat: canary.succeeded.then_some(canary.heartbeat),
                ..DetectOutcome::default()
            });
        }
        // A call that issued an agent's credentials is remembered, for the session's later calls.
        if let Some((issued, needs)) = self.engine.issuing(&record) {
            let resolved = resolve(&needs, self).await.map_err(DetectError::Lookup)?;
            if let Some(session) = self.engine.agent_session(&record, issued, &resolved) {
                tracing::info!(access_key_id = %session.access_key_id, parent = session.parent.as_deref().unwrap_or_default(),
                    signal = session.agent.as_ref().map(|a| a.signal.as_str()).unwrap_or_default(), "agent session recorded");
                self.state.put_session(&session).await.map_err(DetectError::State)?;
            }
        }
        // Most events stop here, before any AWS call.
        let Some(prepared) = self.engine.prepare(&record) else { return Ok(DetectOutcome::default()) };
        let mut resolved = resolve(&self.engine.needs(&prepared), self).await.map_err(DetectError::Lookup)?;
        // The updates go second: whether a read call counts, and whether a region is remembered, depend on the
        // agent recognition just done.
        let later = self.engine.later_needs(&prepared, &resolved);
        if !later.is_empty() {
            let updated = resolve(&later, self).await.map_err(DetectError::Lookup)?;
            resolved.crossing = updated.crossing;
            resolved.region = updated.region;
        }
        let evaluation = self.engine.evaluate(&prepared, &resolved);
        for warning in &evaluation.warnings {
            tracing::warn!(event_id = record.event_id.as_deref().unwrap_or_default(), %warning, "evaluation warning");
        }
        let mut outcome = DetectOutcome { warnings: evaluation.warnings.clone(), ..DetectOutcome::default() };
        let mut findings = evaluation.findings;
        // An agent session's finding revokes the sessions it assumed too (lineage).
        let key = prepared.actor.access_key_id.as_deref().filter(|k| k.starts_with("ASIA"));
        if let Some(key) = key {
            if findings.iter().any(|f| f.actor.is_agent() && f.remediable) {
                let descendants =
                    self.state.descendants(key, now.unix_timestamp()).await.map_err(DetectError::State)?;
                findings.iter_mut().for_each(|f| crate::session::hand_on(f, &descendants));
            }
        }
        let blind: Vec<String> =
            self.blind.lock().map(|mut b| std::mem::take(&mut *b).into_iter().collect()).unwrap_or_default();
        for account in blind {
            if self.first_this_hour(&format!("blind#{account}"), now).await? {
                findings.push(blind_finding(&account, &hour(now)));
            }
        }
        self.deliver(&findings, &mut outcome).await?;
        Ok(outcome)
    }

    async fn deliver(&self, findings: &[Finding], outcome: &mut DetectOutcome) -> Result<(), DetectError> {
        let total = findings.len();
        for (delivered, finding) in findings.iter().enumerate() {
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
        Ok(())
    }

    async fn first_this_hour(&self, key: &str, now: OffsetDateTime) -> Result<bool, DetectError> {
        self.state
            .first_time(&format!("{key}#{}", hour(now)), time::Duration::hours(1), now)
            .await
            .map_err(DetectError::State)
    }

    async fn iam(&self, account: &str) -> Result<SdkIam, IamError> {
        match self.accounts.config_for(account).await {
            Ok(config) => Ok(SdkIam::new(aws_sdk_iam::Client::new(&config))),
            Err(e) => {
                if e.kind == IamErrorKind::Blind {
                    if let Ok(mut blind) = self.blind.lock() {
                        blind.insert(account.to_owned());
                    }
                }
                Err(e)
            }
        }
    }
}

/// The hour a time falls in, `2026-11-27T10`: the unit of "once per hour" pages.
pub fn hour(now: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}", now.year(), u8::from(now.month()), now.day(), now.hour())
}

/// "trailguard is blind in account X": its member role there cannot be assumed.
pub fn blind_finding(account: &str, hour: &str) -> Finding {
    let mut finding = guardrail_finding(
        &format!("blind|{account}|{hour}"),
        &format!("trailguard is blind in account {account}"),
        Some(account.to_owned()),
        vec![
            format!(
                "trailguard's member role in account {account} cannot be assumed (deleted, or its trust changed): \
                 grants there cannot be judged and nothing there can be remediated."
            ),
            "Redeploy the member stack in that account, then check its CloudTrail for who removed or changed the role."
                .to_owned(),
            format!("Reported once per account and hour ({hour})."),
        ],
        Some("sts.amazonaws.com".to_owned()),
    );
    finding.severity = Severity::High;
    finding.event_name = "AssumeRole".to_owned();
    finding
}

impl IamReader for Detector {
    async fn policy_document(&self, account: &str, arn: &str, version: Option<&str>) -> Result<String, IamError> {
        self.iam(account).await?.policy_document(arn, version).await
    }

    /// Tags are cached per role for a few minutes: agents' sessions call often, tags change rarely.
    async fn role_tags(&self, account: &str, role: &str) -> Result<Vec<(String, String)>, IamError> {
        let key = (account.to_owned(), role.to_owned());
        let cached = self.tags.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((_, tags)) = cached.filter(|(at, _)| at.elapsed() < TAG_CACHE_TTL) {
            return Ok(tags);
        }
        let tags = self.iam(account).await?.role_tags(role).await?;
        if let Ok(mut m) = self.tags.lock() {
            m.insert(key, (Instant::now(), tags.clone()));
        }
        Ok(tags)
    }

    async fn session(&self, access_key_id: &str, at: i64) -> Result<Option<crate::session::Session>, IamError> {
        self.state.session(access_key_id, at).await
    }

    async fn count(&self, count: &crate::behaviour::Count) -> Result<crate::behaviour::Crossing, IamError> {
        self.state.count(count).await
    }

    async fn region(&self, used: &crate::regions::RegionUse) -> Result<crate::regions::Novelty, IamError> {
        self.state.region(used).await
    }
}
