//! Faults between trailguard and AWS: a proxy in front of moto throttles, fails, denies or drops chosen calls,
//! and the compiled Lambdas must fail loudly (so Lambda retries and then dead-letters), retry what is worth
//! retrying, finish an interrupted remediation on the retry without doing anything twice, and name a missing
//! permission.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use harness::aws::{attached, create_role, inline_policy};
use harness::events::{console_login, root, session};
use harness::faults::{Fault, FaultProxy};
use harness::moto::HOME_ACCOUNT;
use harness::stage::{attach_event, ok, step_statuses, Stage, ADMIN, REVOCATIONS};
use serde_json::Value;

/// A stage whose Lambdas talk to moto through the fault proxy.
async fn faulty_stage() -> (Stage, FaultProxy) {
    let mut stage = Stage::new().await;
    let proxy = FaultProxy::start(stage.moto.port);
    stage.endpoint = Some(proxy.endpoint());
    (stage, proxy)
}

fn error_message(run: &harness::runtime::Run) -> String {
    let error = run.invocations[0].result.clone().expect_err("the invocation must fail");
    error["errorMessage"].as_str().unwrap_or_default().to_owned()
}

/// An agent that attached AdministratorAccess to its role, as a finding event on the bus.
async fn admin_finding(stage: &Stage, role: &str, session_name: &str) -> Vec<Value> {
    let role_id = create_role(&stage.iam, role, "/").await;
    stage.iam.attach_role_policy().role_name(role).policy_arn(ADMIN).send().await.unwrap();
    let event = attach_event(session(HOME_ACCOUNT, role, &role_id, session_name), role, ADMIN, &format!("e-{role}"));
    let (run, findings) = stage.detect(vec![event], &[]).await;
    ok(&run);
    assert_eq!(findings.len(), 1);
    stage.out.alerts().await;
    findings
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_alert_or_bus_delivery_fails_the_invocation() {
    let (stage, proxy) = faulty_stage().await;
    let event = console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, "e-5xx", true);

    proxy.inject("Publish", Fault::Unavailable, usize::MAX);
    let run = stage.run("detect", vec![event.clone()], &[]).await;
    let message = error_message(&run);
    assert!(message.contains("alert not published to SNS"), "{message}");
    assert!(proxy.seen("Publish") > 1, "a 5xx is retried before giving up");
    assert!(stage.out.bus_events().await.is_empty());

    proxy.clear();
    proxy.inject("PutEvents", Fault::Throttle, usize::MAX);
    let run = stage.run("detect", vec![event.clone()], &[]).await;
    let message = error_message(&run);
    assert!(message.contains("findings bus"), "{message}");

    proxy.clear();
    proxy.inject("PutEvents", Fault::Drop, 1);
    let run = stage.run("detect", vec![event], &[]).await;
    ok(&run);
    assert_eq!(stage.out.bus_events().await.len(), 1, "a dropped connection is retried and the finding delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_remediation_is_finished_by_the_retry_and_nothing_is_done_twice() {
    let (stage, proxy) = faulty_stage().await;
    let findings = admin_finding(&stage, "dev-agent", "agent-run-5").await;

    // The detach goes through; writing the revocation keeps failing past the SDK's retries.
    proxy.inject("PutRolePolicy", Fault::Unavailable, usize::MAX);
    let (run, reports) = stage.remediate(findings.clone(), &[]).await;
    let message = error_message(&run);
    assert!(message.contains("remediation incomplete, will be retried"), "{message}");
    assert_eq!(step_statuses(&reports[0]), ["done", "failed"]);
    assert_eq!(reports[0]["status"], "failed");
    assert!(
        stage.out.alerts().await.iter().any(|a| a.subject.contains("REMEDIATION FAILED")),
        "the partial failure is reported"
    );
    assert!(attached(&stage.iam, "dev-agent").await.is_empty());
    assert!(inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.is_none());

    // Lambda's retry, with IAM healthy again.
    proxy.clear();
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["already_done", "done"]);
    assert_eq!(proxy.seen("DetachRolePolicy"), 1, "the detach was not repeated");
    let written = inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.unwrap();
    assert_eq!(written["Statement"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_iam_throttle_is_retried_with_backoff_within_the_deadline() {
    let (stage, proxy) = faulty_stage().await;
    let findings = admin_finding(&stage, "dev-agent", "agent-run-6").await;
    proxy.inject("ListAttachedRolePolicies", Fault::Throttle, 2);
    proxy.inject("GetRole", Fault::Slow(std::time::Duration::from_millis(800)), 1);
    let started = std::time::Instant::now();
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert_eq!(proxy.seen("ListAttachedRolePolicies"), 3, "two throttled attempts, then success");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "well within the function's timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_is_reported_with_the_missing_permission() {
    let (stage, proxy) = faulty_stage().await;
    let findings = admin_finding(&stage, "dev-agent", "agent-run-7").await;
    proxy.inject("DetachRolePolicy", Fault::Deny, usize::MAX);
    let (run, reports) = stage.remediate(findings, &[]).await;
    // Retrying cannot grant a permission: the invocation succeeds and the report says what is missing.
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["failed", "done"]);
    let detail = reports[0]["steps"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("lacks permission `iam:DetachRolePolicy`"), "{detail}");
    assert_eq!(reports[0]["steps"][0]["retryable"], false);
    assert_eq!(proxy.seen("DetachRolePolicy"), 1, "a denial is not retried");
    assert_eq!(attached(&stage.iam, "dev-agent").await, [ADMIN]);
}
