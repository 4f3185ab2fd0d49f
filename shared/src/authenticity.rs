//! What trailguard believes of what reaches its functions, and why.
//!
//! Anyone with `events:PutEvents` on a bus can send any event whose `source` does not begin with `aws.`, with any
//! `detail-type` and `detail`: a made-up CloudTrail record is one `PutEvents` call away. AWS refuses `aws.*`
//! sources in `PutEvents`, so on a bus an `aws.*` source is AWS's word, and the envelope's `account` is the
//! account whose CloudTrail produced the record (forwarded events keep their original `source`, `account` and
//! `region`).
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html>
//!
//! - The detector reads only EventBridge events ([`read_delivered`]): an `aws.*` source whose `account` is the
//!   record's `recipientAccountId`. Anything else that claims to be CloudTrail is a forgery, reported as a
//!   `guardrail-tampering` finding (never remediated). Bare records are for the command line only.
//! - The remediator acts only on findings the detector signed ([`read_finding_event`]): an HMAC made with a KMS
//!   key only the detector may use to generate and only the remediator to verify, over a SHA-256 digest of the
//!   finding's canonical JSON ([`signing_digest`]), since `GenerateMac` takes at most 4,096 bytes and EventBridge
//!   re-serialises `detail`. Archive replays (`replay-name` in the envelope) are refused.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::event::{parse_record, Actor, CloudTrailRecord, RecordError};
use crate::finding::{hex, Evidence, Finding, Severity, Target, SCHEMA_VERSION};

/// The `source` of trailguard's own events on the findings bus.
pub const FINDING_SOURCE: &str = "trailguard";
/// The detail-type of a finding event.
pub const FINDING_DETAIL_TYPE: &str = "Trailguard Finding";
/// The field of a finding event's detail that carries its authentication.
pub const AUTHENTICATION: &str = "authentication";

/// What an event delivered to the detector turned out to be.
#[derive(Debug)]
pub enum Delivered {
    /// A CloudTrail record AWS delivered (its account is the envelope's).
    Record(Box<CloudTrailRecord>),
    /// Something that claims to be CloudTrail but cannot be.
    Forged(Forgery),
}

/// An event that claims to be CloudTrail but did not come from AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgery {
    /// The envelope's account: the account that sent it.
    pub account: Option<String>,
    /// The envelope's source.
    pub source: Option<String>,
    /// Why it cannot be CloudTrail.
    pub reason: String,
    /// The event name the forged record claims, when it names one.
    pub claimed_event: Option<String>,
}

/// Reads an event delivered to the detector. `Err`: not an EventBridge event at all (unreadable, or a bare
/// record, which only the command line reads).
pub fn read_delivered(json: &str) -> Result<Delivered, RecordError> {
    // The envelope's fields are read as raw JSON: the record under `detail` is parsed once, straight into its
    // typed model, not first into a generic tree (this runs for every event the detector receives).
    let envelope: HashMap<String, &RawValue> =
        serde_json::from_str(json).map_err(|e| RecordError::new(None, e.to_string()))?;
    let text = |key: &str| {
        envelope.get(key).and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()).and_then(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
    };
    let (Some(detail), Some(_)) = (envelope.get("detail"), envelope.get("detail-type")) else {
        return Err(RecordError::new(
            None,
            "not an EventBridge event (no `detail` and `detail-type`): the detector reads only events EventBridge \
             delivers; bare records are for the command line"
                .to_owned(),
        ));
    };
    let (source, account) = (text("source"), text("account"));
    let forged = |reason: String| {
        // Only a forgery needs the name its record claims; a genuine event is not read twice for it.
        let claimed_event = serde_json::from_str::<Value>(detail.get())
            .ok()
            .and_then(|d| d.get("eventName").and_then(Value::as_str).map(str::to_owned));
        Ok(Delivered::Forged(Forgery { account: account.clone(), source: source.clone(), reason, claimed_event }))
    };
    match source.as_deref() {
        Some(s) if s.starts_with("aws.") => {}
        Some(s) => {
            return forged(format!("source `{s}` is not an AWS service (anyone with events:PutEvents can send it)"))
        }
        None => return forged("the event has no source".to_owned()),
    }
    let Some(account) = account.clone() else { return forged("the event names no account".to_owned()) };
    let mut record = parse_record(detail.get()).map_err(|e| e.in_detail(None))?;
    match record.recipient_account_id.as_deref() {
        Some(recipient) if recipient != account => {
            return forged(format!(
                "the envelope's account {account} is not the record's recipientAccountId {recipient}"
            ));
        }
        Some(_) => {}
        // The envelope's account is AWS's word for whose CloudTrail this is; the record's own claim is not needed.
        None => record.recipient_account_id = Some(account),
    }
    Ok(Delivered::Record(Box::new(record)))
}

