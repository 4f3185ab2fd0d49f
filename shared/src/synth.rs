//! A deterministic synthetic CloudTrail corpus: realistic account traffic, mostly harmless, with a small planted
//! share of every rule's positives, for benchmarks and for the test that `scan` finds exactly what was planted.
//!
//! Pure: the same seed gives the same records. The harmless traffic is what accounts mostly produce (S3 and KMS
//! data-plane calls by application roles, reads, AWS service activity, sign-ins by people); the planted events
//! are one template per rule, each with a unique event id that starts with `planted-`.

use serde_json::{json, Value};

/// The share of planted events, one in this many.
pub const PLANTED_EVERY: u64 = 997;

/// A small, fast, deterministic generator (xorshift64*): no dependency, same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One generated record, and the rule it was planted for (if it was).
pub struct Synthetic {
    /// The CloudTrail record.
    pub record: Value,
    /// The rule that must flag it, for a planted record.
    pub planted_for: Option<&'static str>,
}

fn session(account: &str, role: &str, session: &str) -> Value {
    json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLE{}:{session}", role.len()),
           "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"), "accountId": account,
           "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
           "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": format!("AROAEXAMPLE{}", role.len()),
               "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role},
               "attributes": {"creationDate": "2026-11-01T00:00:00Z", "mfaAuthenticated": "false"}}})
}

/// The shape of the harmless traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mix {
    /// Application data-plane calls, reads, AWS service activity.
    #[default]
    Default,
    /// The same, with one record in six a role-to-role `AssumeRole` (CI, role chaining, agents) carrying the
    /// issued credentials, as CloudTrail writes it: the corpus issue 14's scan goals are measured on.
    AssumeRole,
}

/// The order CloudTrail writes a record's fields in, in its log files and in EventBridge's `detail`
/// (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html>);
/// `serde_json` would sort them, putting `userIdentity` near the end where no real trail has it.
const RECORD_ORDER: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
    "tlsDetails",
];

/// The order of `userIdentity`'s fields, as CloudTrail writes them.
const IDENTITY_ORDER: &[&str] =
    &["type", "principalId", "arn", "accountId", "accessKeyId", "userName", "sessionContext", "invokedBy"];

/// A record as CloudTrail writes it: its fields and its actor's in CloudTrail's order (any other field after
/// them), on one line.
pub fn cloudtrail_json(record: &Value) -> String {
    ordered(record, RECORD_ORDER, |key, value| match key {
        "userIdentity" => ordered(value, IDENTITY_ORDER, |_, v| v.to_string()),
        _ => value.to_string(),
    })
}

/// An object's fields with the `first` ones in that order, each value written by `write`; not an object: as is.
fn ordered(value: &Value, first: &[&str], write: impl Fn(&str, &Value) -> String) -> String {
    let Some(object) = value.as_object() else { return value.to_string() };
    let known = first.iter().filter_map(|key| object.get_key_value(*key));
    let rest = object.iter().filter(|(key, _)| !first.contains(&key.as_str()));
    let fields: Vec<String> =
        known.chain(rest).map(|(key, v)| format!("{}:{}", Value::from(key.as_str()), write(key, v))).collect();
    format!("{{{}}}", fields.join(","))
}

/// Generates `count` records for `account` in `region` on `day` (`2026-11-01`), from `seed`.
pub fn generate(seed: u64, count: u64, account: &str, region: &str, day: &str) -> impl Iterator<Item = Synthetic> {
    generate_mix(seed, count, account, region, day, Mix::Default)
}

