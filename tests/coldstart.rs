//! Cold start of the `detect` binary, measured through the Lambda Runtime API harness: from process start to its
//! first request for an event (init), and to its first answer (init plus the first invocation), against the
//! start-up a Python guardrail pays before it can do anything (`python3 -c 'import boto3'`), in the same run.
//!
//! `make bench` runs it on the release binary. No AWS is needed: a harmless event costs no AWS call.

// A benchmark: a failed unwrap is a failed measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::runtime::run_lambda;
use serde_json::json;

const RUNS: usize = 15;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let binary =
        std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| harness::runtime::binary("detect"));
    let env: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "example"),
        ("HOME_ACCOUNT_ID", "123456789012"),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:trailguard-alerts"),
        ("FINDINGS_BUS_NAME", "trailguard-findings"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let event = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": {
        "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-east-1",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/app/i-1"},
        "requestParameters": {"bucketName": "b", "key": "k"}, "eventID": "cold"}});

    let (mut init, mut first) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        let run = run_lambda(&binary, &env, vec![event.clone()], Duration::from_secs(30));
        let total = started.elapsed();
        assert!(run.invocations[0].result.is_ok(), "{}", run.logs);
        init.push(run.cold_start.expect("first request"));
        first.push(total);
    }
    let mut python = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new("python3").args(["-c", "import boto3"]).status().expect("python3");
        assert!(status.success(), "python3 -c 'import boto3' failed: is boto3 installed?");
        python.push(started.elapsed());
    }
    let (init, first, python) = (median(init), median(first), median(python));
    println!("detect init (process start to first event request), median of {RUNS}: {init:?}");
    println!("detect init + first invocation (harness round trip included): {first:?}");
    println!("python3 -c 'import boto3', median of {RUNS}: {python:?}");
    println!(
        "ratio: boto3 import / detect init = {:.1}x; / init + first invocation = {:.1}x",
        python.as_secs_f64() / init.as_secs_f64(),
        python.as_secs_f64() / first.as_secs_f64()
    );
}
