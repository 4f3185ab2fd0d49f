//! The two Lambdas end to end: the compiled `detect` and `remediate` binaries, driven through the Lambda
//! Runtime API, with the real AWS SDK talking to a moto server. Each test owns its server.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use harness::aws::{attached, create_policy, create_role, inline_policy};
use harness::events::{api_call, console_login, put_role_policy, root, session};
use harness::moto::HOME_ACCOUNT;
use harness::stage::{attach_event, ok, step_statuses, Stage, ADMIN, REVOCATIONS};
use serde_json::{json, Value};
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::PolicyDocument;

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

#[tokio::test(flavor = "multi_thread")]
async fn a_person_doing_the_same_gets_an_alert_and_nothing_is_touched() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "ops", "/").await;
    stage.iam.attach_role_policy().role_name("ops").policy_arn(ADMIN).send().await.unwrap();
    let event =
        attach_event(session(HOME_ACCOUNT, "ops", &role_id, "alice@example.com"), "ops", ADMIN, "e-human-admin");

    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings.len(), 1);
    let alerts = stage.out.alerts().await;
    assert_eq!(alerts[0].attributes["agent"]["Value"], "false");

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["skipped", "skipped"]);
    assert!(reports[0]["steps"][0]["detail"].as_str().unwrap().contains("people"), "{}", reports[0]);
    assert_eq!(attached(&stage.iam, "ops").await, [ADMIN], "people are alert-only by default");
    assert!(inline_policy(&stage.iam, "ops", REVOCATIONS).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn root_console_sign_in_is_a_critical_alert_and_nothing_is_touched() {
    let stage = Stage::new().await;
    let (run, findings) =
        stage.detect(vec![console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, "e-root", false)], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["root-usage"]));
    let alerts = stage.out.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].subject.starts_with("[CRITICAL] Root user console sign-in"), "{}", alerts[0].subject);
    assert!(alerts[0].subject.contains("WITHOUT MFA"));
    assert_eq!(findings[0]["detail"]["remediation"], json!([]));

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(reports[0]["steps"], json!([]));
    assert_eq!(reports[0]["status"], "skipped");
    let roles = stage.iam.list_roles().send().await.unwrap();
    assert!(roles.roles().is_empty(), "no IAM change at all");
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_passrole_on_every_role_is_deleted_and_its_document_kept() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "builder-agent", "/").await;
    let document = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "PassAnything", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"}]});
    stage
        .iam
        .put_role_policy()
        .role_name("builder-agent")
        .policy_name("deploy")
        .policy_document(document.to_string())
        .send()
        .await
        .unwrap();
    let event = put_role_policy(
        session(HOME_ACCOUNT, "builder-agent", &role_id, "agent-build-7"),
        HOME_ACCOUNT,
        "builder-agent",
        "deploy",
        &document,
        "e-passrole",
    );
    let (run, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["passrole-grant"]));
    assert!(stage.out.alerts().await[0].message.contains("lambda:CreateFunction"), "the escalation path is named");

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert_eq!(reports[0]["steps"][0]["removed"], document, "the deleted document is kept in the outcome");
    assert!(inline_policy(&stage.iam, "builder-agent", "deploy").await.is_none());
    let alerts = stage.out.alerts().await;
    assert!(alerts.iter().any(|a| a.message.contains("removed (kept for restore)")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_version_made_default_is_rolled_back() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "platform-agent", "/").await;
    let v1 = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*"}]});
    let v2 = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let arn = create_policy(&stage.iam, "ci", &v1).await;
    stage
        .iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(v2.to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let event = api_call(
        session(HOME_ACCOUNT, "platform-agent", &role_id, "agent-ci-1"),
        "iam.amazonaws.com",
        "CreatePolicyVersion",
        json!({"policyArn": arn, "policyDocument": v2.to_string(), "setAsDefault": true}),
        json!({"policyVersion": {"versionId": "v2", "isDefaultVersion": true, "createDate": "Nov 27, 2026 10:00:00 AM"}}),
        HOME_ACCOUNT,
        "e-version",
    );
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings[0]["detail"]["severity"], "critical");
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    let policy = stage.iam.get_policy().policy_arn(&arn).send().await.unwrap().policy.unwrap();
    assert_eq!(policy.default_version_id(), Some("v1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trust_policy_opened_to_anyone_loses_that_statement_only() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "partner-agent", "/").await;
    create_role(&stage.iam, "reports", "/").await;
    let own = json!({"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"});
    let open = json!({"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"});
    let trust = json!({"Version": "2012-10-17", "Statement": [own, open]});
    stage.iam.update_assume_role_policy().role_name("reports").policy_document(trust.to_string()).send().await.unwrap();
    let event = api_call(
        session(HOME_ACCOUNT, "partner-agent", &role_id, "agent-sync"),
        "iam.amazonaws.com",
        "UpdateAssumeRolePolicy",
        json!({"roleName": "reports", "policyDocument": trust.to_string()}),
        Value::Null,
        HOME_ACCOUNT,
        "e-trust",
    );
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings[0]["detail"]["rule"], "trust-policy-grant");
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    let role = stage.iam.get_role().role_name("reports").send().await.unwrap().role.unwrap();
    let now = trailguard_core::policy::document::decode_json_text(role.assume_role_policy_document().unwrap()).unwrap();
    assert_eq!(now["Statement"], json!([own]), "the open statement is gone, the team's kept");
    assert_eq!(reports[0]["steps"][0]["removed"], json!([open]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finding_in_another_account_is_acted_on_there_through_sts() {
    const MEMBER: &str = "111122223333";
    let stage = Stage::new().await;
    let member = aws_sdk_iam::Client::new(&stage.moto.sdk_in_account(MEMBER).await);
    create_role(&member, "trailguard-member", "/").await;
    let role_id = create_role(&member, "dev-agent", "/").await;
    member.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    create_role(&stage.iam, "dev-agent", "/").await;
    stage.iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();

    let mut event = attach_event(session(MEMBER, "dev-agent", &role_id, "agent-run-9"), "dev-agent", ADMIN, "e-member");
    event["account"] = json!(MEMBER);
    event["detail"]["recipientAccountId"] = json!(MEMBER);
    let (_, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(findings[0]["detail"]["account"], MEMBER);
    let (run, reports) = stage.remediate(findings, &[("EXTERNAL_ID", "trailguard-test-external-id")]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert!(attached(&member, "dev-agent").await.is_empty(), "detached in the member account");
    assert!(inline_policy(&member, "dev-agent", REVOCATIONS).await.is_some(), "revoked in the member account");
    assert_eq!(attached(&stage.iam, "dev-agent").await, [ADMIN], "the home account's same-named role is untouched");
    assert!(inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_writes_nothing_and_reports_the_plan() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "dev-agent", "/").await;
    stage.iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    let event = attach_event(session(HOME_ACCOUNT, "dev-agent", &role_id, "agent-run-1"), "dev-agent", ADMIN, "e-dry");
    let (_, findings) = stage.detect(vec![event], &[]).await;
    let (run, reports) = stage.remediate(findings, &[("DRY_RUN", "true")]).await;
    ok(&run);
    assert_eq!(reports[0]["dry_run"], true);
    assert_eq!(step_statuses(&reports[0]), ["dry_run", "dry_run"]);
    assert_eq!(
        reports[0]["steps"][1]["written"]["Statement"][0]["Effect"], "Deny",
        "the policy it would write is shown"
    );
    assert_eq!(attached(&stage.iam, "dev-agent").await, [ADMIN]);
    assert!(inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.is_none());
    let alerts = stage.out.alerts().await;
    assert!(alerts.iter().any(|a| a.subject.starts_with("trailguard dry run") && a.message.contains("would write")));
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_roles_are_never_touched_and_the_report_says_why() {
    let stage = Stage::new().await;
    let sso = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";
    let sso_id = create_role(&stage.iam, sso, "/aws-reserved/sso.amazonaws.com/").await;
    let glass_id = create_role(&stage.iam, "break-glass-admin", "/").await;
    for role in [sso, "break-glass-admin"] {
        stage.iam.attach_role_policy().role_name(role).policy_arn(ADMIN).send().await.unwrap();
    }
    let events = vec![
        attach_event(session(HOME_ACCOUNT, sso, &sso_id, "agent-sso"), sso, ADMIN, "e-sso"),
        attach_event(
            session(HOME_ACCOUNT, "break-glass-admin", &glass_id, "agent-glass"),
            "break-glass-admin",
            ADMIN,
            "e-glass",
        ),
    ];
    let config = r#"{"remediation": {"protected_principals": ["break-glass-*"]}}"#;
    let (_, findings) = stage.detect(events, &[("TRAILGUARD_CONFIG", config)]).await;
    assert_eq!(findings.len(), 2);
    let (run, reports) = stage.remediate(findings, &[("TRAILGUARD_CONFIG", config)]).await;
    ok(&run);
    for report in &reports {
        assert_eq!(step_statuses(report), ["skipped", "skipped"], "{report}");
    }
    let details: String =
        reports.iter().flat_map(|r| r["steps"].as_array().unwrap().clone()).map(|s| s["detail"].to_string()).collect();
    assert!(details.contains("IAM Identity Center"), "{details}");
    assert!(details.contains("protected by configuration"), "{details}");
    assert_eq!(attached(&stage.iam, sso).await, [ADMIN]);
    assert_eq!(attached(&stage.iam, "break-glass-admin").await, [ADMIN]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_twice_changes_things_once() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "dev-agent", "/").await;
    stage.iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    let event =
        attach_event(session(HOME_ACCOUNT, "dev-agent", &role_id, "agent-run-2"), "dev-agent", ADMIN, "e-twice");
    let (_, findings) = stage.detect(vec![event.clone(), event], &[]).await;
    assert_eq!(findings.len(), 2);
    assert_eq!(
        findings[0]["detail"]["id"], findings[1]["detail"]["id"],
        "a stable id lets subscribers drop the repeat"
    );

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert_eq!(step_statuses(&reports[1]), ["already_done", "already_done"]);
    assert_eq!(reports[1]["status"], "already_done");
    let written = inline_policy(&stage.iam, "dev-agent", REVOCATIONS).await.unwrap();
    assert_eq!(written["Statement"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_events_and_failed_alerts_fail_the_invocation_and_lose_nothing() {
    let stage = Stage::new().await;
    let bad = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
        "account": HOME_ACCOUNT, "detail": {"eventSource": "iam.amazonaws.com", "eventName": 5}});
    let run = stage.run("detect", vec![bad], &[]).await;
    let error = run.invocations[0].result.clone().unwrap_err();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("event could not be read") && message.contains("`eventName`"), "{message}");

    let event = console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, "e-sns-down", true);
    let missing_topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let run = stage.run("detect", vec![event.clone()], &[("ALERT_TOPIC_ARN", missing_topic)]).await;
    let message = run.invocations[0].result.clone().unwrap_err()["errorMessage"].as_str().unwrap().to_owned();
    assert!(message.contains("alert not published to SNS"), "{message}");
    assert!(stage.out.bus_events().await.is_empty(), "no half-delivered finding");

    // Lambda retries a failed invocation: once SNS is back, the same event is delivered.
    let (run, findings) = stage.detect(vec![event], &[]).await;
    ok(&run);
    assert_eq!(findings.len(), 1);
    assert_eq!(stage.out.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_policies_and_role_tags_are_looked_up_in_iam() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "deployer", "/").await;
    let tag = aws_sdk_iam::types::Tag::builder().key("trailguard:agent").value("true").build().unwrap();
    stage.iam.tag_role().role_name("deployer").tags(tag).send().await.unwrap();
    let document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:Pass*", "Resource": "arn:aws:iam::*:role/*"}]});
    let arn = create_policy(&stage.iam, "broad-pass", &document).await;
    stage.iam.attach_role_policy().role_name("deployer").policy_arn(&arn).send().await.unwrap();
    // The session name says nothing: only the role's tag (looked up) marks it as an agent.
    let event = attach_event(session(HOME_ACCOUNT, "deployer", &role_id, "build-1234"), "deployer", &arn, "e-lookup");

    let (run, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["passrole-grant"]), "{}", run.logs);
    let finding = &findings[0]["detail"];
    assert_eq!(finding["actor"]["agent"]["signal"], "role_tag");
    assert_eq!(finding["evidence"]["document"], document, "the document was fetched from IAM");

    // A role tag alone is trusted only where the operator says the tag keys are protected (see enforcement.rs).
    let trusting = [("TRAILGUARD_CONFIG", r#"{"remediation":{"trust_role_tags":true}}"#)];
    let (run, reports) = stage.remediate(findings, &trusting).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"]);
    assert!(attached(&stage.iam, "deployer").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_a_long_term_key_loses_the_key() {
    let stage = Stage::new().await;
    stage.iam.create_user().user_name("agent-bot").send().await.unwrap();
    let key =
        stage.iam.create_access_key().user_name("agent-bot").send().await.unwrap().access_key.unwrap().access_key_id;
    let identity = json!({"type": "IAMUser", "principalId": "AIDAIOSFODNN7EXAMPLE", "arn": "arn:aws:iam::123456789012:user/agent-bot",
        "accountId": HOME_ACCOUNT, "accessKeyId": key, "userName": "agent-bot"});
    let event = api_call(
        identity,
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": "shadow-admin"}),
        json!({"user": {"userName": "shadow-admin"}}),
        HOME_ACCOUNT,
        "e-key",
    );
    let (run, findings) = stage.detect(vec![event], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["agent-sensitive-call"]));
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"], "the key, and the credentials derived from it");
    let keys = stage.iam.list_access_keys().user_name("agent-bot").send().await.unwrap();
    assert_eq!(keys.access_key_metadata()[0].status(), Some(&aws_sdk_iam::types::StatusType::Inactive));
}

/// The canary's call is a heartbeat: the detector writes it as an Embedded Metric Format line in its log (no
/// API call), and delivers no finding, although a TagRole on a `trailguard-*` role by anyone else is
/// tampering. A role merely named like the canary (another path) gets the tampering finding.
#[tokio::test(flavor = "multi_thread")]
async fn the_canary_gives_a_heartbeat_and_no_finding_and_a_look_alike_is_tampering() {
    let stage = Stage::new().await;
    let tag = |role_path: &str, event_id: &str| {
        let mut identity = session(HOME_ACCOUNT, "trailguard-canary", "AROAEXAMPLECANARY", "a1b2c3d4e5f60718");
        identity["sessionContext"]["sessionIssuer"]["arn"] =
            json!(format!("arn:aws:iam::{HOME_ACCOUNT}:role/{role_path}trailguard-canary"));
        api_call(
            identity,
            "iam.amazonaws.com",
            "TagRole",
            json!({"roleName": "trailguard-canary", "tags": [{"key": "trailguard:heartbeat", "value": "2026-11-27T10:05:00Z"}]}),
            Value::Null,
            HOME_ACCOUNT,
            event_id,
        )
    };
    let (run, findings) = stage.detect(vec![tag("", "e-canary")], &[]).await;
    let outcome = &ok(&run)[0];
    assert_eq!(outcome["findings"], json!([]));
    assert_eq!(outcome["heartbeat"], json!({"account": HOME_ACCOUNT, "region": "us-east-1", "path": "global"}));
    assert!(findings.is_empty() && stage.out.alerts().await.is_empty(), "a heartbeat is no finding");
    let metric: Value = run
        .logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|doc| doc.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no EMF line in the log:\n{}", run.logs));
    assert_eq!(metric["_aws"]["CloudWatchMetrics"][0]["Namespace"], "trailguard");
    assert_eq!(metric["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "Heartbeat");
    assert_eq!(
        (&metric["Account"], &metric["Region"], &metric["Path"]),
        (&json!(HOME_ACCOUNT), &json!("us-east-1"), &json!("global"))
    );
    assert!(metric["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);

    // A forwarder's canary: the region's own role tagging its queue, in the region its name carries.
    let regional = |role: &str, region: &str, event_id: &str| {
        let mut identity = session(HOME_ACCOUNT, role, "AROAEXAMPLECANARYEU", "a1b2c3d4e5f60718");
        identity["sessionContext"]["sessionIssuer"]["arn"] = json!(format!("arn:aws:iam::{HOME_ACCOUNT}:role/{role}"));
        let mut event = api_call(
            identity,
            "sqs.amazonaws.com",
            "TagQueue",
            json!({"queueUrl": format!("https://sqs.{region}.amazonaws.com/{HOME_ACCOUNT}/trailguard-forward-dlq"),
                   "tags": {"trailguard:heartbeat": "2026-11-27T10:05:00Z"}}),
            Value::Null,
            HOME_ACCOUNT,
            event_id,
        );
        event["detail"]["awsRegion"] = json!(region);
        event["region"] = json!(region);
        event
    };
    let (run, findings) = stage
        .detect(
            vec![
                regional("trailguard-canary-eu-west-1", "eu-west-1", "e-regional"),
                regional("trailguard-canary-eu-west-1", "eu-central-1", "e-wrong-region"),
            ],
            &[],
        )
        .await;
    let outcomes = ok(&run);
    assert_eq!(outcomes[0]["heartbeat"], json!({"account": HOME_ACCOUNT, "region": "eu-west-1", "path": "regional"}));
    assert!(outcomes[1].get("heartbeat").is_none(), "another region's canary role proves nothing here");
    assert!(findings.is_empty());
    assert_eq!(run.logs.matches("\"_aws\"").count(), 1, "one heartbeat line:\n{}", run.logs);

    let (run, findings) = stage.detect(vec![tag("tools/", "e-look-alike")], &[]).await;
    assert_eq!(ok(&run)[0]["rules"], json!(["guardrail-tampering"]));
    assert!(ok(&run)[0].get("heartbeat").is_none());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["detail"]["severity"], "critical");
    assert!(!run.logs.contains("\"_aws\""), "a look-alike writes no heartbeat");

    // A canary's record put on the bus by anyone else (PutEvents cannot use an `aws.*` source) is a forgery,
    // never a heartbeat that would keep a dead path's alarm quiet.
    let mut forged = tag("", "e-forged-canary");
    forged["source"] = json!("aws-iam.custom");
    let (run, _) = stage.detect(vec![forged], &[]).await;
    assert!(ok(&run)[0]["forged"].is_string(), "{:?}", ok(&run));
    assert!(ok(&run)[0].get("heartbeat").is_none());
    assert!(!run.logs.contains("\"_aws\""), "a forged canary writes no heartbeat");
}