/// [`generate`] with a choice of [`Mix`].
pub fn generate_mix(
    seed: u64,
    count: u64,
    account: &str,
    region: &str,
    day: &str,
    mix: Mix,
) -> impl Iterator<Item = Synthetic> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let account = account.to_owned();
    let region = region.to_owned();
    let day = day.to_owned();
    (0..count).map(move |i| {
        let second = i * 86_400 / count.max(1);
        let time = format!("{day}T{:02}:{:02}:{:02}Z", second / 3600, (second / 60) % 60, second % 60);
        let planted = i % PLANTED_EVERY == PLANTED_EVERY / 2;
        let id = if planted { format!("planted-{seed}-{i}") } else { format!("{seed:08x}-{i:012x}") };
        let chained = !planted && mix == Mix::AssumeRole && i % 6 == 3;
        let (identity, source, name, params, region_of, planted_for) = if planted {
            planted_event(&account, rng.below(8))
        } else if chained {
            role_to_role(&account, i)
        } else {
            harmless_event(&account, &mut rng)
        };
        let region = if region_of == "global" { "us-east-1".to_owned() } else { region.clone() };
        let read_only = name == "AssumeRole"
            || name.starts_with("Get") || name.starts_with("List") || name.starts_with("Describe") || name == "Decrypt";
        let event_type = if identity.get("type").and_then(Value::as_str) == Some("AWSService") { "AwsServiceEvent" } else { "AwsApiCall" };
        let response = if chained { issued(&account, i, &time) } else { Value::Null };
        let record = json!({
            "eventVersion": "1.09", "userIdentity": identity, "eventTime": time, "eventSource": source,
            "eventName": name, "awsRegion": region, "sourceIPAddress": "198.51.100.23", "userAgent": "aws-sdk-java/2.25.0",
            "requestParameters": params, "responseElements": response, "requestID": format!("r-{id}"), "eventID": id,
            "readOnly": read_only, "eventType": event_type, "managementEvent": !matches!(name, "GetObject" | "PutObject"),
            "recipientAccountId": account, "eventCategory": "Management"
        });
        Synthetic { record, planted_for }
    })
}

/// A CI runner's session assuming the deploy role: role to role.
fn role_to_role(account: &str, i: u64) -> Parts {
    (
        session(account, "ci-runner", &format!("build-{}", i / 6)),
        "sts.amazonaws.com",
        "AssumeRole",
        json!({"roleArn": format!("arn:aws:iam::{account}:role/deploy"), "roleSessionName": format!("deploy-{i}"),
               "durationSeconds": 3600}),
        "regional",
        None,
    )
}

/// The credentials an `AssumeRole` issued at `time`, as CloudTrail records them (`expiration` in STS's own form,
/// an hour later).
fn issued(account: &str, i: u64, time: &str) -> Value {
    let format = time::format_description::well_known::Rfc3339;
    let expires = time::OffsetDateTime::parse(time, &format).map(|t| t + time::Duration::hours(1)).ok();
    let expiration = expires.map(|t| {
        let (hour, half) = match t.hour() {
            0 => (12, "AM"),
            h @ 1..=11 => (h, "AM"),
            12 => (12, "PM"),
            h => (h - 12, "PM"),
        };
        let month = format!("{:?}", t.month());
        let month = month.get(..3).unwrap_or_default();
        format!("{month} {}, {}, {hour}:{:02}:{:02} {half}", t.day(), t.year(), t.minute(), t.second())
    });
    json!({
        "credentials": {"accessKeyId": format!("ASIA{i:016X}"), "sessionToken": format!("IQoJb3JpZ2luX2VjE{i:x}"),
                        "expiration": expiration},
        "assumedRoleUser": {"assumedRoleId": format!("AROAEXAMPLEDEPLOY:deploy-{i}"),
                            "arn": format!("arn:aws:sts::{account}:assumed-role/deploy/deploy-{i}")}
    })
}

type Parts = (Value, &'static str, &'static str, Value, &'static str, Option<&'static str>);

fn harmless_event(account: &str, rng: &mut Rng) -> Parts {
    let app = session(account, "orders-api", "i-0a1b2c3d");
    let key = rng.below(100_000);
    match rng.below(10) {
        0..=3 => (
            app,
            "s3.amazonaws.com",
            "GetObject",
            json!({"bucketName": "orders", "key": format!("o/{key}.json")}),
            "regional",
            None,
        ),
        4 => (
            app,
            "s3.amazonaws.com",
            "PutObject",
            json!({"bucketName": "orders", "key": format!("o/{key}.json")}),
            "regional",
            None,
        ),
        5..=6 => {
            (app, "kms.amazonaws.com", "Decrypt", json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}), "regional", None)
        }
        7 => (
            session(account, "ops", "alice@example.com"),
            "ec2.amazonaws.com",
            "DescribeInstances",
            json!({"maxResults": 100}),
            "regional",
            None,
        ),
        8 => (
            json!({"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
            "sts.amazonaws.com",
            "AssumeRole",
            json!({"roleArn": format!("arn:aws:iam::{account}:role/orders-api"), "roleSessionName": "orders"}),
            "regional",
            None,
        ),
        _ => (app, "dynamodb.amazonaws.com", "DescribeTable", json!({"tableName": "orders"}), "regional", None),
    }
}

