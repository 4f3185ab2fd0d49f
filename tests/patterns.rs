//! The EventBridge patterns the rules derive, tested where patterns are evaluated: every fixture event is put
//! on a moto event bus whose rules carry the patterns, each rule delivering to its own SQS queue.
//!
//! Each event a rule needs must arrive exactly once (an event matching two rules would invoke the detector
//! twice and page twice), at a rule that serves that rule; every other event, and AWS service events, must not
//! arrive at all.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use harness::moto::Moto;
use serde_json::Value;
use trailguard_core::event::read_records;
use trailguard_core::patterns::{agent_traffic, patterns, remediation_pattern, AGENTS};
use trailguard_core::{Config, Engine};

/// Every record of every fixture file, as JSON.
fn fixture_records() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events");
    let mut out = Vec::new();
    for group in std::fs::read_dir(root).unwrap() {
        for file in std::fs::read_dir(group.unwrap().path()).unwrap() {
            let value: Value = serde_json::from_slice(&std::fs::read(file.unwrap().path()).unwrap()).unwrap();
            match (value.get("Records"), value.get("detail")) {
                (Some(Value::Array(records)), _) => out.extend(records.iter().cloned()),
                (_, Some(detail)) => out.push(detail.clone()),
                _ => out.push(value),
            }
        }
    }
    out
}

fn detail_type(record: &Value) -> &'static str {
    match record["eventType"].as_str() {
        Some("AwsServiceEvent") => "AWS Service Event via CloudTrail",
        Some("AwsConsoleSignIn") => "AWS Console Sign In via CloudTrail",
        Some("AwsConsoleAction") => "AWS Console Action via CloudTrail",
        _ => "AWS API Call via CloudTrail",
    }
}

/// One rule per pattern on moto's default bus, each delivering to a queue of its name; the queues' URLs by name.
async fn subscribe(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    all: &[trailguard_core::patterns::RulePattern],
) -> BTreeMap<String, String> {
    let mut queues = BTreeMap::new();
    for p in all {
        let url = sqs.create_queue().queue_name(&p.name).send().await.unwrap().queue_url.unwrap();
        events.put_rule().name(&p.name).event_pattern(p.pattern.to_string()).send().await.unwrap();
        let target =
            Target::builder().id("q").arn(format!("arn:aws:sqs:us-east-1:123456789012:{}", p.name)).build().unwrap();
        events.put_targets().rule(&p.name).targets(target).send().await.unwrap();
        queues.insert(p.name.clone(), url);
    }
    queues
}

