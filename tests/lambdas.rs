//! The two Lambdas end to end: the compiled `detect` and `remediate` binaries, driven through the Lambda
//! Runtime API, with the real AWS SDK talking to a moto server. Each test owns its server.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::time::Duration;

use harness::aws::{attached, create_role, inline_policy, settle, Outputs};
use harness::events::{api_call, console_login, root, session};
use harness::moto::{Moto, HOME_ACCOUNT};
use harness::runtime::{binary, run_lambda, Run};
use serde_json::{json, Value};
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::PolicyDocument;

const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const REVOCATIONS: &str = "trailguard-revocations";

/// One emulated account with trailguard's destinations.
struct Stage {
    moto: Moto,
    out: Outputs,
    iam: aws_sdk_iam::Client,
}

impl Stage {
    async fn new() -> Stage {
        let moto = Moto::start();
        let sdk = moto.sdk();
        let out = Outputs::create(&sdk).await;
        Stage { iam: aws_sdk_iam::Client::new(&sdk), moto, out }
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        env.extend(self.out.env());
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    async fn run(&self, name: &'static str, events: Vec<Value>, extra: &[(&str, &str)]) -> Run {
        let env = self.env(extra);
        let run = tokio::task::spawn_blocking(move || run_lambda(&binary(name), &env, events, Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(run.init_error.is_none(), "{name} failed to start: {:?}\n{}", run.init_error, run.logs);
        settle().await;
        run
    }

    /// Runs the detector on events; returns the finding events it put on the bus.
    async fn detect(&self, events: Vec<Value>, extra: &[(&str, &str)]) -> (Run, Vec<Value>) {
        let run = self.run("detect", events, extra).await;
        let bus = self.out.bus_events().await;
        (run, bus.into_iter().filter(|e| e["detail-type"] == "Trailguard Finding").collect())
    }

    /// Runs the remediator on finding events; returns the reports it put on the bus.
    async fn remediate(&self, findings: Vec<Value>, extra: &[(&str, &str)]) -> (Run, Vec<Value>) {
        let run = self.run("remediate", findings, extra).await;
        let bus = self.out.bus_events().await;
        (
            run,
            bus.into_iter()
                .filter(|e| e["detail-type"] == "Trailguard Remediation")
                .map(|e| e["detail"].clone())
                .collect(),
        )
    }
}

fn ok(run: &Run) -> Vec<Value> {
    run.invocations
        .iter()
        .map(|i| i.result.clone().unwrap_or_else(|e| panic!("invocation failed: {e}\n{}", run.logs)))
        .collect()
}

fn attach_event(identity: Value, role: &str, policy: &str, event_id: &str) -> Value {
    api_call(
        identity,
        "iam.amazonaws.com",
        "AttachRolePolicy",
        json!({"roleName": role, "policyArn": policy}),
        Value::Null,
        HOME_ACCOUNT,
        event_id,
    )
}

fn step_statuses(report: &Value) -> Vec<String> {
    report["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_attaching_admin_to_its_role_is_undone_and_only_its_session_revoked() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "dev-agent", "/").await;
    stage.iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    let event =
        attach_event(session(HOME_ACCOUNT, "dev-agent", &role_id, "agent-run-42"), "dev-agent", ADMIN, "e-agent-admin");

    let (run, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["admin-policy-grant"]));
    assert_eq!(findings.len(), 1);
    let alerts = stage.out.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].subject.starts_with("[CRITICAL]"), "{}", alerts[0].subject);
    assert!(alerts[0].subject.len() < 100);
    assert_eq!(alerts[0].attributes["severity"]["Value"], "critical");
    assert_eq!(alerts[0].attributes["agent"]["Value"], "true");
    assert_eq!(alerts[0].attributes["actor_type"]["Value"], "AssumedRole");
    assert!(alerts[0].message.contains("detach arn:aws:iam::aws:policy/AdministratorAccess from role dev-agent"));

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(reports.len(), 1);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert!(attached(&stage.iam, "dev-agent").await.is_empty(), "AdministratorAccess is detached");
    assert!(stage.out.alerts().await.iter().any(|a| a.subject.starts_with("trailguard remediated")));

    let written = inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.expect("revocation policy written");
    let doc = PolicyDocument::from_value(&written).unwrap();
    let request = |session: &str, issued: &str| {
        Request::new("s3:ListAllMyBuckets", "*")
            .with("aws:userid", &format!("{role_id}:{session}"))
            .with("aws:TokenIssueTime", issued)
    };
    assert!(denies(&doc, &request("agent-run-42", "2026-11-27T09:00:00Z")), "the agent's session is denied");
    assert!(!denies(&doc, &request("agent-run-43", "2026-11-27T09:00:00Z")), "another session of the role works");
    assert!(!denies(&doc, &request("agent-run-42", "2099-01-01T00:00:00Z")), "a fresh session works");
}
