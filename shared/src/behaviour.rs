//! Misbehaviour over time: counts of one session's calls of a kind within a window, and the thresholds that end
//! the session when they are crossed.
//!
//! Each call alone is harmless; together they are the signal. Three kinds are counted, per session (the access key
//! that signed the call; a long-term key counts as one session) and fixed window:
//! - `denied`: calls refused for authorization (probing what the credentials can do). Each counts once here,
//!   rather than paging one by one.
//! - `deletions`: successful `Delete*` calls (a run of deletions). Deletions of S3 objects are data events,
//!   present only where a trail logs S3 data events; deletions AWS makes for a service (CloudFormation deleting a
//!   stack: `invokedBy`) are not counted.
//! - `services`: the distinct `eventSource`s an AGENT session reads from (`readOnly: true`; where the field is
//!   missing, `List*`, `Describe*`, `Get*` and `BatchGet*` calls): enumeration across services. Counted only for
//!   agents: a person browsing the console reads from many services in minutes (every console page is a burst of
//!   `Describe*` calls), and that is not enumeration. Each service counts once, with its first call as evidence.
//!   A refused read call counts as `denied` instead (one count per event).
//!
//! A counter is updated atomically (a DynamoDB `UpdateItem` in the detector, a locked map offline) and stops at
//! `threshold + 1`: the one update that reaches it returns the evidence, so a breach gives exactly one finding,
//! and a count just at the threshold gives none. Windows are fixed (`floor(time / window)`), so a burst that
//! straddles a window boundary is counted in two halves: the thresholds are set with that in mind.
//!
//! Only calls that reach the engine are counted: the calls its rules subscribe to (IAM writes, every `Delete*`,
//! the sensitive calls), and agents' read-only calls (keyed by the identity: [`crate::rules::Trigger::AgentReads`]).
//! A person's refused call outside those does not arrive (see the README's Agents section).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Thresholds per window. Defaults: more than 10 refused calls in 5 minutes (a person who lacks a permission
/// retries it a few times; an agent exploring its credentials makes dozens), more than 25 deletions in 10 minutes
/// (tearing down one stack by hand deletes a handful of resources; CloudFormation's own deletions are not
/// counted), more than 8 services read from in 10 minutes by an agent (a coding or operations agent working on
/// one application touches a handful: its compute, storage, logs, STS, perhaps a queue and a secret; reading
/// from nine or more distinct services within minutes is a survey of the account, the first step of an attacker
/// holding the session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviourSettings {
    /// Refused calls allowed per window.
    pub denied: u32,
    /// The window for refused calls, in minutes.
    pub denied_minutes: u32,
    /// Deletions allowed per window.
    pub deletions: u32,
    /// The window for deletions, in minutes.
    pub deletions_minutes: u32,
    /// Distinct services an agent may read from per window.
    pub services: u32,
    /// The window for services, in minutes.
    pub services_minutes: u32,
    /// `agent-new-region`: for how many days after an agent identity is first seen its regions are learnt
    /// silently (see [`crate::regions`]).
    pub region_learning_days: u32,
}

impl Default for BehaviourSettings {
    fn default() -> Self {
        BehaviourSettings {
            denied: 10,
            denied_minutes: 5,
            deletions: 25,
            deletions_minutes: 10,
            services: 8,
            services_minutes: 10,
            region_learning_days: 7,
        }
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Refused calls.
    Denied,
    /// Successful deletions.
    Deletions,
    /// Distinct services an agent read from.
    Services,
}

impl Kind {
    /// Its name in keys and findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Denied => "denied",
            Kind::Deletions => "deletions",
            Kind::Services => "services",
        }
    }
}

/// One event named in a behaviour finding's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidenceEvent {
    /// `eventID`.
    pub id: String,
    /// `eventSource:eventName` as an IAM action would be written, e.g. `iam:CreateUser`.
    pub call: String,
    /// `eventTime`.
    pub time: String,
}

