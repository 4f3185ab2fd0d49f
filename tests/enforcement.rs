//! The hostile suite: the response path must not be usable against its owners. Each test is an attack (or an
//! accident) a member-account principal could stage, and checks that trailguard repels it: the real `detect` and
//! `remediate` binaries through the Lambda Runtime API, against moto with the real SDK.
//!
//! Where moto cannot play AWS's part (it accepts `aws.*` sources in `PutEvents` and enforces no bus, key or
//! function policy), the test hands the binaries the event exactly as AWS would deliver it, and the policy
//! documents that stop the attack on AWS are checked by `make infra-check` with trailguard's own analyzer.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use harness::aws::{attached, create_default_version, create_policy, create_role, create_user_with_key, inline_policy};
use harness::events::{ago, api_call, iam_user, put_role_policy, session};
use harness::faults::{Fault, FaultProxy};
use harness::moto::HOME_ACCOUNT;
use harness::stage::{attach_event, ok, step_statuses, Stage, ADMIN, REVOCATIONS};
use serde_json::{json, Value};
use time::Duration;
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::PolicyDocument;

const MEMBER: &str = "111122223333";

/// An agent session making `version` of `arn` (with `document`) the default.
fn new_default_version(role_id: &str, arn: &str, document: &Value, version: &str, id: &str) -> Value {
    api_call(
        session(HOME_ACCOUNT, "platform-agent", role_id, "agent-ci"),
        "iam.amazonaws.com",
        "CreatePolicyVersion",
        json!({"policyArn": arn, "policyDocument": document.to_string(), "setAsDefault": true}),
        json!({"policyVersion": {"versionId": version, "isDefaultVersion": true}}),
        HOME_ACCOUNT,
        id,
    )
}

fn findings_of(bus: &[Value]) -> Vec<Value> {
    bus.iter().filter(|e| e["detail-type"] == "Trailguard Finding").cloned().collect()
}

/// An agent session creating a user: the general agent rule's finding, whose one step revokes the session.
fn agent_creates_user(role: &str, role_id: &str, session_name: &str, id: &str) -> Value {
    api_call(
        session(HOME_ACCOUNT, role, role_id, session_name),
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": format!("backdoor-{id}")}),
        Value::Null,
        HOME_ACCOUNT,
        id,
    )
}

// ── Only real CloudTrail events reach the detector ──────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_cloudtrail_event_is_paged_once_an_hour_per_sender_and_never_judged() {
    let stage = Stage::new().await;
    let victim = create_role(&stage.iam, "payments", "/").await;
    stage.iam.attach_role_policy().role_name("payments").policy_arn(ADMIN).send().await.unwrap();
    // A member-account principal with events:PutEvents imitates an agent attaching admin to `payments`, hoping
    // trailguard revokes it. AWS refuses `aws.*` sources from PutEvents, so the forgery carries another source.
    let mut forged = attach_event(session(HOME_ACCOUNT, "payments", &victim, "agent-x"), "payments", ADMIN, "f1");
    forged["source"] = json!("aws-iam.custom");
    forged["account"] = json!(MEMBER);
    let mut again = forged.clone();
    again["detail"]["eventID"] = json!("f2");

    let (run, findings) = stage.detect(vec![forged, again], &[]).await;
    let outcomes = ok(&run);
    assert!(outcomes.iter().all(|o| o["forged"].is_string()), "{outcomes:?}");
    assert_eq!(findings.len(), 1, "one page per sending account and hour: {findings:?}");
    let finding = &findings[0]["detail"];
    assert_eq!(finding["rule"], "guardrail-tampering");
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["title"], format!("Forged CloudTrail event from account {MEMBER}"));
    assert_eq!(finding["remediable"], false, "a forgery is never remediated");
    assert_eq!(attached(&stage.iam, "payments").await, [ADMIN], "nothing judged, nothing touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aws_envelope_for_another_account_than_the_record_is_a_forgery() {
    let stage = Stage::new().await;
    let victim = create_role(&stage.iam, "payments", "/").await;
    // Only a direct invocation can hand the detector an `aws.*` envelope; its account must still be the record's.
    let mut event = attach_event(session(HOME_ACCOUNT, "payments", &victim, "agent-x"), "payments", ADMIN, "f3");
    event["account"] = json!(MEMBER);
    let (run, findings) = stage.detect(vec![event], &[]).await;
    assert!(ok(&run)[0]["forged"].as_str().unwrap().contains("recipientAccountId"));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["detail"]["rule"], "guardrail-tampering");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_record_invoked_directly_is_refused() {
    let stage = Stage::new().await;
    let victim = create_role(&stage.iam, "payments", "/").await;
    let event = attach_event(session(HOME_ACCOUNT, "payments", &victim, "agent-x"), "payments", ADMIN, "f4");
    let run = stage.run("detect", vec![event["detail"].clone()], &[]).await;
    let error = run.invocations[0].result.clone().unwrap_err();
    assert!(error["errorMessage"].as_str().unwrap().contains("not an EventBridge event"), "{error}");
    assert!(stage.out.bus_events().await.is_empty());
}

// ── Only real findings reach the remediator ─────────────────────────────────────────────────────────────────

/// A genuine, signed finding for an agent session attaching admin to `dev-agent`.
async fn genuine_finding(stage: &Stage) -> (String, Value) {
    let role_id = create_role(&stage.iam, "dev-agent", "/").await;
    stage.iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    let event = attach_event(session(HOME_ACCOUNT, "dev-agent", &role_id, "agent-run-1"), "dev-agent", ADMIN, "g1");
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings.len(), 1);
    assert!(findings[0]["detail"]["authentication"]["mac"].is_string(), "the detector signs its findings");
    (role_id, findings[0].clone())
}