impl Forgery {
    /// The `guardrail-tampering` finding for this forgery, one per sending account and `hour` (the finding id is
    /// stable for that pair, so repeats are duplicates).
    pub fn finding(&self, hour: &str) -> Finding {
        let account = self.account.clone().unwrap_or_else(|| "unknown".to_owned());
        let title = format!("Forged CloudTrail event from account {account}");
        let mut notes = vec![
            format!("{}.", self.reason),
            "Someone put an event on an EventBridge bus that imitates CloudTrail. It was not judged; nothing was \
             changed. Find who holds events:PutEvents on the bus in that account (CloudTrail: PutEvents)."
                .to_owned(),
        ];
        if let Some(event) = &self.claimed_event {
            notes.push(format!("The forged record claims to be `{event}`."));
        }
        notes.push(format!("Reported once per sending account and hour ({hour})."));
        guardrail_finding(&format!("forged|{account}|{hour}"), &title, Some(account), notes, self.source.clone())
    }
}

/// A finding event the remediator will not act on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a finding event from trailguard's bus (a bare finding, another source or detail-type).
    NotAFindingEvent(String),
    /// Replayed from an EventBridge archive: it describes the past and must not act again.
    Replayed(String),
    /// No authentication, or one that does not verify.
    Unauthenticated(String),
    /// The detail is not a finding trailguard can read.
    Unreadable(String),
}

impl Refusal {
    /// A short kind, for de-duplicating pages.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NotAFindingEvent(_) => "not-a-finding-event",
            Refusal::Replayed(_) => "replayed",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::Unreadable(_) => "unreadable",
        }
    }

    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Refusal::NotAFindingEvent(r)
            | Refusal::Replayed(r)
            | Refusal::Unauthenticated(r)
            | Refusal::Unreadable(r) => r,
        }
    }

    /// The `guardrail-tampering` finding that reports the refusal (no remediation; one per kind and `hour`).
    pub fn finding(&self, account: Option<String>, hour: &str) -> Finding {
        let title = format!("trailguard's remediator refused a finding event: {}", self.kind());
        let notes = vec![
            format!("{}.", self.reason()),
            "Nothing was changed. Only findings the detector signed reach the remediator on a working deployment: \
             someone may be invoking the remediator directly or sending events to the findings bus."
                .to_owned(),
            format!("Reported once per kind and hour ({hour})."),
        ];
        guardrail_finding(&format!("refused|{}|{hour}", self.kind()), &title, account, notes, None)
    }
}

/// What the remediator reads from a finding event: the finding, its detail as delivered, and the MAC it carries.
#[derive(Debug)]
pub struct SignedFinding {
    /// The finding.
    pub finding: Finding,
    /// The detail as delivered (to digest).
    pub detail: Value,
    /// The MAC the detector wrote.
    pub mac: Vec<u8>,
}

/// Reads a finding event as the findings bus delivers it; the MAC is checked by the caller (it takes KMS).
pub fn read_finding_event(json: &str) -> Result<SignedFinding, Refusal> {
    let envelope: Value = serde_json::from_str(json).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    let text = |key: &str| envelope.get(key).and_then(Value::as_str);
    let Some(detail) = envelope.get("detail").filter(|_| text("detail-type").is_some()) else {
        return Err(Refusal::NotAFindingEvent("a bare finding, not an event from the findings bus".to_owned()));
    };
    if text("source") != Some(FINDING_SOURCE) || text("detail-type") != Some(FINDING_DETAIL_TYPE) {
        return Err(Refusal::NotAFindingEvent(format!(
            "source `{}` and detail-type `{}` are not trailguard's finding events",
            text("source").unwrap_or("none"),
            text("detail-type").unwrap_or("none")
        )));
    }
    if let Some(replay) = text("replay-name") {
        return Err(Refusal::Replayed(format!("replayed from an archive (replay `{replay}`)")));
    }
    let mac = detail
        .pointer(&format!("/{AUTHENTICATION}/mac"))
        .and_then(Value::as_str)
        .and_then(from_hex)
        .ok_or_else(|| Refusal::Unauthenticated("the finding carries no MAC".to_owned()))?;
    let finding: Finding = serde_json::from_value(detail.clone()).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if finding.schema_version != SCHEMA_VERSION {
        return Err(Refusal::Unreadable(format!("schema version {} is not {SCHEMA_VERSION}", finding.schema_version)));
    }
    Ok(SignedFinding { finding, detail: detail.clone(), mac })
}

/// The finding's detail with its authentication's `signed_at` (the MAC is added by the signer).
pub fn unsigned_detail(mut detail: Value, signed_at: &str, key_id: &str) -> Value {
    if let Value::Object(map) = &mut detail {
        map.insert(AUTHENTICATION.to_owned(), json!({"signed_at": signed_at, "key": key_id}));
    }
    detail
}

