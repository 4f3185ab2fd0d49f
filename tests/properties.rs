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
            let _ = analyze_trust(&doc, &trailguard_core::policy::Known { own_account: Some("123456789012"), ..Default::default() });
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

mod wrong_target {
    use proptest::prelude::*;
    use trailguard_core::config::{Config, Mode};
    use trailguard_core::event::{Actor, AgentMatch};
    use trailguard_core::finding::{Evidence, Finding, PrincipalKind, Remediation, Severity, Target, SCHEMA_VERSION};
    use trailguard_core::policy::eval::{denies, Request};
    use trailguard_core::policy::PolicyDocument;
    use trailguard_core::remediation::plan::{plan, Decision};
    use trailguard_core::remediation::revocation::{merge, rfc3339, Revocation};

    fn time(minutes: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap() + time::Duration::minutes(minutes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The deny written for one session denies exactly that session's credentials issued before the
        /// revocation: not its role's other sessions, not other roles' sessions of the same name, not later ones.
        #[test]
        fn a_session_revocation_hits_only_its_session(
            role in "AROA[A-Z0-9]{4}", other_role in "AROA[A-Z0-9]{4}",
            session in "[a-z0-9@.-]{1,12}", other_session in "[a-z0-9@.-]{1,12}",
            revoked_at in 0i64..600, issued in -720i64..1200,
        ) {
            let target = format!("{role}:{session}");
            let merged = merge(None, &Revocation::Session(target.clone()), Some(time(revoked_at - 1)), time(revoked_at), time::Duration::hours(12), trailguard_core::remediation::revocation::ROLE_INLINE_BUDGET);
            let doc = PolicyDocument::from_value(&merged.document).unwrap();
            for (who_role, who_session) in [(&role, &session), (&role, &other_session), (&other_role, &session)] {
                let user_id = format!("{who_role}:{who_session}");
                let request = Request::new("s3:GetObject", "arn:aws:s3:::b/k")
                    .with("aws:userid", &user_id)
                    .with("aws:TokenIssueTime", &rfc3339(time(issued)));
                let should = user_id == target && issued < revoked_at;
                prop_assert_eq!(denies(&doc, &request), should, "{} issued at {} vs {} revoked at {}", user_id, issued, target, revoked_at);
            }
        }

        /// Protected principals are skipped whatever the modes, the actor and dry run say.
        #[test]
        fn protected_principals_are_never_touched_in_any_mode(
            agents in prop::sample::select(vec![Mode::Off, Mode::Alert, Mode::Enforce]),
            humans in prop::sample::select(vec![Mode::Off, Mode::Alert, Mode::Enforce]),
            rule_mode in prop::option::of(prop::sample::select(vec![Mode::Alert, Mode::Enforce])),
            dry_run in any::<bool>(), agent in any::<bool>(),
            role in prop::sample::select(vec![
                "trailguard-remediate", "TrailGuard-Remediate", "trailguard-member", "break-glass-1", "BREAK-GLASS-2",
            ]),
        ) {
            let mut config = Config::from_json(r#"{"own_role_arns":["arn:aws:iam::123456789012:role/trailguard-remediate"],
                "remediation":{"protected_principals":["break-glass-*"]}}"#).unwrap();
            config.remediation.agents = agents;
            config.remediation.humans = humans;
            config.remediation.dry_run = dry_run;
            if let Some(mode) = rule_mode {
                config.rules.entry("admin-policy-grant".into()).or_default().mode = Some(mode);
            }
            let actor = Actor {
                kind: "AssumedRole".into(),
                agent: agent.then(|| AgentMatch { signal: "session_name".into(), pattern: "agent-*".into(), value: "agent-1".into() }),
                ..Actor::default()
            };
            let account = "123456789012".to_owned();
            let steps = vec![
                Remediation::DetachManagedPolicy { account: account.clone(), principal_kind: PrincipalKind::Role, principal_name: role.into(), policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(), document_sha256: None },
                Remediation::DeleteInlinePolicy { account: account.clone(), principal_kind: PrincipalKind::Role, principal_name: role.into(), policy_name: "p".into(), document_sha256: None },
                Remediation::RevokeSession { account: account.clone(), role_name: role.into(), user_id: Some("AROA:s".into()), source_identity: None, rotating: None },
                Remediation::RevokeOlderSessions { account: account.clone(), role_name: role.into() },
                Remediation::RemoveTrustStatements { account, role_name: role.into(), statements: vec![] },
            ];
            let finding = Finding {
                schema_version: SCHEMA_VERSION, id: "f".into(), rule: "admin-policy-grant".into(), severity: Severity::Critical,
                title: "t".into(), description: "d".into(), attempt: false, account: None, region: None, time: None,
                event_id: None, event_source: "iam.amazonaws.com".into(), event_name: "AttachRolePolicy".into(),
                error_code: None, actor, target: Target::default(), evidence: Evidence::default(), remediable: !steps.is_empty(), remediation: steps,
            };
            for step in plan(&finding, &config).steps {
                prop_assert!(matches!(step.decision, Decision::Skip { .. }), "{:?} on {} was planned", step.step, role);
            }
        }
    }
}

#[test]
fn allow_listed_actors_yield_no_finding_so_nothing_is_remediated() {
    let record = r#"{"eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","recipientAccountId":"123456789012",
        "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/deploy/agent-ci",
          "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/deploy"}}},
        "requestParameters":{"roleName":"app","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}}"#;
    let record = read_records(record.as_bytes()).unwrap().remove(0).unwrap();
    assert_eq!(Engine::new(Config::default()).evaluate_offline(&record).findings.len(), 1);
    // Allow-listed for one rule only: the general agent rule still reports the agent changing IAM.
    let one = Config::from_json(
        r#"{"rules":{"admin-policy-grant":{"allow_principals":["arn:aws:iam::123456789012:role/deploy"]}}}"#,
    )
    .unwrap();
    let findings = Engine::new(one).evaluate_offline(&record).findings;
    assert_eq!(findings.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["agent-sensitive-call"]);
    let both = Config::from_json(
        r#"{"rules":{"admin-policy-grant":{"allow_principals":["arn:aws:iam::123456789012:role/deploy"]},
                     "agent-sensitive-call":{"allow_accounts":["123456789012"]}}}"#,
    )
    .unwrap();
    assert!(Engine::new(both).evaluate_offline(&record).findings.is_empty());
}
