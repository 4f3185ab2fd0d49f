//! Delivering findings and remediation reports: SNS for people, the findings bus for machines.
//!
//! A delivery that fails is an error, never a silent success: the Lambda then fails the invocation, so the
//! event is retried and finally kept by the dead-letter destination. `PutEvents` reports failed entries in a
//! successful response, so those count as failures too.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::Value;
use thiserror::Error;

use super::error::classify;
use super::mac::MacKey;
use crate::authenticity::{signing_digest, unsigned_detail, with_mac};
use crate::finding::Finding;
use crate::iam::IamError;
use crate::remediation::report::truncate;
use crate::remediation::Report;

pub use crate::authenticity::{FINDING_DETAIL_TYPE, FINDING_SOURCE as EVENT_SOURCE};
/// The detail-type of a remediation report event.
pub const REPORT_DETAIL_TYPE: &str = "Trailguard Remediation";
/// The detail-type of the record of a removal about to be made (delivered before the removal).
pub const INTENT_DETAIL_TYPE: &str = "Trailguard Remediation Intent";
/// EventBridge's limit for one entry is 256 KB; stay below it with room for the envelope.
const MAX_DETAIL_BYTES: usize = 240 * 1024;
/// SNS's limit for a message is 256 KB.
const MAX_MESSAGE_BYTES: usize = 240 * 1024;

/// A delivery failed.
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// SNS refused or could not be reached.
    #[error("alert not published to SNS: {0}")]
    Sns(IamError),
    /// EventBridge refused or could not be reached.
    #[error("event not put on the findings bus: {0}")]
    Bus(IamError),
    /// The finding could not be signed.
    #[error("finding not signed: {0}")]
    Sign(IamError),
    /// EventBridge accepted the request but failed the entry.
    #[error("event not put on the findings bus: entry failed with {code}: {message}")]
    Entry {
        /// EventBridge's error code.
        code: String,
        /// EventBridge's message.
        message: String,
    },
}

impl DeliveryError {
    /// Whether a retry can help.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Sns(e) | DeliveryError::Bus(e) | DeliveryError::Sign(e) => e.retryable(),
            DeliveryError::Entry { .. } => true,
        }
    }
}

/// Where alerts and events go.
#[derive(Clone, Debug)]
pub struct Delivery {
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    topic_arn: String,
    bus_name: String,
    mac: Option<MacKey>,
}

impl Delivery {
    /// Clients and destinations.
    pub fn new(
        sns: aws_sdk_sns::Client,
        events: aws_sdk_eventbridge::Client,
        topic_arn: &str,
        bus_name: &str,
    ) -> Delivery {
        Delivery { sns, events, topic_arn: topic_arn.to_owned(), bus_name: bus_name.to_owned(), mac: None }
    }

    /// Signs every finding it delivers with this key (the detector's delivery).
    pub fn signing_with(mut self, mac: MacKey) -> Delivery {
        self.mac = Some(mac);
        self
    }

    /// Publishes a finding: the SNS alert and the bus event. Both must succeed.
    pub async fn finding(&self, finding: &Finding) -> Result<(), DeliveryError> {
        let subject = format!("[{}] {}", finding.severity.as_str().to_uppercase(), finding.title);
        let agent = if finding.actor.is_agent() { "true" } else { "false" };
        let attributes = [
            ("severity", finding.severity.as_str()),
            ("rule", finding.rule.as_str()),
            ("account", finding.account.as_deref().unwrap_or("unknown")),
            ("actor_type", &finding.actor.kind),
            ("agent", agent),
        ];
        self.publish(&subject, &finding.to_text(), &attributes).await?;
        let mut detail = bus_detail(finding);
        // Signed after trimming, over exactly what the bus carries.
        if let Some(mac) = &self.mac {
            let now = time::OffsetDateTime::now_utc();
            detail = unsigned_detail(detail, &crate::remediation::revocation::rfc3339(now), mac.key_id());
            let tag = mac.sign(&signing_digest(&detail)).await.map_err(DeliveryError::Sign)?;
            detail = with_mac(detail, &tag);
        }
        self.put_event(FINDING_DETAIL_TYPE, &detail).await
    }

    /// Puts the record of a removal about to be made on the bus, before it is made.
    pub async fn intent(
        &self,
        finding_id: &str,
        outcome: &crate::remediation::execute::StepOutcome,
    ) -> Result<(), DeliveryError> {
        let detail = serde_json::json!({"finding_id": finding_id, "about_to": outcome});
        self.put_event(INTENT_DETAIL_TYPE, &trim_to(detail, MAX_DETAIL_BYTES)).await
    }

