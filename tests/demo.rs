//! `make demo`: a short story of a misbehaving AI agent and a human mistake, played through the real
//! `detect` and `remediate` binaries against a local AWS emulator (moto on 127.0.0.1), printed as on-call
//! would read it. Everything it starts, it stops.

// A demo: a failed unwrap is a failed demo, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use harness::aws::{attached, create_role, inline_policy};
use harness::events::{api_call, console_login, root, session};
use harness::moto::HOME_ACCOUNT;
use harness::stage::{Stage, ADMIN};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::PolicyDocument;
use trailguard_core::remediation::revocation::rfc3339;

const IAM_FULL: &str = "arn:aws:iam::aws:policy/IAMFullAccess";

struct Demo {
    stage: Stage,
}

impl Demo {
    /// One act: the CloudTrail event goes through detect; the findings through remediate; print what people see.
    async fn act(&self, title: &str, event: Value) {
        println!("\n━━━ {title} ━━━");
        println!("CloudTrail: {}", what_happened(&event["detail"]));
        self.run("detect", vec![event], "📟 SNS alert").await;
        let findings: Vec<Value> = self.stage.out.bus_events().await;
        if findings.is_empty() {
            println!("  (no finding)");
            return;
        }
        self.run("remediate", findings, "🛠  SNS follow-up").await;
        self.stage.out.bus_events().await;
    }

    /// An act of several events, told in `lines`; alerts are printed by their subjects, but for the last's.
    async fn act_many(&self, title: &str, lines: &[String], events: Vec<Value>) {
        println!("\n━━━ {title} ━━━");
        for line in lines {
            println!("CloudTrail: {line}");
        }
        let run = self.stage.run("detect", events, &[]).await;
        for invocation in &run.invocations {
            if let Err(e) = &invocation.result {
                println!("detect failed: {e}");
            }
        }
        let alerts = self.stage.out.alerts().await;
        let (last, earlier) = alerts.split_last().unwrap();
        for alert in earlier {
            println!("  📟 SNS alert  Subject: {}", alert.subject);
        }
        println!("\n  📟 SNS alert  Subject: {}", last.subject);
        for line in last.message.lines() {
            println!("  │ {line}");
        }
        let findings: Vec<Value> = self.stage.out.bus_events().await;
        let behaviour: Vec<Value> = findings.into_iter().filter(|f| f["detail"]["rule"] == "agent-behaviour").collect();
        self.run("remediate", behaviour, "🛠  SNS follow-up").await;
        self.stage.out.bus_events().await;
    }

    /// Runs one binary on the events and prints the failures and the alerts it sent.
    async fn run(&self, binary: &'static str, events: Vec<Value>, label: &str) {
        let run = self.stage.run(binary, events, &[]).await;
        for invocation in &run.invocations {
            if let Err(e) = &invocation.result {
                println!("{binary} failed: {e}");
            }
        }
        for alert in self.stage.out.alerts().await {
            println!("\n  {label}  Subject: {}", alert.subject);
            for line in alert.message.lines() {
                println!("  │ {line}");
            }
        }
    }

    async fn state(&self, when: &str) {
        println!("\n━━━ IAM state {when} ━━━");
        for role in ["dev-agent", "ops"] {
            let inline = self.stage.iam.list_role_policies().role_name(role).send().await.unwrap();
            println!(
                "  role {role}: managed {:?}, inline {:?}",
                attached(&self.stage.iam, role).await,
                inline.policy_names()
            );
        }
        if let Some(revocations) = inline_policy(&self.stage.iam, "dev-agent", "trailguard-revocations").await {
            println!("  dev-agent's trailguard-revocations: {revocations}");
        }
    }
}

/// One line for a CloudTrail record: who, and the IAM action with its parameters, or the console sign-in.
fn what_happened(detail: &Value) -> String {
    let who = detail["userIdentity"]["arn"].as_str().unwrap_or("?");
    let name = detail["eventName"].as_str().unwrap_or("?");
    if name == "ConsoleLogin" {
        let mfa = detail["additionalEventData"]["MFAUsed"].as_str().unwrap_or("unknown");
        return format!("{who} signed in to the console (ConsoleLogin, MFA used: {mfa})");
    }
    let service = detail["eventSource"].as_str().unwrap_or("?").split('.').next().unwrap_or("?");
    match &detail["requestParameters"] {
        Value::Null => format!("{who} called {service}:{name}"),
        parameters => format!("{who} called {service}:{name} {parameters}"),
    }
}