async fn refused(stage: &Stage, event: Value) -> (Value, Vec<Value>) {
    let (run, bus) = stage.remediate_all(vec![event], &[]).await;
    let outcome = ok(&run).remove(0);
    assert!(outcome["refused"].is_string(), "{outcome}");
    assert!(!bus.iter().any(|e| e["detail-type"] == "Trailguard Remediation"), "no step was even planned");
    (outcome, bus)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finding_whose_target_was_edited_after_signing_is_refused_and_reported() {
    let stage = Stage::new().await;
    let (_, mut finding) = genuine_finding(&stage).await;
    let victim = create_role(&stage.iam, "payments", "/").await;
    stage.iam.attach_role_policy().role_name("payments").policy_arn(ADMIN).send().await.unwrap();
    for step in finding["detail"]["remediation"].as_array_mut().unwrap() {
        step["role_name"] = json!("payments");
        if step.get("principal_name").is_some() {
            step["principal_name"] = json!("payments");
        }
        if step.get("user_id").is_some() {
            step["user_id"] = json!(format!("{victim}:prod"));
        }
    }
    let (outcome, bus) = refused(&stage, finding).await;
    assert_eq!(outcome["refused"], "unauthenticated");
    assert_eq!(attached(&stage.iam, "payments").await, [ADMIN]);
    assert!(inline_policy(&stage.iam, "payments", REVOCATIONS).await.is_none());
    let reported = findings_of(&bus);
    assert_eq!(reported.len(), 1, "the refusal is reported: {bus:?}");
    assert!(reported[0]["detail"]["title"].as_str().unwrap().contains("refused"));
    assert!(stage.out.alerts().await.iter().any(|a| a.subject.contains("refused")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crafted_unsigned_finding_put_on_the_bus_is_refused() {
    let stage = Stage::new().await;
    let (_, genuine) = genuine_finding(&stage).await;
    let mut crafted = genuine.clone();
    crafted["detail"].as_object_mut().unwrap().remove("authentication");
    let (outcome, _) = refused(&stage, crafted).await;
    assert_eq!(outcome["refused"], "unauthenticated");
    let mut other_key = genuine;
    other_key["detail"]["authentication"]["mac"] = json!("00".repeat(32));
    let (outcome, _) = refused(&stage, other_key).await;
    assert_eq!(outcome["refused"], "unauthenticated");
    assert_eq!(attached(&stage.iam, "dev-agent").await, [ADMIN], "nothing touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_finding_invoked_directly_and_an_archive_replay_are_refused() {
    let stage = Stage::new().await;
    let (_, genuine) = genuine_finding(&stage).await;
    let (outcome, _) = refused(&stage, genuine["detail"].clone()).await;
    assert_eq!(outcome["refused"], "not-a-finding-event");
    let mut replay = genuine.clone();
    replay["replay-name"] = json!("last-week");
    let (outcome, _) = refused(&stage, replay).await;
    assert_eq!(outcome["refused"], "replayed");
    assert_eq!(attached(&stage.iam, "dev-agent").await, [ADMIN], "nothing touched");
    // The genuine event itself still works.
    let (run, reports) = stage.remediate(vec![genuine], &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
}

// ── No exemption by name ────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn a_role_named_like_trailguards_own_is_judged_and_revoked_like_any_other() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "trailguard-remediate-evil", "/").await;
    stage.iam.attach_role_policy().role_name("trailguard-remediate-evil").policy_arn(ADMIN).send().await.unwrap();
    let event = attach_event(
        session(HOME_ACCOUNT, "trailguard-remediate-evil", &role_id, "agent-1"),
        "trailguard-remediate-evil",
        ADMIN,
        "n1",
    );
    let own = "arn:aws:iam::123456789012:role/trailguard-remediate";
    let (_, findings) = stage.detect(vec![event], &[("OWN_ROLE_ARNS", own)]).await;
    let rules: Vec<&str> = findings.iter().map(|f| f["detail"]["rule"].as_str().unwrap()).collect();
    // Judged like anyone's call; its name only widens detection (a change to a trailguard-named role).
    assert_eq!(rules, ["admin-policy-grant", "guardrail-tampering"], "the look-alike's call is judged");
    let (run, reports) = stage.remediate(findings, &[("OWN_ROLE_ARNS", own)]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"], "and remediated: {}", reports[0]);
    assert!(attached(&stage.iam, "trailguard-remediate-evil").await.is_empty());
    assert!(inline_policy(&stage.iam, "trailguard-remediate-evil", REVOCATIONS).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_role_with_trailguards_name_is_critical_tampering_unless_a_deployment_role_did_it() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "dev-agent", "/").await;
    let deployer = create_role(&stage.iam, "deploy", "/").await;
    let create = |identity: Value, id: &str| {
        api_call(
            identity,
            "iam.amazonaws.com",
            "CreateRole",
            json!({"roleName": "trailguard-member", "assumeRolePolicyDocument": "{}"}),
            Value::Null,
            HOME_ACCOUNT,
            id,
        )
    };
    let deploy_arn = "arn:aws:iam::123456789012:role/deploy";
    let mut by_cloudformation = session(HOME_ACCOUNT, "dev-agent", &agent, "agent-1");
    by_cloudformation["invokedBy"] = json!("cloudformation.amazonaws.com");
    let events =
        vec![create(by_cloudformation, "t1"), create(session(HOME_ACCOUNT, "deploy", &deployer, "pipeline"), "t2")];
    let (_, findings) = stage.detect(events, &[("DEPLOYMENT_ROLE_ARNS", deploy_arn)]).await;
    let tampering: Vec<&Value> = findings.iter().filter(|f| f["detail"]["rule"] == "guardrail-tampering").collect();
    assert_eq!(tampering.len(), 1, "{findings:?}");
    assert_eq!(tampering[0]["detail"]["severity"], "critical");
    assert_eq!(tampering[0]["detail"]["event_id"], "t1", "invokedBy CloudFormation exempts nobody");
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_principals_match_any_case_and_cover_rollback() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "platform-agent", "/").await;
    create_role(&stage.iam, "break-glass-admin", "/").await;
    let v1 =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
    let v2 = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let arn = create_policy(&stage.iam, "shared", &v1).await;
    stage.iam.attach_role_policy().role_name("break-glass-admin").policy_arn(&arn).send().await.unwrap();
    create_default_version(&stage.iam, &arn, &v2).await;
    let event = new_default_version(&agent, &arn, &v2, "v2", "p1");
    let config = r#"{"remediation": {"protected_principals": ["BREAK-GLASS-*"]}}"#;
    let (_, findings) = stage.detect(vec![event], &[("TRAILGUARD_CONFIG", config)]).await;
    let (run, reports) = stage.remediate(findings, &[("TRAILGUARD_CONFIG", config)]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0])[0], "skipped", "{}", reports[0]);
    assert!(reports[0]["steps"][0]["detail"].as_str().unwrap().contains("break-glass-admin"));
    let policy = stage.iam.get_policy().policy_arn(&arn).send().await.unwrap().policy.unwrap();
    assert_eq!(policy.default_version_id(), Some("v2"), "a protected role's policy is not rolled back");
}

// ── No lost, stale or misdirected action ────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_revocations_on_one_role_all_land() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "swarm-agent", "/").await;
    let events: Vec<Value> =
        (1..=5).map(|i| agent_creates_user("swarm-agent", &role_id, &format!("agent-{i}"), &format!("c{i}"))).collect();
    let (_, findings) = stage.detect(events, &[]).await;
    assert_eq!(findings.len(), 5);
    let mut it = findings.into_iter();
    let mut next = || vec![it.next().unwrap()];
    // Five remediators at once, as Lambda runs them, each revoking one session of the same role.
    let (a, b, c, d, e) = tokio::join!(
        stage.run("remediate", next(), &[]),
        stage.run("remediate", next(), &[]),
        stage.run("remediate", next(), &[]),
        stage.run("remediate", next(), &[]),
        stage.run("remediate", next(), &[]),
    );
    for run in [a, b, c, d, e] {
        assert_eq!(ok(&run)[0]["status"], "done", "{}", run.logs);
    }
    let written = inline_policy(&stage.iam, "swarm-agent", REVOCATIONS).await.unwrap();
    let doc = PolicyDocument::from_value(&written).unwrap();
    for i in 1..=5 {
        let request = Request::new("iam:CreateUser", "*")
            .with("aws:userid", &format!("{role_id}:agent-{i}"))
            .with("aws:TokenIssueTime", &ago(Duration::minutes(5)));
        assert!(denies(&doc, &request), "session agent-{i} is revoked: {written}");
    }
}

/// A role already carrying `size` characters of other inline policies.
async fn crowded_role(stage: &Stage, name: &str, size: usize) -> String {
    let role_id = create_role(&stage.iam, name, "/").await;
    let filler = "x".repeat(size - 120);
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Filler", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{filler}")}]});
    let len = doc.to_string().len();
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Filler", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{}", "x".repeat(size - 120 + size - len))}]});
    assert_eq!(doc.to_string().len(), size);
    stage
        .iam
        .put_role_policy()
        .role_name(name)
        .policy_name("app")
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
    role_id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_near_iams_size_limit_is_revoked_within_it_and_the_alert_says_how() {
    let stage = Stage::new().await;
    // 10,000 of IAM's 10,240 characters taken: one session's entry does not fit, every older session's does.
    let role_id = crowded_role(&stage, "busy-agent", 10_000).await;
    let (_, findings) = stage.detect(vec![agent_creates_user("busy-agent", &role_id, "agent-1", "s1")], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
    let alerts = stage.out.alerts().await;
    let follow_up = alerts.iter().find(|a| a.subject.starts_with("trailguard remediated")).unwrap();
    assert!(follow_up.subject.contains("EVERY older session"), "first line says what was done: {}", follow_up.subject);
    let written = inline_policy(&stage.iam, "busy-agent", REVOCATIONS).await.unwrap();
    assert!(written.to_string().len() + 10_000 <= 10_240);

    // 10,100 taken: not even that fits. Nothing is written past IAM's limit, and on-call is told in the subject.
    let role_id = crowded_role(&stage, "full-agent", 10_100).await;
    let (_, findings) = stage.detect(vec![agent_creates_user("full-agent", &role_id, "agent-1", "s2")], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["failed"]);
    let alerts = stage.out.alerts().await;
    let failed = alerts.iter().find(|a| a.subject.starts_with("trailguard REMEDIATION FAILED")).unwrap();
    assert!(failed.subject.contains("NOT revoked"), "{}", failed.subject);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_profile_session_is_quarantined_not_bounded_by_issue_time() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "ci-agent-host", "/").await;
    let mut identity = session(HOME_ACCOUNT, "ci-agent-host", &role_id, "i-0abc123def4567890");
    identity["sessionContext"]["ec2RoleDelivery"] = json!("2.0");
    let mut event = agent_creates_user("ci-agent-host", &role_id, "i-0abc123def4567890", "q1");
    event["detail"]["userIdentity"] = identity;
    let config = r#"{"agents": {"role": ["ci-agent-*"]}}"#;
    let (_, findings) = stage.detect(vec![event], &[("TRAILGUARD_CONFIG", config)]).await;
    assert_eq!(findings.len(), 1);
    let (run, reports) = stage.remediate(findings, &[("TRAILGUARD_CONFIG", config)]).await;
    ok(&run);
    assert!(reports[0]["steps"][0]["detail"].as_str().unwrap().contains("quarantined"), "{}", reports[0]);
    let written = inline_policy(&stage.iam, "ci-agent-host", REVOCATIONS).await.unwrap();
    let doc = PolicyDocument::from_value(&written).unwrap();
    let user_id = format!("{role_id}:i-0abc123def4567890");
    // Rotated credentials: issued after the revocation, same aws:userid. Still denied, until the expiry.
    let rotated = |at: &str| {
        Request::new("s3:GetObject", "*")
            .with("aws:userid", &user_id)
            .with("aws:TokenIssueTime", &ago(-Duration::hours(1)))
            .with("aws:CurrentTime", at)
    };
    assert!(denies(&doc, &rotated(&ago(-Duration::hours(2)))), "rotated credentials stay denied: {written}");
    assert!(!denies(&doc, &rotated(&ago(-Duration::hours(25)))), "the quarantine ends at its expiry");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trust_statement_iam_rewrote_is_still_found_and_removed() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "partner-agent", "/").await;
    create_role(&stage.iam, "reports", "/").await;
    // The event wrote an account id in a list; IAM stores and returns `arn:aws:iam::ID:root` as a plain string.
    let written = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["999988887777"]},
        "Action": ["sts:AssumeRole"]}]});
    let stored = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole"}]});
    stage
        .iam
        .update_assume_role_policy()
        .role_name("reports")
        .policy_document(stored.to_string())
        .send()
        .await
        .unwrap();
    let event = api_call(
        session(HOME_ACCOUNT, "partner-agent", &agent, "agent-sync"),
        "iam.amazonaws.com",
        "UpdateAssumeRolePolicy",
        json!({"roleName": "reports", "policyDocument": written.to_string()}),
        Value::Null,
        HOME_ACCOUNT,
        "t-rewritten",
    );
    let (_, findings) = stage.detect(vec![event], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0])[0], "done", "not a false `already_done`: {}", reports[0]);
    let role = stage.iam.get_role().role_name("reports").send().await.unwrap().role.unwrap();
    assert!(!role.assume_role_policy_document().unwrap().contains("999988887777"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_an_older_version_that_every_rule_passes_never_a_newer_one() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "platform-agent", "/").await;
    let doc = |statement: Value| json!({"Version": "2012-10-17", "Statement": [statement]});
    let safe = doc(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*"}));
    let passrole = doc(json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}));
    let admin = doc(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
    let arn = create_policy(&stage.iam, "ci", &safe).await;
    let version = |d: &Value, default: bool| {
        stage.iam.create_policy_version().policy_arn(&arn).policy_document(d.to_string()).set_as_default(default).send()
    };
    version(&passrole, true).await.unwrap(); // v2: flagged by passrole-grant, not by the admin rule
    version(&admin, true).await.unwrap(); // v3: the offending version
    version(&safe, false).await.unwrap(); // v4: newer than the offence, never restored
    let event = new_default_version(&agent, &arn, &admin, "v3", "r1");
    let (_, findings) = stage.detect(vec![event], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0])[0], "done", "{}", reports[0]);
    let policy = stage.iam.get_policy().policy_arn(&arn).send().await.unwrap().policy.unwrap();
    assert_eq!(policy.default_version_id(), Some("v1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_safe_earlier_version_the_policy_is_detached_everywhere_and_the_report_says_so() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "platform-agent", "/").await;
    create_role(&stage.iam, "app", "/").await;
    let doc = |statement: Value| json!({"Version": "2012-10-17", "Statement": [statement]});
    let passrole = doc(json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}));
    let admin = doc(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
    let arn = create_policy(&stage.iam, "ci", &passrole).await;
    stage.iam.attach_role_policy().role_name("app").policy_arn(&arn).send().await.unwrap();
    create_default_version(&stage.iam, &arn, &admin).await;
    let event = new_default_version(&agent, &arn, &admin, "v2", "r2");
    let (_, findings) = stage.detect(vec![event], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    let step = &reports[0]["steps"][0];
    assert_eq!(step["status"], "done", "{}", reports[0]);
    assert!(step["detail"].as_str().unwrap().contains("no earlier version is safe"), "{step}");
    assert!(attached(&stage.iam, "app").await.is_empty(), "v1 passes roles anywhere: detached instead");
    let policy = stage.iam.get_policy().policy_arn(&arn).send().await.unwrap().policy.unwrap();
    assert_eq!(policy.default_version_id(), Some("v2"), "no version is restored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_never_deactivated_on_an_old_finding() {
    let stage = Stage::new().await;
    let key = create_user_with_key(&stage.iam, "agent-bot", 0).await;
    let identity = iam_user("agent-bot", &key);
    let mut event = api_call(
        identity,
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": "shadow"}),
        Value::Null,
        HOME_ACCOUNT,
        "k1",
    );
    // Redriven two hours later: someone may have re-enabled the key on purpose since.
    event["detail"]["eventTime"] = json!(ago(Duration::hours(2)));
    let (_, findings) = stage.detect(vec![event], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    // The key stays as it is; the temporary credentials derived before the event may still be valid (up to 36
    // hours), so they are denied, as a role session is revoked while its credentials can live.
    assert_eq!(step_statuses(&reports[0]), ["skipped", "done"], "{}", reports[0]);
    assert!(reports[0]["steps"][0]["detail"].as_str().unwrap().starts_with("stale, nothing done"));
    let keys = stage.iam.list_access_keys().user_name("agent-bot").send().await.unwrap();
    assert_eq!(keys.access_key_metadata()[0].status(), Some(&aws_sdk_iam::types::StatusType::Active));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redriven_old_finding_does_not_undo_a_later_legitimate_change() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "dev-agent", "/").await;
    create_role(&stage.iam, "app", "/").await;
    let broad =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]});
    let put = |id: &str| {
        let mut event = put_role_policy(
            session(HOME_ACCOUNT, "dev-agent", &agent, "agent-7"),
            HOME_ACCOUNT,
            "app",
            "deploy",
            &broad,
            id,
        );
        event["detail"]["eventTime"] = json!(ago(Duration::hours(3)));
        event
    };
    // Three hours later a person has replaced the policy with one they meant (still passing any role, with a
    // condition trailguard does not count): the old finding must not delete it.
    let later = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
        "Condition": {"StringLike": {"iam:AssociatedResourceArn": "arn:aws:ec2:*"}}}]});
    stage
        .iam
        .put_role_policy()
        .role_name("app")
        .policy_name("deploy")
        .policy_document(later.to_string())
        .send()
        .await
        .unwrap();
    let (_, findings) = stage.detect(vec![put("old-1")], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    let steps = reports[0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "skipped", "{}", reports[0]);
    assert!(steps[0]["detail"].as_str().unwrap().starts_with("stale"));
    assert_eq!(steps[1]["status"], "already_done", "its credentials have expired: {}", reports[0]);
    assert!(inline_policy(&stage.iam, "app", "deploy").await.is_some(), "the later policy stays");

    // The same old finding while the policy is still exactly what the event wrote: that state is undone.
    stage
        .iam
        .put_role_policy()
        .role_name("app")
        .policy_name("deploy")
        .policy_document(broad.to_string())
        .send()
        .await
        .unwrap();
    let (_, findings) = stage.detect(vec![put("old-2")], &[]).await;
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(reports[0]["steps"][0]["status"], "done", "{}", reports[0]);
    assert!(inline_policy(&stage.iam, "app", "deploy").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_account_sessions_role_is_revoked_in_its_own_account_after_its_id_is_checked() {
    let stage = Stage::new().await;
    let member = aws_sdk_iam::Client::new(&stage.moto.sdk_in_account(MEMBER).await);
    create_role(&member, "trailguard-member", "/").await;
    let agent = create_role(&member, "dev-agent", "/").await;
    create_role(&stage.iam, "dev-agent", "/").await; // same name in the home account: must stay untouched
                                                     // The member account's agent session creates a user in the home account (a cross-account call).
    let mut event = agent_creates_user("dev-agent", &agent, "agent-x", "x1");
    event["detail"]["userIdentity"] = session(MEMBER, "dev-agent", &agent, "agent-x");
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings[0]["detail"]["account"], HOME_ACCOUNT);
    let external = [("EXTERNAL_ID", "trailguard-test-external-id")];
    let (run, reports) = stage.remediate(findings.clone(), &external).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
    assert!(inline_policy(&member, "dev-agent", REVOCATIONS).await.is_some(), "revoked where the role lives");
    assert!(inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.is_none());

    // The role deleted and re-created under the same name: a new id, not the session's. Nothing is written.
    member.delete_role_policy().role_name("dev-agent").policy_name(REVOCATIONS).send().await.unwrap();
    member.delete_role().role_name("dev-agent").send().await.unwrap();
    create_role(&member, "dev-agent", "/").await;
    let (run, reports) = stage.remediate(findings, &external).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["already_done"], "{}", reports[0]);
    assert!(inline_policy(&member, "dev-agent", REVOCATIONS).await.is_none(), "no deny on someone else's role");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_removed_is_delivered_before_the_removal() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "dev-agent", "/").await;
    create_role(&stage.iam, "app", "/").await;
    let broad =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]});
    stage
        .iam
        .put_role_policy()
        .role_name("app")
        .policy_name("deploy")
        .policy_document(broad.to_string())
        .send()
        .await
        .unwrap();
    let event = put_role_policy(
        session(HOME_ACCOUNT, "dev-agent", &agent, "agent-7"),
        HOME_ACCOUNT,
        "app",
        "deploy",
        &broad,
        "i1",
    );
    let (_, findings) = stage.detect(vec![event], &[]).await;
    // The bus refuses the intent: nothing may be removed, and the step fails retryably.
    let proxy = FaultProxy::start(stage.moto.port);
    let mut faulty = Stage { moto: stage.moto, out: stage.out, iam: stage.iam, endpoint: Some(proxy.endpoint()) };
    proxy.inject("PutEvents", Fault::Unavailable, usize::MAX);
    let run = faulty.run("remediate", findings.clone(), &[]).await;
    assert!(run.invocations[0].result.is_err());
    assert!(inline_policy(&faulty.iam, "app", "deploy").await.is_some(), "not removed without its record");
    proxy.clear();
    faulty.endpoint = None;
    let (run, bus) = faulty.remediate_all(findings, &[]).await;
    ok(&run);
    let intent = bus.iter().find(|e| e["detail-type"] == "Trailguard Remediation Intent").expect("an intent");
    assert_eq!(intent["detail"]["about_to"]["removed"], broad, "the document is on the bus");
    assert!(inline_policy(&faulty.iam, "app", "deploy").await.is_none());
}