    /// Publishes a remediation report: the SNS follow-up and the bus event.
    pub async fn report(&self, report: &Report) -> Result<(), DeliveryError> {
        let status =
            serde_json::to_value(report.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let attributes = [
            ("severity", report.severity.as_str()),
            ("rule", report.rule.as_str()),
            ("account", report.account.as_deref().unwrap_or("unknown")),
            ("remediation", status.as_str()),
        ];
        // A finding with nothing to undo (root usage) was alert enough: the follow-up goes to machines only.
        if !report.steps.is_empty() {
            self.publish(&report.subject(), &report.to_text(), &attributes).await?;
        }
        let detail = serde_json::to_value(report).unwrap_or(Value::Null);
        self.put_event(REPORT_DETAIL_TYPE, &trim_to(detail, MAX_DETAIL_BYTES)).await
    }

    async fn publish(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<(), DeliveryError> {
        let mut request = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(sns_subject(subject))
            .message(truncate(body, MAX_MESSAGE_BYTES / 4));
        for (name, value) in attributes {
            let value =
                MessageAttributeValue::builder().data_type("String").string_value(*value).build().map_err(|e| {
                    DeliveryError::Sns(IamError {
                        kind: crate::iam::IamErrorKind::Other,
                        action: "sns:Publish".into(),
                        message: e.to_string(),
                    })
                })?;
            request = request.message_attributes(*name, value);
        }
        request.send().await.map(|_| ()).map_err(|e| DeliveryError::Sns(classify("sns:Publish", &e)))
    }

    async fn put_event(&self, detail_type: &str, detail: &Value) -> Result<(), DeliveryError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| DeliveryError::Bus(classify("events:PutEvents", &e)))?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|e| e.error_code().is_some());
            return Err(DeliveryError::Entry {
                code: failed.and_then(|e| e.error_code()).unwrap_or("unknown").to_owned(),
                message: failed.and_then(|e| e.error_message()).unwrap_or_default().to_owned(),
            });
        }
        Ok(())
    }
}

/// The finding as the bus carries it: under the entry limit, by trimming evidence, never dropping the finding.
pub fn bus_detail(finding: &Finding) -> Value {
    trim_to(serde_json::to_value(finding).unwrap_or(Value::Null), MAX_DETAIL_BYTES)
}

/// Trims the bulky parts of a finding or report until its JSON fits `max` bytes: first the kept document,
/// then the statements, then the removed and written documents of report steps, then long strings.
fn trim_to(mut value: Value, max: usize) -> Value {
    let fits = |v: &Value| v.to_string().len() <= max;
    if fits(&value) {
        return value;
    }
    let mark = Value::String("(trimmed: too large for the event; see the SNS alert or CloudTrail)".into());
    let set = |value: &mut Value, key: &str, to: Value| {
        if let Value::Object(map) = value {
            map.insert(key.to_owned(), to);
        }
    };
    if let Some(evidence) = value.get_mut("evidence") {
        set(evidence, "document", mark.clone());
    }
    if !fits(&value) {
        if let Some(evidence) = value.get_mut("evidence") {
            set(evidence, "statements", Value::Array(vec![mark.clone()]));
        }
    }
    if !fits(&value) {
        if let Some(Value::Array(steps)) = value.get_mut("steps") {
            for step in steps {
                set(step, "removed", mark.clone());
                set(step, "written", mark.clone());
            }
        }
    }
    if !fits(&value) {
        shorten_strings(&mut value, 1024);
    }
    value
}

fn shorten_strings(value: &mut Value, max_chars: usize) {
    match value {
        Value::String(s) if s.chars().count() > max_chars => *s = truncate(s, max_chars),
        Value::Array(items) => items.iter_mut().for_each(|v| shorten_strings(v, max_chars)),
        Value::Object(map) => map.values_mut().for_each(|v| shorten_strings(v, max_chars)),
        _ => {}
    }
}

/// SNS subjects must be ASCII, without line breaks, under 100 characters.
pub fn sns_subject(text: &str) -> String {
    let ascii: String = text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    if ascii.len() < 100 {
        return ascii;
    }
    format!("{}...", ascii.get(..96).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_ascii_and_short() {
        let s = sns_subject(&format!("[HIGH] {}", "é".repeat(200)));
        assert!(s.len() < 100 && s.is_ascii());
    }

    #[test]
    fn oversized_evidence_is_trimmed_not_dropped() {
        let big = "x".repeat(400 * 1024);
        let value =
            serde_json::json!({"id": "f1", "rule": "r", "evidence": {"document": big, "statements": [], "notes": []}});
        let trimmed = trim_to(value, MAX_DETAIL_BYTES);
        assert!(trimmed.to_string().len() <= MAX_DETAIL_BYTES);
        assert_eq!(trimmed["id"], "f1");
    }
}