/// Shows, rather than says, whom the written revocation denies: its statements through trailguard's own policy
/// evaluator for the revoked session, another session of the role and a session started after the revocation.
fn who_is_denied(revocations: &Value, role_id: &str) -> Vec<String> {
    let doc = PolicyDocument::from_value(revocations).unwrap();
    let statement = &revocations["Statement"][0];
    let bound = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap_or("?");
    let bound = OffsetDateTime::parse(bound, &Rfc3339).unwrap();
    let earlier = rfc3339(bound - Duration::minutes(5));
    let now = rfc3339(OffsetDateTime::now_utc().max(bound + Duration::seconds(1)));
    let cases = [
        ("agent-run-42, credentials issued before the revocation", "agent-run-42", earlier.as_str()),
        ("agent-run-43, another session issued at the same time", "agent-run-43", earlier.as_str()),
        ("a new session of dev-agent, issued now", "agent-run-44", now.as_str()),
    ];
    cases
        .iter()
        .map(|(who, session, issued)| {
            let request = Request::new("iam:AttachRolePolicy", "*")
                .with("aws:userid", &format!("{role_id}:{session}"))
                .with("aws:TokenIssueTime", issued);
            let verdict = if denies(&doc, &request) { "DENIED" } else { "allowed" };
            format!("  {who} ({issued}): iam:AttachRolePolicy {verdict}")
        })
        .collect()
}