fn planted_event(account: &str, which: u64) -> Parts {
    let agent = session(account, "dev-agent", "agent-run-7");
    let admin = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        .to_string();
    let pass = json!({"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}).to_string();
    let s3 = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string();
    let open =
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}).to_string();
    match which {
        0 => (
            json!({"type": "Root", "principalId": account, "arn": format!("arn:aws:iam::{account}:root"), "accountId": account}),
            "s3.amazonaws.com",
            "ListBuckets",
            json!({}),
            "regional",
            Some("root-usage"),
        ),
        1 => (
            agent,
            "iam.amazonaws.com",
            "PutRolePolicy",
            json!({"roleName": "dev-agent", "policyName": "x", "policyDocument": admin}),
            "global",
            Some("admin-policy-grant"),
        ),
        2 => (
            agent,
            "iam.amazonaws.com",
            "PutRolePolicy",
            json!({"roleName": "dev-agent", "policyName": "y", "policyDocument": s3}),
            "global",
            Some("wildcard-policy-grant"),
        ),
        3 => (
            agent,
            "iam.amazonaws.com",
            "PutRolePolicy",
            json!({"roleName": "dev-agent", "policyName": "z", "policyDocument": pass}),
            "global",
            Some("passrole-grant"),
        ),
        4 => (
            agent,
            "iam.amazonaws.com",
            "UpdateAssumeRolePolicy",
            json!({"roleName": "reports", "policyDocument": open}),
            "global",
            Some("trust-policy-grant"),
        ),
        5 => (
            agent,
            "s3.amazonaws.com",
            "DeleteBucket",
            json!({"bucketName": "orders-archive"}),
            "regional",
            Some("agent-sensitive-call"),
        ),
        6 => (
            session(account, "ops", "mallory@example.com"),
            "cloudtrail.amazonaws.com",
            "StopLogging",
            json!({"name": format!("arn:aws:cloudtrail:us-east-1:{account}:trail/org-trail")}),
            "regional",
            Some("audit-tampering"),
        ),
        _ => (
            session(account, "ops", "mallory@example.com"),
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            json!({"functionName": "trailguard-detect"}),
            "regional",
            Some("guardrail-tampering"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assume_role_mix_is_one_role_to_role_assume_role_in_six_with_readable_credentials() {
        let records: Vec<Synthetic> =
            generate_mix(7, 6_000, "123456789012", "us-east-1", "2026-11-01", Mix::AssumeRole).collect();
        let assumes: Vec<_> = records
            .iter()
            .map(|s| crate::event::input::parse_record(&s.record.to_string()).unwrap())
            .filter(|r| r.event_name == "AssumeRole" && r.identity().kind.as_deref() == Some("AssumedRole"))
            .collect();
        assert!((990..=1_000).contains(&assumes.len()), "{}", assumes.len());
        for record in [&assumes[0], &assumes[assumes.len() - 1]] {
            let session = crate::session::issued(record).unwrap().session;
            assert!(session.access_key_id.starts_with("ASIA"));
            assert_eq!(session.expires - session.issued, 3_600, "STS's expiration form is read back");
        }
        let plain = generate(7, 6_000, "123456789012", "us-east-1", "2026-11-01")
            .filter(|s| s.record["responseElements"].get("credentials").is_some())
            .count();
        assert_eq!(plain, 0, "the default mix is unchanged");
    }

    #[test]
    fn records_are_written_in_cloudtrails_order_and_mean_the_same() {
        for synthetic in generate(3, 200, "123456789012", "us-east-1", "2026-11-01") {
            let text = cloudtrail_json(&synthetic.record);
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), synthetic.record, "{text}");
            assert!(text.starts_with(r#"{"eventVersion":"1.09","userIdentity":{"type":""#), "{text}");
            let source = text.find(r#""eventSource""#).unwrap();
            assert!(text.find(r#""eventTime""#).unwrap() < source && source < text.find(r#""eventName""#).unwrap());
        }
    }
}