// ── Unknown is never silence ────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_cannot_be_read_is_a_finding_not_a_log_line() {
    let stage = Stage::new().await;
    let agent = create_role(&stage.iam, "dev-agent", "/").await;
    let gone = "arn:aws:iam::123456789012:policy/deleted-before-the-look-up";
    let (_, findings) = stage
        .detect(vec![attach_event(session(HOME_ACCOUNT, "dev-agent", &agent, "agent-1"), "dev-agent", gone, "u1")], &[])
        .await;
    let rules: Vec<&str> = findings.iter().map(|f| f["detail"]["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"grant-unjudged"), "{rules:?}");
    let unjudged = findings.iter().find(|f| f["detail"]["rule"] == "grant-unjudged").unwrap();
    assert_eq!(unjudged["detail"]["severity"], "high", "high for an agent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_whose_member_role_cannot_be_assumed_pages_once_an_hour() {
    let stage = Stage::new().await;
    // Only STS goes through the fault proxy, which denies AssumeRole as a member account whose role is gone would.
    let proxy = FaultProxy::start(stage.moto.port);
    proxy.inject("AssumeRole", Fault::Deny, usize::MAX);
    let sts = proxy.endpoint();
    let member = "arn:aws:iam::111122223333:policy/their-policy";
    let mut events = Vec::new();
    for id in ["b1", "b2"] {
        let mut event =
            attach_event(session(MEMBER, "dev-agent", "AROAEXAMPLEMEMBER", "agent-1"), "dev-agent", member, id);
        event["account"] = json!(MEMBER);
        event["detail"]["recipientAccountId"] = json!(MEMBER);
        events.push(event);
    }
    let (run, findings) = stage.detect(events, &[("EXTERNAL_ID", "x"), ("AWS_ENDPOINT_URL_STS", &sts)]).await;
    ok(&run);
    assert!(proxy.seen("AssumeRole") >= 1, "the member role was tried");
    let titles: Vec<&str> = findings.iter().map(|f| f["detail"]["title"].as_str().unwrap()).collect();
    let blind = titles.iter().filter(|t| t.contains("blind in account 111122223333")).count();
    assert_eq!(blind, 1, "one page per account and hour: {titles:?}");
    assert_eq!(findings.iter().filter(|f| f["detail"]["rule"] == "grant-unjudged").count(), 2, "{titles:?}");
}

// ── A forged agent tag ──────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn a_role_tagged_as_an_agent_by_an_attacker_pages_and_its_workload_is_not_revoked() {
    let stage = Stage::new().await;
    let victim = create_role(&stage.iam, "payments", "/").await;
    let attacker = create_role(&stage.iam, "ops", "/").await;
    // Mallory holds iam:TagRole on `payments` and marks it as an agent's role, hoping trailguard revokes it.
    let agent_tag = aws_sdk_iam::types::Tag::builder().key("trailguard:agent").value("true").build().unwrap();
    stage.iam.tag_role().role_name("payments").tags(agent_tag).send().await.unwrap();
    let tag_event = api_call(
        session(HOME_ACCOUNT, "ops", &attacker, "mallory"),
        "iam.amazonaws.com",
        "TagRole",
        json!({"roleName": "payments", "tags": [{"key": "trailguard:agent", "value": "true"}]}),
        Value::Null,
        HOME_ACCOUNT,
        "tag1",
    );
    // The payments workload's next IAM write, which an agent's session would be revoked for.
    let workload_call = agent_creates_user("payments", &victim, "worker-1", "w1");
    let (_, findings) = stage.detect(vec![tag_event, workload_call], &[]).await;
    let rule_of = |f: &Value| f["detail"]["rule"].as_str().unwrap().to_owned();
    let page = findings.iter().find(|f| rule_of(f) == "agent-tag-tampering").expect("the tagging pages");
    assert_eq!(page["detail"]["severity"], "critical");
    assert_eq!(page["detail"]["remediable"], false, "alert only");
    let call = findings.iter().find(|f| rule_of(f) == "agent-sensitive-call").expect("the call is still reported");
    assert_eq!(call["detail"]["actor"]["agent"]["signal"], "role_tag");
    let notes = call["detail"]["evidence"]["notes"].to_string();
    assert!(notes.contains("Not remediated as an agent") && notes.contains("iam:TagRole"), "{notes}");

    let (run, reports) = stage.remediate(findings.clone(), &[]).await;
    ok(&run);
    let report = reports.iter().find(|r| r["rule"] == "agent-sensitive-call").expect("a report for the call");
    assert!(step_statuses(report).iter().all(|s| s == "skipped"), "{report}");
    assert!(report.to_string().contains("trust_role_tags"), "the skip says why: {report}");
    assert!(inline_policy(&stage.iam, "payments", REVOCATIONS).await.is_none(), "the workload keeps working");

    // Where the operator says the tag keys are protected (the SCP), a role tag is trusted as any other signal.
    let trusting = [("TRAILGUARD_CONFIG", r#"{"remediation":{"trust_role_tags":true}}"#)];
    let (_, mut again) = stage.detect(vec![agent_creates_user("payments", &victim, "worker-1", "w2")], &trusting).await;
    again.retain(|f| rule_of(f) == "agent-sensitive-call");
    assert_eq!(again.len(), 1);
    let (run, reports) = stage.remediate(again, &trusting).await;
    ok(&run);
    assert_eq!(step_statuses(reports.last().unwrap()), ["done"], "{:?}", reports.last());
    assert!(inline_policy(&stage.iam, "payments", REVOCATIONS).await.is_some());
}

// ── Containment of users and federated users ────────────────────────────────────────────────────────────────

async fn user_policy(stage: &Stage, user: &str) -> Option<Value> {
    let out = stage.iam.get_user_policy().user_name(user).policy_name(REVOCATIONS).send().await.ok()?;
    trailguard_core::policy::document::decode_json_text(out.policy_document()).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_users_key_is_deactivated_and_its_derived_credentials_denied_within_the_users_budget() {
    let stage = Stage::new().await;
    let key = create_user_with_key(&stage.iam, "agent-bot", 0).await;
    let crowded_key = create_user_with_key(&stage.iam, "agent-crowded", 2_000).await;
    let call = |user: &str, key: &str, id: &str| {
        api_call(
            iam_user(user, key),
            "iam.amazonaws.com",
            "CreateUser",
            json!({"userName": format!("backdoor-{id}")}),
            Value::Null,
            HOME_ACCOUNT,
            id,
        )
    };
    let (_, findings) =
        stage.detect(vec![call("agent-bot", &key, "u1"), call("agent-crowded", &crowded_key, "u2")], &[]).await;
    assert_eq!(findings.len(), 2, "{findings:?}");
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    let report_of =
        |user: &str| reports.iter().find(|r| r.to_string().contains(&format!("user {user}"))).unwrap().clone();

    let roomy = report_of("agent-bot");
    assert_eq!(step_statuses(&roomy), ["done", "done"], "{roomy}");
    let keys = stage.iam.list_access_keys().user_name("agent-bot").send().await.unwrap().access_key_metadata;
    assert_eq!(keys[0].status.as_ref().unwrap().as_str(), "Inactive");
    let deny = user_policy(&stage, "agent-bot").await.expect("a deny on the user");
    let statement = &deny["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert!(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string(), "{deny}");
    assert!(statement["Condition"].get("StringEquals").is_none(), "every derived credential, not one session");

    // 2,000 of the user's 2,048 characters are taken: the step fails loudly, the key is still deactivated.
    let crowded = report_of("agent-crowded");
    assert_eq!(step_statuses(&crowded), ["done", "failed"], "{crowded}");
    assert!(crowded["steps"][1]["detail"].as_str().unwrap().starts_with("NOT REVOKED"), "{crowded}");
    assert!(crowded["steps"][1]["detail"].as_str().unwrap().contains("2048"), "{crowded}");
    assert!(user_policy(&stage, "agent-crowded").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_agent_is_denied_on_its_issuing_user_for_its_own_userid_only() {
    let stage = Stage::new().await;
    stage.iam.create_user().user_name("broker").send().await.unwrap();
    // A federation token minted by `broker`, calling through AWS's MCP server (an agent by default).
    let identity = json!({
        "type": "FederatedUser", "principalId": format!("{HOME_ACCOUNT}:triage"),
        "arn": format!("arn:aws:sts::{HOME_ACCOUNT}:federated-user/triage"), "accountId": HOME_ACCOUNT,
        "accessKeyId": "ASIAQNZGKWTB7EXAMPLE",
        "sessionContext": {
            "sessionIssuer": {"type": "IAMUser", "principalId": "AIDAQNZGKWTB6EXAMPLE",
                              "arn": format!("arn:aws:iam::{HOME_ACCOUNT}:user/broker"), "accountId": HOME_ACCOUNT,
                              "userName": "broker"},
            "attributes": {"creationDate": ago(Duration::minutes(5)), "mfaAuthenticated": "false"}
        }
    });
    let mut event = api_call(
        identity,
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": "backdoor-f"}),
        Value::Null,
        HOME_ACCOUNT,
        "fed1",
    );
    event["detail"]["additionalEventData"] = json!({"CalledViaAWSMCP": "aws-mcp.amazonaws.com"});
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["detail"]["actor"]["agent"]["signal"], "mcp");
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
    let deny = user_policy(&stage, "broker").await.expect("a deny on the issuing user");
    let condition = &deny["Statement"][0]["Condition"];
    assert_eq!(condition["StringEquals"]["aws:userid"], format!("{HOME_ACCOUNT}:triage"), "only that federated user");
    assert!(condition["DateLessThan"]["aws:TokenIssueTime"].is_string());
}

// ── IAM Identity Center sessions: a deny in the permission set, through the optional sso-admin role ─────────

const SSO_ROLE: &str = "AWSReservedSSO_AgentAccess_0123abcd";
const SSO_ADMIN: &str = "arn:aws:iam::123456789012:role/trailguard-sso-admin";
const OWNERS_STATEMENT: &str = r#"{"Sid":"ReadLogs","Effect":"Allow","Action":"logs:Get*","Resource":"*"}"#;

/// Moto's one Identity Center instance with permission set `AgentAccess` (one hour sessions) holding the owner's
/// inline statement; returns the instance, the permission set and a client.
/// A stage with trailguard's sso-admin role and an Identity Center instance: the stage, the id of the agent's role
/// `SSO_ROLE` (created under `path`), the instance, its permission set and a client.
async fn staged_with_sso_admin(path: &str) -> (Stage, String, String, String, aws_sdk_ssoadmin::Client) {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, SSO_ROLE, path).await;
    create_role(&stage.iam, "trailguard-sso-admin", "/").await;
    let (instance, set, sso) = identity_center(&stage).await;
    (stage, role_id, instance, set, sso)
}

async fn identity_center(stage: &Stage) -> (String, String, aws_sdk_ssoadmin::Client) {
    let sso = aws_sdk_ssoadmin::Client::new(&stage.moto.sdk());
    let instance = sso.list_instances().send().await.unwrap().instances()[0].instance_arn().unwrap().to_owned();
    let set = sso
        .create_permission_set()
        .instance_arn(&instance)
        .name("AgentAccess")
        .session_duration("PT1H")
        .send()
        .await
        .unwrap()
        .permission_set
        .unwrap()
        .permission_set_arn
        .unwrap();
    let policy = format!(r#"{{"Version":"2012-10-17","Statement":[{OWNERS_STATEMENT}]}}"#);
    sso.put_inline_policy_to_permission_set()
        .instance_arn(&instance)
        .permission_set_arn(&set)
        .inline_policy(policy)
        .send()
        .await
        .unwrap();
    (instance, set, sso)
}

async fn set_policy(sso: &aws_sdk_ssoadmin::Client, instance: &str, set: &str) -> Value {
    let out = sso.get_inline_policy_for_permission_set().instance_arn(instance).permission_set_arn(set).send().await;
    serde_json::from_str(out.unwrap().inline_policy().unwrap()).unwrap()
}

/// How many times the permission set was provisioned (moto records each request).
async fn provisionings(sso: &aws_sdk_ssoadmin::Client, instance: &str, set: &str) -> usize {
    let out = sso.list_permission_sets_provisioned_to_account().instance_arn(instance).account_id(HOME_ACCOUNT);
    out.send().await.unwrap().permission_sets().iter().filter(|p| *p == set).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_center_agent_session_is_denied_in_its_permission_set_once() {
    let (stage, role_id, instance, set, sso) = staged_with_sso_admin("/aws-reserved/sso.amazonaws.com/").await;
    let env = [("SSO_ADMIN_ROLE_ARN", SSO_ADMIN)];

    let (_, findings) = stage.detect(vec![agent_creates_user(SSO_ROLE, &role_id, "agent-run-1", "sso1")], &env).await;
    assert_eq!(findings.len(), 1);
    let steps = findings[0]["detail"]["remediation"].as_array().unwrap().clone();
    assert!(steps.iter().any(|s| s["action"] == "deny_sso_user_in_permission_set"), "{steps:?}");
    let notes = findings[0]["detail"]["evidence"]["notes"].to_string();
    assert!(notes.contains("trailguard adds a Deny") && notes.contains(SSO_ADMIN), "{notes}");

    let (_, reports) = stage.remediate(findings.clone(), &env).await;
    let report = &reports[0];
    let sso_step =
        report["steps"].as_array().unwrap().iter().find(|s| s["step"]["action"] == "deny_sso_user_in_permission_set");
    let sso_step = sso_step.unwrap();
    assert_eq!(sso_step["status"], "done", "{report}");
    assert!(sso_step["detail"].as_str().unwrap().contains("re-provisioned to 123456789012"), "{sso_step}");
    // The role itself is Identity Center's and is left alone.
    let revoke = report["steps"].as_array().unwrap().iter().find(|s| s["step"]["action"] == "revoke_session").unwrap();
    assert_eq!(revoke["status"], "skipped", "{revoke}");
    assert!(inline_policy(&stage.iam, SSO_ROLE, REVOCATIONS).await.is_none());

    let policy = set_policy(&sso, &instance, &set).await;
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{policy}");
    assert_eq!(
        statements[0],
        serde_json::from_str::<Value>(OWNERS_STATEMENT).unwrap(),
        "the owner's statement is kept"
    );
    let deny = &statements[1];
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Condition"]["StringEquals"]["aws:userid"], format!("{role_id}:agent-run-1"));
    assert!(deny["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string());
    assert_eq!(provisionings(&sso, &instance, &set).await, 1);

    // A retry (Lambda's, or a redrive) finds the deny in place and provisioned: nothing is written or provisioned.
    let (_, again) = stage.remediate(findings, &env).await;
    let step =
        again[0]["steps"].as_array().unwrap().iter().find(|s| s["step"]["action"] == "deny_sso_user_in_permission_set");
    assert_eq!(step.unwrap()["status"], "already_done", "{}", again[0]);
    assert_eq!(set_policy(&sso, &instance, &set).await, policy);
    assert_eq!(provisionings(&sso, &instance, &set).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_merely_named_like_identity_centers_is_revoked_on_itself_and_its_namesake_set_untouched() {
    // Anyone may name a role so; only Identity Center can put one under /aws-reserved/sso.amazonaws.com/.
    let (stage, role_id, instance, set, sso) = staged_with_sso_admin("/").await;
    let before = set_policy(&sso, &instance, &set).await;
    let env = [("SSO_ADMIN_ROLE_ARN", SSO_ADMIN)];
    let (_, findings) = stage.detect(vec![agent_creates_user(SSO_ROLE, &role_id, "agent-run-1", "sso2")], &env).await;
    let (_, reports) = stage.remediate(findings, &env).await;
    let steps = reports[0]["steps"].as_array().unwrap();
    let by_kind = |kind: &str| steps.iter().find(|s| s["step"]["action"] == kind).unwrap().clone();
    assert_eq!(by_kind("revoke_session")["status"], "done", "{steps:?}");
    assert_eq!(by_kind("deny_sso_user_in_permission_set")["status"], "skipped", "{steps:?}");
    assert!(inline_policy(&stage.iam, SSO_ROLE, REVOCATIONS).await.is_some());
    assert_eq!(set_policy(&sso, &instance, &set).await, before);
    assert_eq!(provisionings(&sso, &instance, &set).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_sso_admin_role_the_steps_are_printed_and_identity_center_is_not_called() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, SSO_ROLE, "/aws-reserved/sso.amazonaws.com/").await;
    let (instance, set, sso) = identity_center(&stage).await;
    let before = set_policy(&sso, &instance, &set).await;
    let (_, findings) = stage.detect(vec![agent_creates_user(SSO_ROLE, &role_id, "agent-run-1", "sso3")], &[]).await;
    let detail = &findings[0]["detail"];
    let kinds: Vec<&str> =
        detail["remediation"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["revoke_session"]);
    let notes = detail["evidence"]["notes"].to_string();
    assert!(notes.contains("Permission sets > `AgentAccess`") && notes.contains("re-provision"), "{notes}");
    let (_, reports) = stage.remediate(findings, &[]).await;
    assert_eq!(step_statuses(&reports[0]), ["skipped"]);
    assert_eq!(set_policy(&sso, &instance, &set).await, before);
    assert_eq!(provisionings(&sso, &instance, &set).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sessions_of_one_permission_set_contained_at_once_both_keep_their_deny() {
    let (stage, role_id, instance, set, sso) = staged_with_sso_admin("/aws-reserved/sso.amazonaws.com/").await;
    let env = [("SSO_ADMIN_ROLE_ARN", SSO_ADMIN)];
    let events = vec![
        agent_creates_user(SSO_ROLE, &role_id, "agent-run-1", "sso4"),
        agent_creates_user(SSO_ROLE, &role_id, "agent-run-2", "sso5"),
    ];
    let (_, findings) = stage.detect(events, &env).await;
    assert_eq!(findings.len(), 2);
    // Two remediator environments at once: PutInlinePolicyToPermissionSet replaces the whole policy, so without
    // the per-permission-set lock one read-merge-write could drop the other's statement.
    let (first, second) = tokio::join!(
        stage.run("remediate", vec![findings[0].clone()], &env),
        stage.run("remediate", vec![findings[1].clone()], &env)
    );
    ok(&first);
    ok(&second);
    let policy = set_policy(&sso, &instance, &set).await;
    let denied: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Condition"]["StringEquals"]["aws:userid"].as_str())
        .collect();
    assert_eq!(denied.len(), 2, "{policy}");
    for session in ["agent-run-1", "agent-run-2"] {
        assert!(denied.contains(&format!("{role_id}:{session}").as_str()), "{policy}");
    }
    assert_eq!(policy["Statement"][0], serde_json::from_str::<Value>(OWNERS_STATEMENT).unwrap());
    assert_eq!(provisionings(&sso, &instance, &set).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_set_without_room_is_left_whole_and_on_call_is_told() {
    let (stage, role_id, instance, set, sso) = staged_with_sso_admin("/aws-reserved/sso.amazonaws.com/").await;
    // The owner's policy takes 10,100 of IAM's 10,240 characters: one more statement cannot fit.
    let resource = format!("arn:aws:s3:::{}", "x".repeat(10_100 - 107));
    let crowded = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Big", "Effect": "Allow",
        "Action": "s3:GetObject", "Resource": resource}]})
    .to_string();
    assert!((10_050..=10_150).contains(&crowded.len()), "{}", crowded.len());
    sso.put_inline_policy_to_permission_set()
        .instance_arn(&instance)
        .permission_set_arn(&set)
        .inline_policy(&crowded)
        .send()
        .await
        .unwrap();
    let env = [("SSO_ADMIN_ROLE_ARN", SSO_ADMIN)];
    let (_, findings) = stage.detect(vec![agent_creates_user(SSO_ROLE, &role_id, "agent-run-1", "sso6")], &env).await;
    let (run, reports) = stage.remediate(findings, &env).await;
    ok(&run);
    let step = reports[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"]["action"] == "deny_sso_user_in_permission_set");
    let step = step.unwrap();
    assert_eq!(step["status"], "failed");
    assert!(step["detail"].as_str().unwrap().starts_with("NOT REVOKED"), "{step}");
    assert_eq!(set_policy(&sso, &instance, &set).await, serde_json::from_str::<Value>(&crowded).unwrap());
    assert_eq!(provisionings(&sso, &instance, &set).await, 0);
    let alerts = stage.out.alerts().await;
    let failed = alerts.iter().find(|a| a.subject.starts_with("trailguard REMEDIATION FAILED")).unwrap();
    assert!(failed.subject.contains("Identity Center session NOT revoked"), "{}", failed.subject);
}