/// One count to take: the key names the session, the kind and the window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Count {
    /// `<session>#<kind>#<window start>`.
    pub key: String,
    /// The session counted under: its access key, or its principal id or ARN when it has none.
    pub session: String,
    /// When the window starts, epoch seconds.
    pub window_start: i64,
    /// What is counted.
    pub kind: Kind,
    /// Where the count stops: `threshold + 1`.
    pub limit: u32,
    /// When the window ends, epoch seconds (the counter's expiry).
    pub window_end: i64,
    /// This event.
    pub event: EvidenceEvent,
    /// For a count of distinct things (`services`): what this event adds (its `eventSource`). Counted once per
    /// value, its first event as evidence; `None` counts each event.
    pub distinct: Option<String>,
}

/// The answer to a [`Count`]: `Some(evidence)` only for the one event whose count crossed the threshold.
pub type Crossing = Option<Vec<EvidenceEvent>>;

/// What this event counts for, if anything: a refused call, a successful deletion not made by a service on the
/// actor's behalf, or (for an agent, `is_agent`) a read-only call. `None` also when the event has no time or no
/// session to count under.
pub fn observe(
    record: &crate::event::CloudTrailRecord,
    actor: &crate::event::Actor,
    is_agent: bool,
    settings: &BehaviourSettings,
) -> Option<Count> {
    let (kind, threshold, minutes) = if record.error_code.is_some() && record.refused() {
        (Kind::Denied, settings.denied, settings.denied_minutes)
    } else if !record.failed() && record.event_name.starts_with("Delete") && actor.invoked_by.is_none() {
        (Kind::Deletions, settings.deletions, settings.deletions_minutes)
    } else if is_agent && reads(record) && !record.event_source.is_empty() {
        (Kind::Services, settings.services, settings.services_minutes)
    } else {
        return None;
    };
    let session = actor.access_key_id.as_deref().or(actor.principal_id.as_deref()).or(actor.arn.as_deref())?;
    let time = record.event_time.as_deref()?;
    let at = crate::session::parse_time(time)?;
    let window = i64::from(minutes.max(1)) * 60;
    let start = at - at.rem_euclid(window);
    Some(Count {
        key: [session, kind.as_str(), itoa::Buffer::new().format(start)].join("#"),
        session: session.to_owned(),
        window_start: start,
        kind,
        limit: threshold.saturating_add(1),
        window_end: start + window,
        event: EvidenceEvent {
            id: record.event_id.clone().unwrap_or_default(),
            call: record.action(),
            time: time.to_owned(),
        },
        distinct: (kind == Kind::Services).then(|| record.event_source.clone()),
    })
}

/// Whether a call only reads: CloudTrail's `readOnly`, or where the record lacks it, a name that reads by
/// convention (`List*`, `Describe*`, `Get*`, `BatchGet*`).
pub fn reads(record: &crate::event::CloudTrailRecord) -> bool {
    match record.read_only {
        Some(read_only) => read_only,
        None => ["List", "Describe", "Get", "BatchGet"].iter().any(|p| record.event_name.starts_with(p)),
    }
}

/// Counters kept in memory (the offline scanner): the same semantics as the detector's table.
#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<HashMap<String, Tally>>,
    /// The agents' regions (`agent-new-region`), kept beside the counts as the detector keeps them in one table.
    pub regions: crate::regions::Regions,
}

/// One counter: the events counted, and for a distinct count the values already seen.
#[derive(Debug, Default)]
struct Tally {
    evidence: Vec<EvidenceEvent>,
    distinct: Vec<String>,
}

impl Counters {
    /// Counts one event; the evidence when this event is the one that crosses the threshold.
    pub fn count(&self, count: &Count) -> Crossing {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // The key is copied only for a new counter: most events count toward one that exists.
        if !map.contains_key(&count.key) {
            map.insert(count.key.clone(), Tally::default());
        }
        let tally = map.get_mut(&count.key)?;
        let repeated = match &count.distinct {
            Some(value) => tally.distinct.contains(value),
            None => tally.evidence.iter().any(|e| e.id == count.event.id && !e.id.is_empty()),
        };
        if tally.evidence.len() >= count.limit as usize || repeated {
            return None;
        }
        tally.evidence.push(count.event.clone());
        if let Some(value) = &count.distinct {
            tally.distinct.push(value.clone());
        }
        (tally.evidence.len() == count.limit as usize).then(|| tally.evidence.clone())
    }
}
