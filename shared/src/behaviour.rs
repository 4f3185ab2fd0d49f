//! Misbehaviour over time: counts of one session's calls of a kind within a window, and the thresholds that end
//! the session when they are crossed.
//!
//! Each call alone is harmless; together they are the signal. Two kinds are counted, per session (the access key
//! that signed the call; a long-term key counts as one session) and fixed window:
//! - `denied`: calls refused for authorization (probing what the credentials can do). Each counts once here,
//!   rather than paging one by one.
//! - `deletions`: successful `Delete*` calls (a run of deletions). Deletions of S3 objects are data events,
//!   present only where a trail logs S3 data events; deletions AWS makes for a service (CloudFormation deleting a
//!   stack: `invokedBy`) are not counted.
//!
//! A counter is updated atomically (a DynamoDB `UpdateItem` in the detector, a locked map offline) and stops at
//! `threshold + 1`: the one update that reaches it returns the evidence, so a breach gives exactly one finding,
//! and a count just at the threshold gives none. Windows are fixed (`floor(time / window)`), so a burst that
//! straddles a window boundary is counted in two halves: the thresholds are set with that in mind.
//!
//! Only calls that reach the engine are counted: the calls its rules subscribe to (IAM writes, every `Delete*`,
//! the sensitive calls). A refused call outside those does not arrive (see the README's Agents section).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Thresholds per window. Defaults: more than 10 refused calls in 5 minutes (a person who lacks a permission
/// retries it a few times; an agent exploring its credentials makes dozens), more than 25 deletions in 10 minutes
/// (tearing down one stack by hand deletes a handful of resources; CloudFormation's own deletions are not
/// counted).
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
}

impl Default for BehaviourSettings {
    fn default() -> Self {
        BehaviourSettings { denied: 10, denied_minutes: 5, deletions: 25, deletions_minutes: 10 }
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
}

impl Kind {
    /// Its name in keys and findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Denied => "denied",
            Kind::Deletions => "deletions",
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
}

/// The answer to a [`Count`]: `Some(evidence)` only for the one event whose count crossed the threshold.
pub type Crossing = Option<Vec<EvidenceEvent>>;

/// What this event counts for, if anything: a refused call, or a successful deletion not made by a service on
/// the actor's behalf. `None` also when the event has no time or no session to count under.
pub fn observe(
    record: &crate::event::CloudTrailRecord,
    actor: &crate::event::Actor,
    settings: &BehaviourSettings,
) -> Option<Count> {
    let (kind, threshold, minutes) = if record.error_code.is_some() && record.refused() {
        (Kind::Denied, settings.denied, settings.denied_minutes)
    } else if !record.failed() && record.event_name.starts_with("Delete") && actor.invoked_by.is_none() {
        (Kind::Deletions, settings.deletions, settings.deletions_minutes)
    } else {
        return None;
    };
    let session = actor.access_key_id.as_deref().or(actor.principal_id.as_deref()).or(actor.arn.as_deref())?;
    let time = record.event_time.as_deref()?;
    let at = crate::session::parse_time(time)?;
    let window = i64::from(minutes.max(1)) * 60;
    let start = at - at.rem_euclid(window);
    Some(Count {
        key: format!("{session}#{}#{start}", kind.as_str()),
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
    })
}

/// Counters kept in memory (the offline scanner): the same semantics as the detector's table.
#[derive(Debug, Default)]
pub struct Counters(Mutex<HashMap<String, Vec<EvidenceEvent>>>);

impl Counters {
    /// Counts one event; the evidence when this event is the one that crosses the threshold.
    pub fn count(&self, count: &Count) -> Crossing {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let seen = map.entry(count.key.clone()).or_default();
        if seen.len() >= count.limit as usize || seen.iter().any(|e| e.id == count.event.id && !e.id.is_empty()) {
            return None;
        }
        seen.push(count.event.clone());
        (seen.len() == count.limit as usize).then(|| seen.clone())
    }
}