/// Adds the MAC to a detail made by [`unsigned_detail`].
pub fn with_mac(mut detail: Value, mac: &[u8]) -> Value {
    if let Some(Value::Object(auth)) = detail.get_mut(AUTHENTICATION) {
        auth.insert("mac".to_owned(), Value::String(hex(mac)));
    }
    detail
}

/// What is signed: SHA-256 of the detail's canonical JSON (keys sorted, no white space), without the MAC.
/// EventBridge may re-serialise `detail`; the canonical form is the same on both sides.
pub fn signing_digest(detail: &Value) -> [u8; 32] {
    let mut detail = detail.clone();
    if let Some(Value::Object(auth)) = detail.get_mut(AUTHENTICATION) {
        auth.remove("mac");
    }
    Sha256::digest(detail.to_string().as_bytes()).into()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.is_empty() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A critical `guardrail-tampering` finding about trailguard's own inputs, with nothing to undo.
pub fn guardrail_finding(
    key: &str,
    title: &str,
    account: Option<String>,
    notes: Vec<String>,
    source: Option<String>,
) -> Finding {
    let id = hex(Sha256::digest(key.as_bytes()).get(..16).unwrap_or_default());
    Finding {
        schema_version: SCHEMA_VERSION,
        id,
        rule: "guardrail-tampering".to_owned(),
        severity: Severity::Critical,
        title: title.to_owned(),
        description: "Someone is feeding trailguard events it did not produce, to steer it or to hide.".to_owned(),
        attempt: false,
        account,
        region: None,
        time: None,
        event_id: None,
        event_source: source.unwrap_or_else(|| "events.amazonaws.com".to_owned()),
        event_name: "PutEvents".to_owned(),
        error_code: None,
        actor: Actor { kind: "Unknown".into(), ..Actor::default() },
        target: Target { kind: "trailguard".to_owned(), ..Target::default() },
        evidence: Evidence { notes, ..Evidence::default() },
        remediation: Vec::new(),
        remediable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, account: &str, recipient: Option<&str>) -> String {
        let mut detail = json!({"eventSource": "iam.amazonaws.com", "eventName": "AttachRolePolicy",
            "userIdentity": {"type": "AssumedRole"}});
        if let Some(r) = recipient {
            detail["recipientAccountId"] = json!(r);
        }
        json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": source, "account": account,
            "region": "us-east-1", "detail": detail})
        .to_string()
    }

    #[test]
    fn only_aws_sources_for_their_own_account_are_records() {
        assert!(matches!(
            read_delivered(&event("aws.iam", "123456789012", Some("123456789012"))),
            Ok(Delivered::Record(_))
        ));
        let Ok(Delivered::Record(stamped)) = read_delivered(&event("aws.iam", "123456789012", None)) else { panic!() };
        assert_eq!(stamped.recipient_account_id.as_deref(), Some("123456789012"));
        for forged in [
            event("my.iam", "111122223333", Some("123456789012")),
            event("aws.iam", "111122223333", Some("123456789012")),
        ] {
            let Ok(Delivered::Forged(f)) = read_delivered(&forged) else { panic!("{forged}") };
            assert_eq!(f.account.as_deref(), Some("111122223333"));
            assert_eq!(f.finding("2026-11-27T10").rule, "guardrail-tampering");
            assert!(f.finding("2026-11-27T10").remediation.is_empty());
        }
        let bare = r#"{"eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy"}"#;
        assert!(read_delivered(bare).is_err());
    }

    #[test]
    fn the_digest_ignores_key_order_and_the_mac() {
        let a = unsigned_detail(json!({"id": "f", "rule": "r", "nested": {"b": 1, "a": 2}}), "t", "k");
        let b: Value = serde_json::from_str(
            r#"{"nested":{"a":2,"b":1},"rule":"r","id":"f","authentication":{"key":"k","signed_at":"t"}}"#,
        )
        .unwrap();
        assert_eq!(signing_digest(&a), signing_digest(&b));
        let signed = with_mac(a.clone(), &[1, 2, 255]);
        assert_eq!(signing_digest(&signed), signing_digest(&a));
        assert_eq!(signed["authentication"]["mac"], "0102ff");
        assert_eq!(from_hex("0102ff"), Some(vec![1, 2, 255]));
        let every_byte: Vec<u8> = (0..=255).collect();
        let expected: String = every_byte.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every_byte), expected);
        assert_eq!(from_hex(&expected), Some(every_byte));
        let mut edited = signed.clone();
        edited["rule"] = json!("other");
        assert_ne!(signing_digest(&edited), signing_digest(&a));
    }
}
