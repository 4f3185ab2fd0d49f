//! The bad-input corpus (`fixtures/bad-input`, written by its `generate.py`) through the library and through
//! the compiled `detect` Lambda: each case gives its documented outcome, and nothing panics.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::stage::Stage;
use serde_json::Value;
use trailguard_core::event::read_records;
use trailguard_core::{Config, Engine};

fn corpus() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad-input");
    std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, outcome) = l.split_once('\t').unwrap();
            (dir.join("cases").join(file), outcome.to_owned())
        })
        .collect()
}

/// What the library makes of one input, in the corpus's words.
fn outcome_of(engine: &Engine, bytes: &[u8]) -> Vec<String> {
    let records = match read_records(bytes) {
        Err(e) => return vec![format!("input-error:{e}")],
        Ok(records) => records,
    };
    let mut out = Vec::new();
    for record in records {
        match record {
            Err(e) => out.push(format!("record-error:{e}")),
            Ok(record) => {
                let evaluation = engine.evaluate_offline(&record);
                out.extend(evaluation.findings.iter().map(|f| format!("finding:{}", f.rule)));
                out.extend(evaluation.warnings.iter().map(|w| format!("warning:{w}")));
            }
        }
    }
    out
}

fn matches(expected: &str, got: &[String]) -> bool {
    let (kind, text) = expected.split_once(':').unwrap_or((expected, ""));
    match kind {
        "none" => got.is_empty(),
        "finding" => got.iter().any(|g| g == expected),
        "warning" => {
            !got.iter().any(|g| g.starts_with("finding:"))
                && got.iter().any(|g| g.starts_with("warning:") && g.contains(text))
        }
        _ => got.iter().any(|g| g.starts_with(kind) && g.contains(text)),
    }
}

#[test]
fn the_library_gives_each_documented_outcome() {
    let engine = Engine::new(Config::default());
    let cases = corpus();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for (path, expected) in &cases {
        let got = outcome_of(&engine, &std::fs::read(path).unwrap());
        if !matches(expected, &got) {
            failures.push(format!("{}: expected {expected}, got {got:?}", path.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_detect_lambda_gives_each_documented_outcome() {
    let stage = Stage::new().await;
    // Lambda delivers JSON: inputs that are not one JSON event cannot reach the function.
    let cases: Vec<(String, Value, String)> = corpus()
        .into_iter()
        .filter_map(|(path, expected)| {
            let value: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            value.is_object().then(|| (path.file_name().unwrap().to_string_lossy().into_owned(), value, expected))
        })
        .filter(|(name, _, _)| name != "empty-log-file.json")
        .collect();
    assert!(cases.len() >= 30);
    // The detector reads only EventBridge events: a bare record arrives wrapped, as AWS delivers it, for its own
    // account (a record naming another, or none, gets the envelope's).
    let wrap = |v: &Value| {
        if v.get("detail").is_some() || v.get("Records").is_some() {
            return v.clone();
        }
        let source = v["eventSource"].as_str().and_then(|s| s.split('.').next()).unwrap_or("iam");
        let account = v["recipientAccountId"].as_str().unwrap_or("123456789012");
        serde_json::json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": format!("aws.{source}"),
            "account": account, "region": "us-east-1", "detail": v})
    };
    let run = stage.run("detect", cases.iter().map(|(_, v, _)| wrap(v)).collect(), &[]).await;
    assert_eq!(run.invocations.len(), cases.len());
    let mut failures = Vec::new();
    for ((name, _, expected), invocation) in cases.iter().zip(&run.invocations) {
        let (kind, text) = expected.split_once(':').unwrap_or((expected.as_str(), ""));
        let good = match (&invocation.result, kind) {
            (Err(e), "record-error" | "input-error") => e["errorMessage"].as_str().unwrap_or_default().contains(text),
            (Ok(out), "finding") => out["rules"].as_array().unwrap().iter().any(|r| r == text),
            (Ok(out), "none" | "warning") => out["findings"].as_array().unwrap().is_empty(),
            _ => false,
        };
        if !good {
            failures.push(format!("{name}: expected {expected}, got {:?}", invocation.result));
        }
    }
    assert!(!run.logs.contains("panicked"), "{}", run.logs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