#[tokio::test(flavor = "multi_thread")]
async fn each_needed_event_arrives_exactly_once_and_nothing_else_arrives() {
    let config = Config::from_json(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config.json")).unwrap(),
    )
    .unwrap();
    let engine = Engine::new(config);
    let moto = Moto::start();
    let sdk = moto.sdk();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let all = patterns(&engine);
    let queues = subscribe(&events, &sqs, &all).await;

    let records = fixture_records();
    assert!(records.len() > 100);
    put_as_aws(&events, &records).await;
    let arrived = drain(&sqs, &queues).await;

    let mut failures = Vec::new();
    let mut needed = 0;
    for raw in &records {
        let id = raw["eventID"].as_str().unwrap_or_default();
        let record = read_records(raw.to_string().as_bytes()).unwrap().remove(0).unwrap();
        let at = arrived.get(id).cloned().unwrap_or_default();
        let triggered = engine.triggered_rules(&record);
        let service_event = record.event_type.as_deref() == Some("AwsServiceEvent");
        // The session registry needs every call that issues credentials, whether a rule judges it or not.
        let registry = engine.issuing_offline(&record).is_some();
        // The canaries' calls are needed for heartbeats; no rule judges them.
        let canary = trailguard_core::canary::recognise(engine.config(), &record).is_some();
        // Known agents' read-only calls come for behaviour over time.
        let agent = agent_traffic(&engine, &record);
        if agent && !triggered.contains(&"agent-behaviour") {
            failures
                .push(format!("{id} {} is brought for agent-behaviour, which it does not trigger", record.event_name));
        }
        // An agent's read call whose record lacks `readOnly` (older event versions) is counted where it is read,
        // but no pattern can select it by name without doubling the `Agents` pattern's branches: the README says so.
        let unmarked = record.read_only.is_none()
            && !triggered.is_empty()
            && !engine.call_triggers(&record.event_source, &record.event_name)
            && record.identity().kind.as_deref() != Some("Root");
        if ((triggered.is_empty() || unmarked) && !registry && !canary && !agent) || service_event {
            // The canary rule routes by the canary roles' name prefix; the detector then recognises the exact
            // role, so a look-alike's call may arrive there, and only there, to be dropped.
            let canary_routed = at == ["Canary"] && record.event_name == "TagQueue";
            if !at.is_empty() && !canary_routed {
                failures.push(format!("{id} {} arrived at {at:?} but no rule needs it", record.event_name));
            }
            continue;
        }
        needed += 1;
        let [pattern] = at.as_slice() else {
            failures.push(format!("{id} {} needed by {triggered:?} arrived at {at:?}", record.event_name));
            continue;
        };
        let serves = &all.iter().find(|p| &p.name == pattern).unwrap().rules;
        for finding in engine.evaluate_offline(&record).findings {
            if !serves.contains(&finding.rule) {
                failures.push(format!(
                    "{id}: {} arrived at {pattern}, which does not serve {}",
                    record.event_name, finding.rule
                ));
            }
        }
    }
    assert!(needed > 60, "only {needed} fixture events are needed by a rule");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_cloudtrail_events_reach_only_the_tripwire() {
    let engine = Engine::new(Config::default());
    let moto = Moto::start();
    let sdk = moto.sdk();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queues = subscribe(&events, &sqs, &patterns(&engine)).await;
    // What anyone with events:PutEvents can send: CloudTrail's detail-type and record under a source that is not
    // AWS's (AWS refuses `aws.*` in PutEvents; moto does not, so the genuine side is the test above).
    let records: Vec<Value> = fixture_records().into_iter().take(30).collect();
    put(&events, &records, |_| "aws-lookalike.iam".to_owned()).await;
    let mut arrived: BTreeMap<String, usize> = BTreeMap::new();
    for pattern in drain(&sqs, &queues).await.into_values().flatten() {
        *arrived.entry(pattern).or_default() += 1;
    }
    assert_eq!(
        arrived,
        BTreeMap::from([("Tripwire".to_owned(), records.len())]),
        "every forgery, only at the tripwire"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_findings_with_steps_reach_the_remediator() {
    let moto = Moto::start();
    let sdk = moto.sdk();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs.create_queue().queue_name("remediate").send().await.unwrap().queue_url.unwrap();
    events.put_rule().name("remediate").event_pattern(remediation_pattern().to_string()).send().await.unwrap();
    let target = Target::builder().id("q").arn("arn:aws:sqs:us-east-1:123456789012:remediate").build().unwrap();
    events.put_targets().rule("remediate").targets(target).send().await.unwrap();

    let engine = Engine::new(Config::default());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events");
    let mut sent = BTreeMap::new();
    for file in [
        "admin-policy-grant/agent-attaches-administratoraccess-to-own-role.json",
        "root-usage/root-console-login-with-mfa.json",
    ] {
        let record = read_records(&std::fs::read(fixtures.join(file)).unwrap()).unwrap().remove(0).unwrap();
        let finding = engine.evaluate_offline(&record).findings.remove(0);
        let entry = PutEventsRequestEntry::builder()
            .source("trailguard")
            .detail_type("Trailguard Finding")
            .detail(serde_json::to_string(&finding).unwrap())
            .build();
        events.put_events().entries(entry).send().await.unwrap();
        sent.insert(finding.id.clone(), !finding.remediation.is_empty());
    }
    let got = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let arrived: Vec<String> = got
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap()["detail"]["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = sent.iter().filter(|(_, steps)| **steps).map(|(id, _)| id.clone()).collect();
    assert_eq!(arrived, expected, "the admin grant (with steps) arrives, the root sign-in (alert only) does not");
}

/// Puts each record (as `aws.<service>` would deliver it) on a bus with the default patterns; the names of the
/// patterns each record arrived at, by event id.
async fn arrivals(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let engine = Engine::new(Config::default());
    let moto = Moto::start();
    let sdk = moto.sdk();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queues = subscribe(&events, &sqs, &patterns(&engine)).await;
    put_as_aws(&events, records).await;
    drain(&sqs, &queues).await
}

/// Puts each record on the bus as `aws.<service>` would deliver it.
async fn put_as_aws(events: &aws_sdk_eventbridge::Client, records: &[Value]) {
    put(events, records, |r| format!("aws.{}", r["eventSource"].as_str().unwrap().split('.').next().unwrap())).await;
}

/// Puts each record on the bus as a CloudTrail event from the source `source` gives it.
async fn put(events: &aws_sdk_eventbridge::Client, records: &[Value], source: impl Fn(&Value) -> String) {
    for chunk in records.chunks(10) {
        let entries: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|r| {
                PutEventsRequestEntry::builder()
                    .source(source(r))
                    .detail_type(detail_type(r))
                    .detail(r.to_string())
                    .build()
            })
            .collect();
        let out = events.put_events().set_entries(Some(entries)).send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    }
}

/// Empties every queue: the names of the patterns (queues) each event arrived at, by event id.
async fn drain(sqs: &aws_sdk_sqs::Client, queues: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let mut arrived: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, url) in queues {
        loop {
            let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let id = event["detail"]["eventID"].as_str().unwrap_or_default().to_owned();
                arrived.entry(id).or_default().push(name.clone());
                sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    }
    arrived
}

/// A read-only call in CloudTrail's format by `identity`.
fn read_call(id: &str, source: &str, name: &str, identity: Value) -> Value {
    serde_json::json!({
        "eventVersion": "1.11", "userIdentity": identity, "eventTime": "2026-11-29T10:00:00Z",
        "eventSource": source, "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0", "requestParameters": null, "responseElements": null,
        "requestID": format!("req-{id}"), "eventID": id, "readOnly": true, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": "123456789012", "eventCategory": "Management"
    })
}

fn assumed(role: &str, session: &str, source_identity: Option<&str>) -> Value {
    let mut context = serde_json::json!({
        "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID", "accountId": "123456789012",
                          "arn": format!("arn:aws:iam::123456789012:role/{role}"), "userName": role},
        "attributes": {"creationDate": "2026-11-29T09:55:00Z", "mfaAuthenticated": "false"}
    });
    if let Some(s) = source_identity {
        context["sourceIdentity"] = serde_json::json!(s);
    }
    serde_json::json!({
        "type": "AssumedRole", "principalId": format!("AROAEXAMPLEID:{session}"), "accountId": "123456789012",
        "arn": format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}"), "accessKeyId": "ASIAEXAMPLEREAD",
        "sessionContext": context
    })
}

fn user(name: &str) -> Value {
    serde_json::json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "123456789012",
        "arn": format!("arn:aws:iam::123456789012:user/{name}"), "userName": name, "accessKeyId": "AKIAEXAMPLEREAD"})
}

