//! What the deployed detector costs and how long trailguard takes to act, measured on the release binaries
//! through the Lambda Runtime API harness against moto (`make cost`, `make latency`).
//!
//! `perfbench cost`: a `trailguard gen` archive (its mix of harmless and planted events) is cut down to what
//! trailguard's EventBridge rules deliver (the events a rule triggers on: the rules' patterns are generated from
//! the same triggers), joined by the fixture corpus, and sent through one `detect` process behind a counting
//! proxy. It prints JSON: the share of management events delivered, the detector's CPU time per event (user and
//! system, from the kernel's accounting of the reaped child), its peak resident memory, each invocation's
//! duration, and the AWS calls it made per event by action. `tools/cost.py` prices them.
//!
//! `perfbench latency`: 1,000 agent sessions each attach AdministratorAccess to their role; for each, the
//! `detect` invocation that judges the event and puts the finding on the bus, plus the `remediate` invocation that
//! detaches the policy and writes the revocation. p50 and p99 of their sum: trailguard's own share (CloudTrail's
//! delivery to EventBridge, EventBridge's to the functions, and IAM's propagation come on top).
//!
//! `perfbench agents`: what an agent's event adds. The calls of a `trailguard gen` archive are replayed three
//! times (with the fixture corpus's calls), each time as made by other sessions: people's sessions (no agent signal), agents known by their session
//! name (`agent-run-*`, a signal the record shows) and agents known only through the registry (session-tagged by
//! the `AssumeRole` that issued their keys). Each replay delivers what trailguard's rules would deliver for that
//! actor and runs in its own `detect` process, so CPU, invocation time and AWS calls (DynamoDB's among them) are
//! per event of that kind, and the agents' figures are ratios against the people's from the same run.

// A benchmark: a failed unwrap is a failed measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use harness::aws::{create_role, inline_policy};
use harness::events::{assume, issued_identity, session, sts_time};
use harness::faults::FaultProxy;
use harness::moto::HOME_ACCOUNT;
use harness::runtime::{binary, run_lambda, Run};
use harness::stage::{attach_event, Stage, ADMIN, REVOCATIONS};
use serde_json::{json, Value};

/// CPU seconds (user + system) of this process's reaped children, from `/proc/self/stat`.
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name in parentheses; cutime and cstime are fields 16 and 17 (1-based).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

fn envelope(record: &Value, i: usize) -> Value {
    let source = record["eventSource"].as_str().unwrap_or("iam.amazonaws.com");
    json!({
        "version": "0", "id": format!("eb-{i}"), "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", source.split('.').next().unwrap_or("iam")),
        "account": record["recipientAccountId"].as_str().unwrap_or(HOME_ACCOUNT),
        "time": record["eventTime"].clone(), "region": record["awsRegion"].as_str().unwrap_or("us-east-1"),
        "resources": [], "detail": record
    })
}

