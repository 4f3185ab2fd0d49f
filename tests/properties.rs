//! Property tests: whatever JSON arrives, the parsers and the engine answer Ok or Err and never panic.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{json, Value};
use trailguard_core::event::{read_event, read_records};
use trailguard_core::policy::{analyze, analyze_trust, PolicyDocument};
use trailguard_core::{Config, Engine};

/// Any JSON value, a few levels deep, biased towards the strings policies and records use.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "*",
            "Allow",
            "Deny",
            "iam:PassRole",
            "iam:*",
            "s3:*",
            "sts:AssumeRole",
            "arn:aws:iam::*:role/*",
            "0.0.0.0/0",
            "Root",
            "AssumedRole",
            "iam.amazonaws.com",
            "AttachRolePolicy",
            "%7B%7D",
            "",
            "?",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "Statement",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
            "AWS",
            "StringEquals",
            "iam:PassedToService",
            "eventSource",
            "eventName",
            "userIdentity",
            "type",
            "arn",
            "sessionContext",
            "sessionIssuer",
            "requestParameters",
            "policyDocument",
            "roleName",
            "policyArn",
            "detail",
            "detail-type",
            "Records",
            "errorCode",
            "readOnly",
            "eventType",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// A record shell around arbitrary parameters, so the engine's deeper paths are reached.
fn iam_record(event_name: &'static str, params: Value, identity: Value) -> Value {
    json!({"eventSource": "iam.amazonaws.com", "eventName": event_name, "userIdentity": identity,
           "requestParameters": params, "eventID": "e", "awsRegion": "us-east-1", "recipientAccountId": "123456789012"})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn policy_parser_and_analyzer_never_panic(value in any_json()) {
        let text = value.to_string();
        if let Ok(doc) = PolicyDocument::parse(&text) {
            let _ = analyze(&doc);
            let _ = analyze_trust(&doc, Some("123456789012"), &[]);
        }
    }

    #[test]
    fn record_readers_never_panic(value in any_json(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = read_records(value.to_string().as_bytes());
        let _ = read_event(&value.to_string());
        let _ = read_records(&bytes);
    }

    #[test]
    fn engine_never_panics_on_arbitrary_parameters(
        params in any_json(),
        identity in any_json(),
        name in prop::sample::select(vec![
            "PutRolePolicy", "AttachRolePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "CreateRole",
            "UpdateAssumeRolePolicy", "DeleteRolePermissionsBoundary", "CreatePolicy", "DeleteUser",
        ]),
        doc in any_json(),
    ) {
        let engine = Engine::new(Config::default());
        let mut params = params;
        if let Value::Object(map) = &mut params {
            map.insert("policyDocument".into(), Value::String(doc.to_string()));
            map.insert("assumeRolePolicyDocument".into(), doc.clone());
        }
        for identity in [identity, json!({"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/agent-x/agent-1"})] {
            let record = iam_record(name, params.clone(), identity);
            if let Ok(records) = read_records(record.to_string().as_bytes()) {
                for record in records.into_iter().flatten() {
                    for finding in engine.evaluate_offline(&record).findings {
                        prop_assert!(!finding.to_text().is_empty());
                    }
                }
            }
        }
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    // Either the input as a whole or each record in it is refused; nothing is read as a record.
    match read_records(deep.as_bytes()) {
        Err(_) => {}
        Ok(records) => assert!(records.iter().all(Result::is_err)),
    }
    assert!(PolicyDocument::parse(&deep).is_err());
    let deep_doc = format!(r#"{{"Statement":{}}}"#, deep);
    assert!(PolicyDocument::parse(&deep_doc).is_err());
}