#[tokio::test(flavor = "multi_thread")]
async fn known_agents_read_calls_arrive_once_and_near_misses_do_not() {
    let engine = Engine::new(Config::default());
    let mut mcp = read_call("mcp", "ec2.amazonaws.com", "DescribeInstances", assumed("payments", "worker-1", None));
    mcp["additionalEventData"] = serde_json::json!({"CalledViaAWSMCP": "aws-mcp.amazonaws.com"});
    let mut written =
        read_call("write", "s3.amazonaws.com", "PutBucketTagging", assumed("payments", "agent-run-1", None));
    written["readOnly"] = serde_json::json!(false);
    // (event, whether it must arrive at the agents' pattern): a positive and a near miss for each signal.
    let cases = [
        (
            read_call("si", "s3.amazonaws.com", "ListBuckets", assumed("payments", "worker-1", Some("Claude-Code"))),
            true,
        ),
        (
            read_call("si-miss", "s3.amazonaws.com", "ListBuckets", assumed("payments", "worker-1", Some("my-claude"))),
            false,
        ),
        (read_call("session", "ec2.amazonaws.com", "DescribeVpcs", assumed("payments", "agent-run-1", None)), true),
        (
            read_call("session-miss", "ec2.amazonaws.com", "DescribeVpcs", assumed("payments", "run-agent-1", None)),
            false,
        ),
        (read_call("role", "rds.amazonaws.com", "DescribeDBInstances", assumed("ops-ai-agent-ro", "r1", None)), true),
        (
            read_call("role-miss", "rds.amazonaws.com", "DescribeDBInstances", assumed("ops-aiagent-ro", "r1", None)),
            false,
        ),
        (read_call("user", "lambda.amazonaws.com", "ListFunctions20150331", user("AI-Agent-Ci")), true),
        (read_call("user-miss", "lambda.amazonaws.com", "ListFunctions20150331", user("ci-ai-agen")), false),
        (mcp, true),
        (read_call("mcp-miss", "ec2.amazonaws.com", "DescribeInstances", assumed("payments", "worker-1", None)), false),
        // Not read-only: a write no rule subscribes to stays away (writes would overlap the per-source groups).
        (written, false),
        // A read-only call another pattern already brings arrives there only.
        (
            read_call("secret", "secretsmanager.amazonaws.com", "BatchGetSecretValue", assumed("p", "agent-1", None)),
            false,
        ),
    ];
    let records: Vec<Value> = cases.iter().map(|(r, _)| r.clone()).collect();
    let arrived = arrivals(&records).await;
    let mut failures = Vec::new();
    for (record, expected) in &cases {
        let id = record["eventID"].as_str().unwrap();
        let at = arrived.get(id).cloned().unwrap_or_default();
        let parsed = read_records(record.to_string().as_bytes()).unwrap().remove(0).unwrap();
        if agent_traffic(&engine, &parsed) != *expected {
            failures.push(format!("{id}: trailguard's own reading disagrees with the expectation"));
        }
        let wanted: Vec<String> = if *expected { vec![AGENTS.to_owned()] } else { Vec::new() };
        let agents_only: Vec<String> = at.iter().filter(|p| *p == AGENTS).cloned().collect();
        if agents_only != wanted || (*expected && at.len() != 1) {
            failures.push(format!("{id} arrived at {at:?}"));
        }
    }
    assert_eq!(arrived.get("secret").cloned().unwrap_or_default(), ["Secretsmanager"], "exactly once, there");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
