//! Agent sessions on moto: sessions recognised only by their session tags, agency handed on through a chained
//! `AssumeRole`, registry entries that expire with their credentials. The compiled `detect` and `remediate`
//! binaries run through the Lambda Runtime API harness; the registry lives in moto's DynamoDB.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::aws::{create_role, inline_policy};
use harness::events::{ago, api_call, assume, issued_identity, sts_time};
use harness::moto::HOME_ACCOUNT;
use harness::stage::{ok, step_statuses, Stage, REVOCATIONS};
use serde_json::{json, Value};
use time::Duration;

/// The state table's items whose partition key starts with `prefix` (`session#`, `count#`, `region#`).
async fn state_items(stage: &Stage, prefix: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let dynamo = aws_sdk_dynamodb::Client::new(&stage.moto.sdk());
    let items = dynamo.scan().table_name("trailguard-state").send().await.unwrap();
    items.items().iter().filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix))).cloned().collect()
}

fn create_user(identity: Value, user: &str, id: &str) -> Value {
    api_call(
        identity,
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": user}),
        json!({"user": {"userName": user}}),
        HOME_ACCOUNT,
        id,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_tagged_agent_and_the_role_it_chains_into_are_recognised_and_the_child_is_revoked() {
    let stage = Stage::new().await;
    let builder = create_role(&stage.iam, "builder", "/").await;
    let deployer = create_role(&stage.iam, "deployer", "/").await;
    let person = issued_identity("ci", "AROACIEXAMPLE", "build-7", "ASIAPERSON0000000001");
    let tagged = issued_identity("builder", &builder, "run-1", "ASIATAGGED0000000001");
    let child = issued_identity("deployer", &deployer, "run-1-deploy", "ASIACHILD00000000001");
    let events = vec![
        assume(
            person.clone(),
            "builder",
            &builder,
            "run-1",
            "ASIATAGGED0000000001",
            &[("trailguard:agent", "true")],
            &sts_time(Duration::hours(1)),
            "e-tag",
        ),
        assume(
            tagged,
            "deployer",
            &deployer,
            "run-1-deploy",
            "ASIACHILD00000000001",
            &[],
            &sts_time(Duration::hours(1)),
            "e-chain",
        ),
        create_user(child, "backdoor", "e-child-call"),
        create_user(person, "ops-user", "e-person-call"),
    ];

    let (run, findings) = stage.detect(events, &[]).await;
    let outcomes = ok(&run);
    assert_eq!(outcomes.len(), 4, "{}", run.logs);
    assert_eq!(outcomes[2]["rules"], json!(["agent-sensitive-call"]), "{}", run.logs);
    assert_eq!(outcomes[3]["rules"], json!([]), "a person's call is not an agent's");
    assert_eq!(findings.len(), 1);
    let agent = &findings[0]["detail"]["actor"]["agent"];
    assert_eq!(agent["signal"], "parent_session", "{agent}");
    assert_eq!(agent["value"], "ASIATAGGED0000000001");
    assert_eq!(agent["pattern"], "session_tag: trailguard:agent=true");

    // The registry: both sessions, and the child under its parent's key.
    let items = state_items(&stage, "session#").await;
    let mut keys: Vec<(String, String)> =
        items.iter().map(|i| (i["pk"].as_s().unwrap().clone(), i["sk"].as_s().unwrap().clone())).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("session#ASIACHILD00000000001".into(), "session".into()),
            ("session#ASIATAGGED0000000001".into(), "child#ASIACHILD00000000001".into()),
            ("session#ASIATAGGED0000000001".into(), "session".into()),
        ]
    );
    let tagged_item = items
        .iter()
        .find(|i| {
            i["pk"] == AttributeValue::S("session#ASIATAGGED0000000001".into())
                && i["sk"] == AttributeValue::S("session".into())
        })
        .unwrap();
    let expires: i64 = tagged_item["expires_at"].as_n().unwrap().parse().unwrap();
    let in_an_hour = (time::OffsetDateTime::now_utc() + Duration::hours(1)).unix_timestamp();
    assert!((expires - in_an_hour).abs() < 120, "TTL at the credentials' expiry: {expires} vs {in_an_hour}");

    // Agents are enforced by default: the child session is revoked on its own role.
    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
    let written = inline_policy(&stage.iam, "deployer", REVOCATIONS).await.expect("revocation on the child's role");
    assert!(written.to_string().contains(&format!("{deployer}:run-1-deploy")), "{written}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_entries_expire_with_the_credentials_and_untagged_sessions_are_not_recorded() {
    let stage = Stage::new().await;
    let builder = create_role(&stage.iam, "builder", "/").await;
    let person = issued_identity("ci", "AROACIEXAMPLE", "build-7", "ASIAPERSON0000000001");
    let expired = issued_identity("builder", &builder, "old", "ASIAEXPIRED000000001");
    let plain = issued_identity("builder", &builder, "plain", "ASIAPLAIN00000000001");
    let mut old = assume(
        person.clone(),
        "builder",
        &builder,
        "old",
        "ASIAEXPIRED000000001",
        &[("ai-agent", "true")],
        &sts_time(Duration::minutes(-30)),
        "e-old",
    );
    old["detail"]["eventTime"] = json!(ago(Duration::minutes(90)));
    let events = vec![
        old,
        assume(
            person,
            "builder",
            &builder,
            "plain",
            "ASIAPLAIN00000000001",
            &[("team", "ml")],
            &sts_time(Duration::hours(1)),
            "e-plain",
        ),
        create_user(expired, "late", "e-late"),
        create_user(plain, "plain-user", "e-plain-call"),
    ];
    let (run, findings) = stage.detect(events, &[]).await;
    let outcomes = ok(&run);
    assert_eq!(outcomes.len(), 4, "{}", run.logs);
    assert!(findings.is_empty(), "expired agent session and a non-agent session: {findings:?}");
    let items = state_items(&stage, "session#").await;
    let sessions: Vec<&String> = items.iter().map(|i| i["pk"].as_s().unwrap()).collect();
    assert_eq!(
        sessions,
        ["session#ASIAEXPIRED000000001"],
        "only the agent session is recorded (moto never expires it)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_an_agent_session_revokes_the_session_it_chained_into() {
    let stage = Stage::new().await;
    let builder = create_role(&stage.iam, "builder", "/").await;
    let deployer = create_role(&stage.iam, "deployer", "/").await;
    let person = issued_identity("ci", "AROACIEXAMPLE", "build-7", "ASIAPERSON0000000001");
    let tagged = issued_identity("builder", &builder, "run-1", "ASIATAGGED0000000001");
    let events = vec![
        assume(
            person,
            "builder",
            &builder,
            "run-1",
            "ASIATAGGED0000000001",
            &[("ai-agent", "true")],
            &sts_time(Duration::hours(1)),
            "e-tag",
        ),
        assume(
            tagged.clone(),
            "deployer",
            &deployer,
            "run-1-deploy",
            "ASIACHILD00000000001",
            &[],
            &sts_time(Duration::hours(1)),
            "e-chain",
        ),
        create_user(tagged, "backdoor", "e-parent-call"),
    ];
    let (run, findings) = stage.detect(events, &[]).await;
    assert_eq!(ok(&run)[2]["rules"], json!(["agent-sensitive-call"]), "{}", run.logs);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["detail"]["actor"]["agent"]["signal"], "session_tag");

    let (run, reports) = stage.remediate(findings, &[]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done", "done"], "{}", reports[0]);
    let parent = inline_policy(&stage.iam, "builder", REVOCATIONS).await.expect("parent revoked");
    assert!(parent.to_string().contains(&format!("{builder}:run-1")), "{parent}");
    let child = inline_policy(&stage.iam, "deployer", REVOCATIONS).await.expect("child revoked on its own role");
    assert!(child.to_string().contains(&format!("{deployer}:run-1-deploy")), "{child}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_by_source_identity_happens_only_where_configured() {
    for (config, by_source) in [("{}", false), (r#"{"remediation":{"revoke_source_identity":true}}"#, true)] {
        let stage = Stage::new().await;
        let role_id = create_role(&stage.iam, "builder", "/").await;
        let mut identity = issued_identity("builder", &role_id, "run-9", "ASIASOURCE0000000001");
        identity["sessionContext"]["sourceIdentity"] = json!("claude-code");
        let (_, findings) =
            stage.detect(vec![create_user(identity, "backdoor", "e-si")], &[("TRAILGUARD_CONFIG", config)]).await;
        assert_eq!(findings.len(), 1);
        let (run, reports) = stage.remediate(findings, &[("TRAILGUARD_CONFIG", config)]).await;
        ok(&run);
        assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
        let written = inline_policy(&stage.iam, "builder", REVOCATIONS).await.unwrap().to_string();
        assert_eq!(written.contains("aws:SourceIdentity"), by_source, "{written}");
        assert_eq!(written.contains(&format!("{role_id}:run-9")), !by_source, "{written}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_refused_calls_gives_one_finding_at_the_threshold_with_its_evidence() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "agent-prober", "/").await;
    let identity = issued_identity("agent-prober", &role_id, "agent-run-5", "ASIAPROBER0000000001");
    let config = r#"{"behaviour":{"denied":3,"denied_minutes":60}}"#;
    let denied = |i: usize| {
        let mut event = create_user(identity.clone(), &format!("probe-{i}"), &format!("e-denied-{i}"));
        event["detail"]["errorCode"] = json!("AccessDenied");
        event["detail"]["responseElements"] = Value::Null;
        event
    };
    // Three refused calls: just at the threshold, nothing from agent-behaviour.
    let (run, findings) = stage.detect((0..3).map(denied).collect(), &[("TRAILGUARD_CONFIG", config)]).await;
    assert!(ok(&run).iter().all(|o| o["rules"] == json!([])), "{}", run.logs);
    assert!(findings.is_empty(), "refused calls count, they do not page one by one");
    // The fourth crosses it (once, even when redelivered); the fifth is past it.
    let (run, findings) = stage.detect(vec![denied(3), denied(3), denied(4)], &[("TRAILGUARD_CONFIG", config)]).await;
    let outcomes = ok(&run);
    assert_eq!(outcomes[0]["rules"], json!(["agent-behaviour"]), "{}", run.logs);
    assert_eq!(outcomes[1]["rules"], json!(["agent-behaviour"]), "a retried event is answered again, not counted");
    assert_eq!(outcomes[2]["rules"], json!([]));
    let behaviour: Vec<&Value> = findings.iter().filter(|f| f["detail"]["rule"] == "agent-behaviour").collect();
    assert_eq!(behaviour[0]["detail"]["id"], behaviour[1]["detail"]["id"], "the same finding");
    let notes = behaviour[0]["detail"]["evidence"]["notes"].to_string();
    for i in 0..4 {
        assert!(notes.contains(&format!("e-denied-{i}")), "{notes}");
    }
    assert!(!notes.contains("e-denied-4"));
    assert_eq!(behaviour[0]["detail"]["attempt"], false);
    assert_eq!(behaviour[0]["detail"]["severity"], "high");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_deletions_gives_one_finding_past_the_threshold_and_a_services_deletions_do_not_count() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "agent-cleaner", "/").await;
    let identity = issued_identity("agent-cleaner", &role_id, "agent-run-9", "ASIACLEANER000000001");
    let config = r#"{"behaviour":{"deletions":2,"deletions_minutes":60}}"#;
    let deletion = |identity: &Value, i: usize| {
        api_call(
            identity.clone(),
            "logs.amazonaws.com",
            "DeleteLogGroup",
            json!({"logGroupName": format!("/app/run-{i}")}),
            Value::Null,
            HOME_ACCOUNT,
            &format!("e-del-{i}"),
        )
    };
    let behaviour_ids = |findings: &[Value]| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["detail"]["rule"] == "agent-behaviour")
            .map(|f| f["detail"]["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Deletions CloudFormation makes for the session (`invokedBy`) are not counted, however many.
    let mut by_service = identity.clone();
    by_service["invokedBy"] = json!("cloudformation.amazonaws.com");
    let (_, findings) =
        stage.detect((10..15).map(|i| deletion(&by_service, i)).collect(), &[("TRAILGUARD_CONFIG", config)]).await;
    assert!(behaviour_ids(&findings).is_empty(), "{findings:?}");
    // Two deletions: at the threshold, no behaviour finding.
    let (_, findings) =
        stage.detect((0..2).map(|i| deletion(&identity, i)).collect(), &[("TRAILGUARD_CONFIG", config)]).await;
    assert!(behaviour_ids(&findings).is_empty(), "{findings:?}");
    // The third crosses it, once; the fourth is past it.
    let (_, findings) =
        stage.detect((2..4).map(|i| deletion(&identity, i)).collect(), &[("TRAILGUARD_CONFIG", config)]).await;
    assert_eq!(behaviour_ids(&findings), ["e-del-2"], "{findings:?}");
    let finding = findings.iter().find(|f| f["detail"]["rule"] == "agent-behaviour").unwrap();
    let notes = finding["detail"]["evidence"]["notes"].to_string();
    assert!((0..3).all(|i| notes.contains(&format!("e-del-{i}"))) && !notes.contains("e-del-3"), "{notes}");
    assert!(notes.contains("data events"), "S3 object deletions are said to need data events: {notes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_reading_across_too_many_services_is_one_finding_that_revokes_and_a_persons_reads_count_nothing() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "agent-explorer", "/").await;
    let agent = issued_identity("agent-explorer", &role_id, "agent-run-7", "ASIAEXPLORER00000001");
    let person = issued_identity("developer", "AROADEVELOPEREXAMPLE", "alice", "ASIAALICE00000000001");
    let config = r#"{"behaviour":{"services":3,"services_minutes":60}}"#;
    // One time for every call, so that no window boundary falls between them.
    let at = ago(Duration::minutes(1));
    let read = |identity: &Value, source: &str, name: &str, id: &str| {
        let mut event = api_call(identity.clone(), source, name, Value::Null, Value::Null, HOME_ACCOUNT, id);
        event["detail"]["readOnly"] = json!(true);
        event["detail"]["eventTime"] = json!(at);
        event
    };
    let services = [
        ("s3.amazonaws.com", "ListBuckets"),
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("dynamodb.amazonaws.com", "ListTables"),
        ("kms.amazonaws.com", "ListKeys"),
        ("sns.amazonaws.com", "ListTopics"),
    ];
    // A person browsing five services is no enumeration: nothing counted, nothing written.
    let browsing: Vec<Value> =
        services.iter().enumerate().map(|(i, (s, n))| read(&person, s, n, &format!("e-person-{i}"))).collect();
    let (run, findings) = stage.detect(browsing, &[("TRAILGUARD_CONFIG", config)]).await;
    assert!(ok(&run).iter().all(|o| o["rules"] == json!([])), "{}", run.logs);
    assert!(findings.is_empty());
    // Three services, each read twice: at the threshold, nothing.
    let under: Vec<Value> = (0..6)
        .map(|i| {
            let (source, name) = services[i % 3];
            read(&agent, source, name, &format!("e-read-{i}"))
        })
        .collect();
    let (run, findings) = stage.detect(under, &[("TRAILGUARD_CONFIG", config)]).await;
    assert!(ok(&run).iter().all(|o| o["rules"] == json!([])), "{}", run.logs);
    assert!(findings.is_empty());
    // The fourth service crosses it, once even when redelivered; the fifth is past it.
    let fourth = read(&agent, services[3].0, services[3].1, "e-read-kms");
    let fifth = read(&agent, services[4].0, services[4].1, "e-read-sns");
    let (run, findings) = stage.detect(vec![fourth.clone(), fourth, fifth], &[("TRAILGUARD_CONFIG", config)]).await;
    let outcomes = ok(&run);
    assert_eq!(outcomes[0]["rules"], json!(["agent-behaviour"]), "{}", run.logs);
    assert_eq!(outcomes[1]["rules"], json!(["agent-behaviour"]), "a retried event is answered again, not counted");
    assert_eq!(outcomes[2]["rules"], json!([]));
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0]["detail"]["id"], findings[1]["detail"]["id"], "the same finding");
    let notes = findings[0]["detail"]["evidence"]["notes"].to_string();
    // The first call to each service is its evidence; a repeat is not.
    for id in ["e-read-0", "e-read-1", "e-read-2", "e-read-kms"] {
        assert!(notes.contains(id), "{notes}");
    }
    assert!(!notes.contains("e-read-3") && !notes.contains("e-read-sns"), "{notes}");
    let title = findings[0]["detail"]["title"].as_str().unwrap();
    assert!(title.contains("more than 3 services within 60 minutes"), "{title}");
    // The counter is one item with the set of services; nothing was written for the person.
    let counters = state_items(&stage, "count#").await;
    assert_eq!(counters.len(), 1, "{counters:?}");
    assert!(counters[0]["pk"].as_s().unwrap().starts_with("count#ASIAEXPLORER00000001#services#"));
    assert_eq!(counters[0]["services"].as_ss().unwrap().len(), 4);
    // Enforced: the finding revokes the agent's session on its role.
    let (run, reports) = stage.remediate(vec![findings[0].clone()], &[("TRAILGUARD_CONFIG", config)]).await;
    ok(&run);
    assert_eq!(step_statuses(&reports[0]), ["done"], "{}", reports[0]);
    let written = inline_policy(&stage.iam, "agent-explorer", REVOCATIONS).await.unwrap().to_string();
    assert!(written.contains(&format!("{role_id}:agent-run-7")), "{written}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_first_use_of_a_region_after_learning_pages_once_through_the_state_table() {
    let stage = Stage::new().await;
    let role_id = create_role(&stage.iam, "agent-ops", "/").await;
    let agent = issued_identity("agent-ops", &role_id, "agent-run-3", "ASIAOPS0000000000001");
    let call = |region: &str, days_ago: i64, id: &str| {
        let mut event = api_call(
            agent.clone(),
            "ec2.amazonaws.com",
            "DescribeInstances",
            Value::Null,
            Value::Null,
            HOME_ACCOUNT,
            id,
        );
        event["detail"]["readOnly"] = json!(true);
        event["detail"]["awsRegion"] = json!(region);
        event["detail"]["eventTime"] = json!(ago(Duration::days(days_ago)));
        event
    };
    // Learnt: the first call, and another region within seven days of it.
    let (run, findings) =
        stage.detect(vec![call("eu-west-1", 20, "e-day-0"), call("eu-central-1", 15, "e-day-5")], &[]).await;
    assert!(ok(&run).iter().all(|o| o["rules"] == json!([])), "{}", run.logs);
    assert!(findings.is_empty());
    // After learning: a known region is nothing, a new one pages (again when redelivered), once.
    let new = call("ap-southeast-2", 1, "e-new");
    let (run, findings) = stage
        .detect(vec![call("eu-west-1", 1, "e-known"), new.clone(), new, call("ap-southeast-2", 0, "e-again")], &[])
        .await;
    let rules: Vec<Value> = ok(&run).iter().map(|o| o["rules"].clone()).collect();
    assert_eq!(rules, [json!([]), json!(["agent-new-region"]), json!(["agent-new-region"]), json!([])], "{}", run.logs);
    assert_eq!(findings[0]["detail"]["id"], findings[1]["detail"]["id"]);
    assert_eq!(findings[0]["detail"]["severity"], "medium");
    assert_eq!(findings[0]["detail"]["remediable"], false, "alert only");
    let notes = findings[0]["detail"]["evidence"]["notes"].to_string();
    assert!(notes.contains("eu-central-1, eu-west-1"), "{notes}");
    let memory = state_items(&stage, "region#").await;
    assert_eq!(memory.len(), 1, "one item per identity");
    assert_eq!(memory[0]["pk"].as_s().unwrap(), &format!("region#arn:aws:iam::{HOME_ACCOUNT}:role/agent-ops"));
    assert_eq!(memory[0]["regions"].as_ss().unwrap().len(), 3);
}
