//! Load: 20,000 events through one `detect` process, as a busy account's EventBridge would send them.
//! Memory must stay flat, no invocation may fail, and every planted finding must reach SNS exactly once.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::events::{api_call, console_login, root, session};
use harness::moto::HOME_ACCOUNT;
use harness::runtime::{binary, run_lambda};
use harness::stage::Stage;
use serde_json::{json, Value};

const EVENTS: usize = 20_000;

fn events() -> usize {
    std::env::var("TRAILGUARD_LOAD_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(EVENTS)
}
const PLANTED_EVERY: usize = 100;

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_events_in_one_process_with_flat_memory_and_every_finding_once() {
    let stage = Stage::new().await;
    let app = session(HOME_ACCOUNT, "orders-api", "AROAEXAMPLEAPP", "i-0abc");
    let alice = session(HOME_ACCOUNT, "ops", "AROAEXAMPLEOPS", "alice@example.com");
    let total = events();
    let events: Vec<Value> = (0..total)
        .map(|i| match i % PLANTED_EVERY {
            // Planted: a root sign-in, alert only, so nothing in IAM needs to exist.
            0 => console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, &format!("planted-{i:05}"), i % 200 == 0),
            // Triggers a rule's pattern but is no finding: a person deleting a bucket (each in a session of its
            // own: two hundred deletions in one session within minutes would be a deletion run).
            1 => api_call(
                {
                    let mut person = alice.clone();
                    person["accessKeyId"] = json!(format!("ASIAALICE{i:011}"));
                    person
                },
                "s3.amazonaws.com",
                "DeleteBucket",
                json!({"bucketName": format!("tmp-{i}")}),
                Value::Null,
                HOME_ACCOUNT,
                &format!("e-{i:05}"),
            ),
            // The bulk: an application reading objects and decrypting.
            n if n % 2 == 0 => api_call(
                app.clone(),
                "s3.amazonaws.com",
                "GetObject",
                json!({"bucketName": "orders", "key": format!("o/{i}.json")}),
                Value::Null,
                HOME_ACCOUNT,
                &format!("e-{i:05}"),
            ),
            _ => api_call(
                app.clone(),
                "kms.amazonaws.com",
                "Decrypt",
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                Value::Null,
                HOME_ACCOUNT,
                &format!("e-{i:05}"),
            ),
        })
        .collect();
    let env = stage.env(&[]);
    let run =
        tokio::task::spawn_blocking(move || run_lambda(&binary("detect"), &env, events, Duration::from_secs(600)))
            .await
            .unwrap();
    assert_eq!(run.invocations.len(), total);
    let failed: Vec<_> = run.invocations.iter().filter(|i| i.result.is_err()).collect();
    assert!(failed.is_empty(), "{} invocations failed, first: {:?}", failed.len(), failed.first());

    // Every planted event's finding reached SNS, each exactly once.
    let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
    for alert in stage.out.alerts().await {
        let event = alert
            .message
            .lines()
            .find_map(|l| l.strip_prefix("Event: "))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        *per_event.entry(event).or_default() += 1;
    }
    assert_eq!(per_event.len(), total / PLANTED_EVERY, "every planted finding delivered");
    assert!(per_event.keys().all(|e| e.starts_with("planted-")), "nothing else alerted");
    assert!(per_event.values().all(|&n| n == 1), "each exactly once");

    // Memory: the resident size once warm (a quarter of the way) against the most it reached after that.
    let warm = run.memory.iter().find(|(done, _)| *done >= total / 4).map(|m| m.1).expect("sampled while warm");
    let peak = run.memory.iter().filter(|(done, _)| *done >= total / 4).map(|m| m.1).max().unwrap();
    println!("rss warm {warm} KiB, peak after {peak} KiB, samples {}", run.memory.len());
    assert!(peak <= warm + warm / 5 + 2048, "memory grew from {warm} KiB to {peak} KiB");
}