#[tokio::main]
async fn main() {
    println!("Starting a local AWS emulator (moto) on 127.0.0.1 ...");
    let demo = Demo { stage: Stage::new().await };
    let iam = &demo.stage.iam;
    let agent_id = create_role(iam, "dev-agent", "/").await;
    let ops_id = create_role(iam, "ops", "/").await;
    demo.state("before").await;

    // Act 1: an AI coding agent, stuck on an AccessDenied, makes itself administrator.
    iam.attach_role_policy().role_name("dev-agent").policy_arn(ADMIN).send().await.unwrap();
    let mut agent = session(HOME_ACCOUNT, "dev-agent", &agent_id, "agent-run-42");
    agent["sessionContext"]["sourceIdentity"] = json!("claude-code");
    let act1 = api_call(
        agent.clone(),
        "iam.amazonaws.com",
        "AttachRolePolicy",
        json!({"roleName": "dev-agent", "policyArn": ADMIN}),
        Value::Null,
        HOME_ACCOUNT,
        "demo-0001",
    );
    demo.act("1. The agent attaches AdministratorAccess to its own role", act1).await;

    // Act 2: a person grants a team role full IAM: alert only, a human decides.
    iam.attach_role_policy().role_name("ops").policy_arn(IAM_FULL).send().await.unwrap();
    let alice = session(HOME_ACCOUNT, "ops", &ops_id, "alice@example.com");
    let act2 = api_call(
        alice,
        "iam.amazonaws.com",
        "AttachRolePolicy",
        json!({"roleName": "ops", "policyArn": IAM_FULL}),
        Value::Null,
        HOME_ACCOUNT,
        "demo-0002",
    );
    demo.act("2. Alice attaches IAMFullAccess to the ops role", act2).await;

    // Act 3: the root user signs in without MFA.
    demo.act(
        "3. Someone signs in as root without MFA",
        console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, "demo-0003", false),
    )
    .await;

    // Act 4: an agent known only by a session tag probes with refused calls after chaining into a second role.
    let pipeline_id = create_role(iam, "data-pipeline", "/").await;
    let reporting_id = create_role(iam, "reporting", "/").await;
    let mut ci = session(HOME_ACCOUNT, "ci", "AROACIEXAMPLE", "build-7");
    ci["accessKeyId"] = json!("ASIACIBUILD000000007");
    let mut tagged = session(HOME_ACCOUNT, "data-pipeline", &pipeline_id, "job-7");
    tagged["accessKeyId"] = json!("ASIAJOB7000000000001");
    let expires = rfc3339(OffsetDateTime::now_utc() + Duration::hours(1));
    let assume = |caller: &Value, role: &str, role_id: &str, name: &str, key: &str, tags: Value, id: &str| {
        api_call(
            caller.clone(),
            "sts.amazonaws.com",
            "AssumeRole",
            json!({"roleArn": format!("arn:aws:iam::{HOME_ACCOUNT}:role/{role}"), "roleSessionName": name, "tags": tags}),
            json!({"credentials": {"accessKeyId": key, "expiration": expires},
                   "assumedRoleUser": {"assumedRoleId": format!("{role_id}:{name}"),
                                       "arn": format!("arn:aws:sts::{HOME_ACCOUNT}:assumed-role/{role}/{name}")}}),
            HOME_ACCOUNT,
            id,
        )
    };
    let mut events = vec![
        assume(
            &ci,
            "data-pipeline",
            &pipeline_id,
            "job-7",
            "ASIAJOB7000000000001",
            json!([{"key": "trailguard:agent", "value": "true"}]),
            "demo-0400",
        ),
        assume(&tagged, "reporting", &reporting_id, "job-7-report", "ASIAJOB7REPORT000001", json!([]), "demo-0401"),
    ];
    for i in 0..11 {
        let mut probe = api_call(
            tagged.clone(),
            "s3.amazonaws.com",
            "DeleteBucket",
            json!({"bucketName": format!("prod-data-{i}")}),
            Value::Null,
            HOME_ACCOUNT,
            &format!("demo-04{:02}", i + 10),
        );
        probe["detail"]["errorCode"] = json!("AccessDenied");
        events.push(probe);
    }
    let lines = [
        "ci/build-7 assumed data-pipeline as job-7 with session tag trailguard:agent=true (the only sign it is an agent)".to_owned(),
        "data-pipeline/job-7 assumed reporting as job-7-report (no tags: agency is inherited)".to_owned(),
        "data-pipeline/job-7 called s3:DeleteBucket on prod-data-0 … prod-data-10: AccessDenied, 11 times".to_owned(),
    ];
    demo.act_many("4. A session-tagged agent chains into a second role and probes with refused calls", &lines, events)
        .await;
    for role in ["data-pipeline", "reporting"] {
        if let Some(revocations) = inline_policy(iam, role, "trailguard-revocations").await {
            let denied = revocations["Statement"][0]["Condition"]["StringEquals"]["aws:userid"].clone();
            println!("  {role}'s trailguard-revocations denies aws:userid {denied}");
        }
    }

    demo.state("after").await;
    if let Some(revocations) = inline_policy(iam, "dev-agent", "trailguard-revocations").await {
        println!("\n━━━ Whom the revocation denies (its policy through trailguard's IAM evaluator) ━━━");
        for line in who_is_denied(&revocations, &agent_id) {
            println!("{line}");
        }
    }
    println!(
        "\nThe agent lost AdministratorAccess and its session agent-run-42 is denied (only credentials issued before"
    );
    println!("the revocation: a new session of dev-agent works, as shown). Alice's change waits for a person. Root");
    println!("cannot be touched by IAM: the alert is the response. The session-tagged agent was stopped after its");
    println!("eleventh refused call, and with it the session it had chained into. The emulator is stopped now.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_reads_as_one() {
        let line = what_happened(&console_login(root(HOME_ACCOUNT), HOME_ACCOUNT, "demo-0003", false)["detail"]);
        assert!(line.ends_with("signed in to the console (ConsoleLogin, MFA used: No)"), "{line}");
        assert!(!line.contains("null"), "{line}");
    }

    #[test]
    fn the_revoked_session_is_denied_and_a_new_one_works() {
        let statement = trailguard_core::remediation::revocation::Revocation::Session("AROAX:agent-run-42".to_owned())
            .statement(OffsetDateTime::parse("2026-11-27T10:00:00Z", &Rfc3339).unwrap());
        let lines = who_is_denied(&json!({"Version": "2012-10-17", "Statement": [statement]}), "AROAX");
        assert!(lines[0].contains("agent-run-42") && lines[0].ends_with("DENIED"), "{lines:?}");
        assert!(lines[1].ends_with("allowed") && lines[2].ends_with("allowed"), "{lines:?}");
    }
}
