//! Canaries: harmless, real, recorded calls that EventBridge Scheduler makes on a schedule through each path
//! CloudTrail events take to the detector, and the heartbeats the detector writes when one arrives.
//!
//! Two kinds of path, each with its own call:
//! - **global**: `iam:TagRole` by the canary role on itself. IAM's events are recorded in us-east-1 only, so
//!   this proves the trail, the account stack's IAM rule (or a member account's IAM forwarder) and the detector.
//! - **regional**: `sqs:TagQueue` by the region's canary role on that forwarder's dead-letter queue. This proves
//!   the region's trail, the forwarder's canary rule, the forwarding to the home bus and the detector.
//!
//! **Invariant:** a canary is recognised exactly, never by a name pattern: the session's issuing role must be
//! the canary role of the record's own account (`arn:<partition>:iam::<account>:role/<name>`, no path; for a
//! regional canary `<name>-<awsRegion>`), the call must be the path's call, and the global call must tag the
//! canary role itself. The templates let only `scheduler.amazonaws.com` (with `aws:SourceAccount` and
//! `aws:SourceArn` naming trailguard's own schedule group) assume those roles, and the session name Scheduler uses is not
//! documented, so it is not checked. A role named like the canary elsewhere (another path, another suffix,
//! another account's) is not a heartbeat: its call is judged like any other, and tagging trailguard's role is
//! tampering.

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;
use crate::event::CloudTrailRecord;

/// The metric namespace heartbeats are written to.
pub const NAMESPACE: &str = "trailguard";
/// The metric name of a heartbeat.
pub const METRIC: &str = "Heartbeat";
/// The forwarder's dead-letter queue, which the regional canary tags (named in infra/forwarder.yaml).
pub const FORWARDER_QUEUE: &str = "trailguard-forward-dlq";
/// The tag the canary calls write (its value: the scheduled time).
pub const HEARTBEAT_TAG: &str = "trailguard:heartbeat";

/// Which kind of path a canary proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// IAM's events, recorded in us-east-1 only.
    Global,
    /// A region's events, through its forwarder.
    Regional,
}

impl Path {
    /// The value of the `Path` dimension.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Global => "global",
            Path::Regional => "regional",
        }
    }
}

/// A path that proved itself alive: the dimensions of the heartbeat metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    /// The account the canary ran in.
    pub account: String,
    /// The region its event was recorded in.
    pub region: String,
    /// The kind of path.
    pub path: Path,
}

/// A canary's call, recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// The path it travelled.
    pub heartbeat: Heartbeat,
    /// Whether the call succeeded. A failed canary call (the role's permission or the queue changed) gives no
    /// heartbeat, so the path's alarm pages; it is not a finding either.
    pub succeeded: bool,
}

/// The canary role's name for a path: `<name>` for the global path, `<name>-<region>` for a region's.
pub fn role_name(config: &Config, path: Path, region: &str) -> String {
    match path {
        Path::Global => config.canary_role_name.clone(),
        Path::Regional => format!("{}-{region}", config.canary_role_name),
    }
}

/// The canary call the record is, if it is exactly one.
pub fn recognise(config: &Config, record: &CloudTrailRecord) -> Option<Canary> {
    if record.event_type.as_deref().is_some_and(|t| t != "AwsApiCall") {
        return None;
    }
    let path = match (record.event_source.as_str(), record.event_name.as_str()) {
        ("iam.amazonaws.com", "TagRole") => Path::Global,
        ("sqs.amazonaws.com", "TagQueue") => Path::Regional,
        _ => return None,
    };
    let identity = record.identity();
    if identity.kind.as_deref() != Some("AssumedRole") {
        return None;
    }
    let account = identity.account_id.as_deref()?;
    if record.recipient_account_id.as_deref().is_some_and(|r| r != account) {
        return None;
    }
    let region = record.aws_region.as_deref()?;
    let issuer = identity.session_context.as_ref()?.session_issuer.as_ref()?.arn.as_deref()?;
    let partition = issuer.strip_prefix("arn:")?.split(':').next()?;
    let name = role_name(config, path, region);
    // IAM role names are unique whatever their case; everything else must be exact.
    let expected_prefix = format!("arn:{partition}:iam::{account}:role/");
    let issued_by_canary = issuer.strip_prefix(&expected_prefix).is_some_and(|rest| rest.eq_ignore_ascii_case(&name));
    if !issued_by_canary {
        return None;
    }
    // The call must touch the path's own resource: the canary role itself, or this account's forwarder queue
    // (`https://sqs.<region>.amazonaws.com/<account>/<queue>`), so the canary role tagging anything else is judged.
    let params = record.params().ok()??;
    let own_resource = match path {
        Path::Global => {
            params.get("roleName").and_then(Value::as_str).is_some_and(|role| role.eq_ignore_ascii_case(&name))
        }
        Path::Regional => params
            .get("queueUrl")
            .and_then(Value::as_str)
            .and_then(|url| url.rsplit_once('/'))
            .is_some_and(|(rest, queue)| queue == FORWARDER_QUEUE && rest.ends_with(&format!("/{account}"))),
    };
    if !own_resource {
        return None;
    }
    Some(Canary {
        heartbeat: Heartbeat { account: account.to_owned(), region: region.to_owned(), path },
        succeeded: record.error_code.is_none(),
    })
}