/// The records of a `trailguard gen` archive of `events` management events.
fn generated(events: usize) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("trailguard-perfbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = std::process::Command::new(binary("trailguard"))
        .args(["gen", "--out", dir.to_str().unwrap(), "--events", &events.to_string(), "--account", HOME_ACCOUNT])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut out = Vec::new();
    records(&dir, &mut out);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Every record of every `.json`/`.json.gz` under `dir`.
fn records(dir: &Path, out: &mut Vec<Value>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            records(&path, out);
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(bytes.as_slice()).read_to_string(&mut text).unwrap();
            text
        } else if name.ends_with(".json") {
            String::from_utf8(bytes).unwrap()
        } else {
            continue;
        };
        if let Ok(doc) = serde_json::from_str::<Value>(&text) {
            out.extend(doc["Records"].as_array().cloned().unwrap_or_default());
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn run(stage: &Stage, name: &str, events: Vec<Value>) -> Run {
    let run = run_lambda(&binary(name), &stage.env(&[]), events, Duration::from_secs(1800));
    assert!(run.init_error.is_none(), "{name}: {:?}\n{}", run.init_error, run.logs);
    run
}

async fn cost(events: usize) -> Value {
    let generated = generated(events);
    let engine = trailguard_core::Engine::new(trailguard_core::Config::default());
    let delivered = |r: &&Value| {
        trailguard_core::event::parse_record(&r.to_string()).is_ok_and(|r| !engine.triggered_rules(&r).is_empty())
    };
    let mut mix: Vec<Value> = generated.iter().filter(delivered).cloned().collect();
    let from_gen = mix.len();
    let mut corpus = Vec::new();
    records(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events"), &mut corpus);
    mix.extend(corpus.iter().filter(delivered).cloned());
    let events: Vec<Value> = mix.iter().enumerate().map(|(i, r)| envelope(r, i)).collect();

    let mut stage = Stage::new().await;
    let proxy = FaultProxy::start(stage.moto.port);
    stage.endpoint = Some(proxy.endpoint());
    let sent = events.len();
    let mut measured = measure(&stage, &proxy, events);
    let about = json!({
        "binary": binary("detect").display().to_string(),
        "management_events": generated.len(),
        "delivered_from_gen": from_gen,
        "delivered_share": from_gen as f64 / generated.len() as f64,
        "events_sent": sent,
        "from_fixture_corpus": sent - from_gen,
    });
    measured.as_object_mut().unwrap().extend(about.as_object().unwrap().clone());
    measured
}

async fn latency(findings: usize) -> Value {
    const ROLES: usize = 100;
    let stage = Stage::new().await;
    let mut role_ids = Vec::new();
    for r in 0..ROLES {
        let name = format!("agent-{r:03}");
        role_ids.push(create_role(&stage.iam, &name, "/").await);
        stage.iam.attach_role_policy().role_name(&name).policy_arn(ADMIN).send().await.unwrap();
    }
    let events: Vec<Value> = (0..findings)
        .map(|i| {
            let role = format!("agent-{:03}", i % ROLES);
            let identity = session(HOME_ACCOUNT, &role, &role_ids[i % ROLES], &format!("agent-run-{i}"));
            attach_event(identity, &role, ADMIN, &format!("e-{i:05}"))
        })
        .collect();
    let detect = tokio::task::block_in_place(|| run(&stage, "detect", events));
    let mut finding_events = Vec::new();
    loop {
        let got = stage.out.bus_events().await;
        if got.is_empty() {
            break;
        }
        finding_events.extend(got.into_iter().filter(|e| e["detail-type"] == "Trailguard Finding"));
    }
    assert_eq!(finding_events.len(), findings, "one finding per event");
    let remediate = tokio::task::block_in_place(|| run(&stage, "remediate", finding_events.clone()));
    let index = |request: &str| request.split('-').nth(1).unwrap().parse::<usize>().unwrap();
    let mut detect_ms = vec![0.0; findings];
    for i in &detect.invocations {
        detect_ms[index(&i.request_id)] = i.elapsed.as_secs_f64() * 1000.0;
    }
    let mut total = Vec::new();
    let mut remediate_only = Vec::new();
    let mut failed = 0;
    for i in &remediate.invocations {
        failed += usize::from(i.result.is_err());
        let finding = &finding_events[index(&i.request_id)];
        let event =
            finding["detail"]["event_id"].as_str().or_else(|| finding["detail"]["finding"]["event_id"].as_str());
        let event: usize = event.unwrap().trim_start_matches("e-").parse().unwrap();
        let ms = i.elapsed.as_secs_f64() * 1000.0;
        remediate_only.push(ms);
        total.push(detect_ms[event] + ms);
    }
    for r in 0..ROLES {
        let role = format!("agent-{r:03}");
        assert!(inline_policy(&stage.iam, &role, REVOCATIONS).await.is_some(), "{role}: revocation written");
    }
    let mut detect_sorted = detect_ms.clone();
    for v in [&mut total, &mut remediate_only, &mut detect_sorted] {
        v.sort_by(f64::total_cmp);
    }
    let summary = |v: &[f64]| json!({"p50": percentile(v, 0.5), "p99": percentile(v, 0.99), "max": v[v.len() - 1]});
    json!({
        "binaries": [binary("detect").display().to_string(), binary("remediate").display().to_string()],
        "findings": findings,
        "failed_remediations": failed,
        "detect_ms": summary(&detect_sorted),
        "remediate_ms": summary(&remediate_only),
        "trailguard_share_ms": summary(&total),
    })
}

/// CPU, invocation time and AWS calls of one `detect` process over `events` (calls counted by `proxy` while it ran).
fn measure(stage: &Stage, proxy: &FaultProxy, events: Vec<Value>) -> Value {
    let n = events.len() as f64;
    let calls_before = proxy.counts();
    let cpu_before = children_cpu();
    let detect = tokio::task::block_in_place(|| run(stage, "detect", events));
    let cpu = children_cpu() - cpu_before;
    let failed = detect.invocations.iter().filter(|i| i.result.is_err()).count();
    let mut durations: Vec<f64> = detect.invocations.iter().map(|i| i.elapsed.as_secs_f64() * 1000.0).collect();
    durations.sort_by(f64::total_cmp);
    let calls: BTreeMap<String, f64> = proxy
        .counts()
        .into_iter()
        .map(|(action, total)| {
            let n_action = total - calls_before.get(&action).copied().unwrap_or(0);
            (action, n_action as f64 / n)
        })
        .filter(|(_, per_event)| *per_event > 0.0)
        .collect();
    // The proxy names an action without its service; these are the state table's.
    const DYNAMODB: &[&str] = &[
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
    ];
    let dynamodb: f64 = calls.iter().filter(|(a, _)| DYNAMODB.contains(&a.as_str())).map(|(_, v)| v).sum();
    let peak = detect.memory.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    json!({
        "events": detect.invocations.len(),
        "failed_invocations": failed,
        "cpu_seconds": cpu,
        "cpu_ms_per_event": 1000.0 * cpu / n,
        "cold_start_ms": detect.cold_start.map(|d| d.as_secs_f64() * 1000.0),
        "peak_rss_mib": peak as f64 / 1024.0,
        "log_bytes_per_event": detect.logs.len() as f64 / n,
        "duration_ms": {"mean": durations.iter().sum::<f64>() / n,
                        "p50": percentile(&durations, 0.5), "p99": percentile(&durations, 0.99)},
        "dynamodb_calls_per_event": dynamodb,
        "calls_per_event": calls,
    })
}

async fn agents(events: usize) -> Value {
    const SESSIONS: usize = 100;
    let generated = generated(events);
    // gen's harmless traffic is mostly reads no rule takes; the fixture corpus adds the calls rules do take
    // (IAM writes, deletions, refusals, tampering), in the record shapes AWS documents.
    let mut calls = generated.clone();
    records(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events"), &mut calls);
    let engine = trailguard_core::Engine::new(trailguard_core::Config::default());
    let mut stage = Stage::new().await;
    let proxy = FaultProxy::start(stage.moto.port);
    stage.endpoint = Some(proxy.endpoint());
    let key = |kind: &str, k: usize| format!("ASIA{kind}{k:0>width$}", width = 16 - kind.len());
    let person =
        |k: usize| issued_identity("app-deployer", "AROAPERSONEXAMPLE", &format!("deploy-{k}"), &key("PERSON", k));
    let named = |k: usize| {
        let mut identity = session(HOME_ACCOUNT, "dev-agent", "AROANAMEDEXAMPLE", &format!("agent-run-{k}"));
        identity["accessKeyId"] = json!(key("NAMED", k));
        identity
    };
    let tagged = |k: usize| issued_identity("builder", "AROATAGGEDEXAMPLE", &format!("run-{k}"), &key("TAGGED", k));
    // The tagged agents' sessions enter the registry first: AssumeRole by a person's session, with the agent tag.
    let issuing: Vec<Value> = (0..SESSIONS)
        .map(|k| {
            assume(
                person(k),
                "builder",
                "AROATAGGEDEXAMPLE",
                &format!("run-{k}"),
                &key("TAGGED", k),
                &[("trailguard:agent", "true")],
                &sts_time(time::Duration::hours(1)),
                &format!("issue-{k}"),
            )
        })
        .collect();
    let registering = measure(&stage, &proxy, issuing);
    // The same calls, made by each kind of session in turn; delivered as trailguard's rules would deliver them
    // for that actor, with recent times (behaviour windows and registry expiry are judged against them).
    let replay = |who: &dyn Fn(usize) -> Value, registry_only: bool| -> Vec<Value> {
        let mut out = Vec::new();
        for (i, record) in calls.iter().enumerate() {
            let mut record = record.clone();
            if record["userIdentity"]["type"] == "Root" || record["userIdentity"]["type"] == "AWSService" {
                continue;
            }
            record["userIdentity"] = who(i % SESSIONS);
            record["eventTime"] = json!(harness::events::ago(time::Duration::seconds((i % 600) as i64)));
            // A session known only through the registry is delivered by the calls rules subscribe to, as a
            // person's is: judge delivery on a person's record of the same call.
            let judged = if registry_only {
                let mut as_person = record.clone();
                as_person["userIdentity"] = person(i % SESSIONS);
                as_person
            } else {
                record.clone()
            };
            let delivered = trailguard_core::event::parse_record(&judged.to_string())
                .is_ok_and(|r| !engine.triggered_rules(&r).is_empty());
            if delivered {
                out.push(envelope(&record, out.len()));
            }
        }
        out
    };
    let people = measure(&stage, &proxy, replay(&person, false));
    let by_name = measure(&stage, &proxy, replay(&named, false));
    let by_registry = measure(&stage, &proxy, replay(&tagged, true));
    let ratio = |a: &Value, path: &str| {
        a.pointer(path).unwrap().as_f64().unwrap() / people.pointer(path).unwrap().as_f64().unwrap()
    };
    json!({
        "binary": binary("detect").display().to_string(),
        "calls_replayed": calls.len(),
        "registering_agent_sessions": registering,
        "people": people,
        "agents_by_session_name": by_name,
        "agents_by_registry": by_registry,
        "ratios_vs_people": {
            "by_session_name": {"cpu_ms_per_event": ratio(&by_name, "/cpu_ms_per_event"),
                                "p50_ms": ratio(&by_name, "/duration_ms/p50"),
                                "p99_ms": ratio(&by_name, "/duration_ms/p99")},
            "by_registry": {"cpu_ms_per_event": ratio(&by_registry, "/cpu_ms_per_event"),
                            "p50_ms": ratio(&by_registry, "/duration_ms/p50"),
                            "p99_ms": ratio(&by_registry, "/duration_ms/p99")},
        },
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let n = std::env::args().nth(2).and_then(|n| n.parse().ok());
    let out = match what.as_str() {
        "cost" => cost(n.unwrap_or(20_000)).await,
        "latency" => latency(n.unwrap_or(1_000)).await,
        "agents" => agents(n.unwrap_or(20_000)).await,
        _ => panic!("usage: perfbench cost [EVENTS] | latency [FINDINGS] | agents [EVENTS]"),
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