impl Heartbeat {
    /// The heartbeat as one CloudWatch Embedded Metric Format document (one log line): CloudWatch Logs turns
    /// it into a `Heartbeat` datapoint of 1 with dimensions `Account`, `Region`, `Path`, without an API call.
    /// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
    pub fn emf(&self, timestamp_ms: i64) -> String {
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Account", "Region", "Path"]],
                    "Metrics": [{"Name": METRIC, "Unit": "Count"}],
                }],
            },
            "Account": self.account,
            "Region": self.region,
            "Path": self.path.as_str(),
            METRIC: 1,
        })
        .to_string()
    }
}

/// The EventBridge pattern that brings the regional canary's call to the detector (forwarders forward it).
/// It narrows by the canary roles' name prefix only to keep other `TagQueue` calls away; recognition is exact.
pub fn pattern(config: &Config) -> Value {
    json!({
        "source": [{"prefix": "aws."}],
        "detail-type": [crate::patterns::API_CALL],
        "detail": {
            "eventSource": ["sqs.amazonaws.com"],
            "eventName": ["TagQueue"],
            "userIdentity": {"sessionContext": {"sessionIssuer": {"userName": [{"prefix": format!("{}-", config.canary_role_name)}]}}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::read_records;

    /// A call in account 111122223333 by a session of `issuer`.
    fn record(event_source: &str, event_name: &str, issuer: &str, region: &str, params: Value) -> CloudTrailRecord {
        let account = "111122223333";
        let role = issuer.rsplit('/').next().unwrap_or_default();
        let text = json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLECANARY:{}", "a1b2c3d4e5f60718"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/a1b2c3d4e5f60718"),
                "accountId": account,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "accountId": account, "userName": role}},
            },
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": params,
            "eventType": "AwsApiCall",
            "recipientAccountId": account,
        });
        read_records(text.to_string().as_bytes()).unwrap().remove(0).unwrap()
    }

    #[test]
    fn only_the_exact_canary_role_and_call_is_a_canary() {
        let config = Config::default();
        let own = |r: &CloudTrailRecord| recognise(&config, r).map(|c| (c.heartbeat.path, c.heartbeat.region));
        let global = |issuer: &str, role: &str| {
            record("iam.amazonaws.com", "TagRole", issuer, "us-east-1", json!({"roleName": role, "tags": []}))
        };
        let canary = "arn:aws:iam::111122223333:role/trailguard-canary";
        assert_eq!(own(&global(canary, "trailguard-canary")), Some((Path::Global, "us-east-1".to_owned())));
        assert_eq!(own(&global(canary, "orders-api")), None, "the canary role tagging another role");
        assert_eq!(own(&global("arn:aws:iam::111122223333:role/x/trailguard-canary", "trailguard-canary")), None);
        assert_eq!(own(&global("arn:aws:iam::111122223333:role/trailguard-canary-2", "trailguard-canary")), None);
        assert_eq!(
            own(&global("arn:aws:iam::444455556666:role/trailguard-canary", "trailguard-canary")),
            None,
            "another account's canary role"
        );
        let regional = |issuer: &str, region: &str| {
            let url = format!("https://sqs.{region}.amazonaws.com/111122223333/trailguard-forward-dlq");
            record("sqs.amazonaws.com", "TagQueue", issuer, region, json!({"queueUrl": url, "tags": {}}))
        };
        let eu = "arn:aws:iam::111122223333:role/trailguard-canary-eu-west-1";
        assert_eq!(own(&regional(eu, "eu-west-1")), Some((Path::Regional, "eu-west-1".to_owned())));
        let other_queue =
            |url: &str| record("sqs.amazonaws.com", "TagQueue", eu, "eu-west-1", json!({"queueUrl": url, "tags": {}}));
        assert_eq!(own(&other_queue("https://sqs.eu-west-1.amazonaws.com/111122223333/orders")), None, "another queue");
        assert_eq!(
            own(&other_queue("https://sqs.eu-west-1.amazonaws.com/444455556666/trailguard-forward-dlq")),
            None,
            "another account's forwarder queue"
        );
        assert_eq!(own(&regional(eu, "eu-central-1")), None, "another region's canary role");
        assert_eq!(own(&regional(canary, "eu-west-1")), None, "the global role on the regional path");
    }

    #[test]
    fn the_heartbeat_is_an_emf_document_with_the_path_as_dimensions() {
        let beat = Heartbeat { account: "111122223333".into(), region: "eu-west-1".into(), path: Path::Regional };
        let doc: Value = serde_json::from_str(&beat.emf(1_764_000_000_000)).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "trailguard");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Account", "Region", "Path"]]));
        assert_eq!(
            (doc["Account"].as_str(), doc["Region"].as_str(), doc["Path"].as_str()),
            (Some("111122223333"), Some("eu-west-1"), Some("regional"))
        );
        assert_eq!(doc["Heartbeat"], 1);
    }
}
