//! The backtest fan-out on moto's S3: `trailguard backtest` writes the shards and the manifest, the `backtest`
//! Lambda answers Batch Operations task events (schema 2.0) through the Runtime API harness, reading the archive
//! and writing findings partitioned for Athena; together they find what `scan` finds on disk. moto runs no Batch
//! Operations job and no Athena query: the harness plays Batch Operations' part (one event per manifest row),
//! and the Glue table in `infra/backtest.yaml` is checked against a finding the Lambda wrote.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::moto::Moto;
use harness::runtime::{binary, run_lambda};
use serde_json::{json, Value};

fn trailguard(env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary("trailguard")).args(args).envs(env.iter().cloned()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.push(path);
        }
    }
    all.sort();
    all
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.unwrap();
    out.body.collect().await.unwrap().to_vec()
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

fn task_event(job: &str, task: usize, bucket: &str, key: &str, arguments: &Value) -> Value {
    json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": format!("inv-{task}"),
        "job": {"id": job, "userArguments": arguments},
        "tasks": [{"taskId": format!("task-{task}"), "s3Key": key, "s3VersionId": null, "s3Bucket": bucket}],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fan_out_finds_what_scan_finds_on_disk_and_names_what_it_could_not_read() {
    let dir = std::env::temp_dir().join(format!("trailguard-backtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let local = dir.join("archive");
    let (code, _, err) = trailguard(
        &[],
        &[
            "gen",
            "--out",
            local.to_str().unwrap(),
            "--events",
            "6000",
            "--account",
            "111122223333",
            "--account",
            "444455556666",
        ],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(local.join("planted.tsv")).unwrap();
    let (code, on_disk, err) = trailguard(&[], &["scan", "--format", "jsonl", local.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let expected: BTreeSet<String> = on_disk.lines().map(str::to_owned).collect();
    assert!(expected.len() >= 4);

    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk());
    for bucket in ["archive", "work"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let logs = files(&local);
    for file in &logs {
        let relative = file.strip_prefix(&local).unwrap().to_str().unwrap();
        let key = format!("org/{}", relative.replacen("AWSLogs/", "AWSLogs/o-exampleorg1/", 1));
        s3.put_object().bucket("archive").key(key).body(std::fs::read(file).unwrap().into()).send().await.unwrap();
    }

    // The plan: shards of 3 logs, the manifest naming them, and the two commands.
    let function = "arn:aws:lambda:us-east-1:123456789012:function:trailguard-backtest";
    let (code, commands, err) = trailguard(
        &moto.env(),
        &[
            "backtest",
            "s3://archive/org/",
            "--work",
            "s3://work/runs/r1",
            "--per-shard",
            "3",
            "--function-arn",
            function,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let shards = logs.len().div_ceil(3);
    assert!(
        err.contains(&format!("wrote {shards} shard(s) of at most 3 log(s) ({} logs in all)", logs.len())),
        "{err}"
    );
    assert!(commands.contains("aws s3control create-job --region us-east-1 --account-id 123456789012"), "{commands}");
    assert!(commands.contains(r#""InvocationSchemaVersion":"2.0""#), "{commands}");
    assert!(commands.contains(r#""pass":"sessions""#), "{commands}");
    assert!(commands.contains("trailguard backtest-sessions s3://work/runs/r1/"), "{commands}");
    assert!(commands.contains(r#""resultsPrefix":"runs/r1/results/""#), "{commands}");
    assert!(commands.contains("aws s3control describe-job") && commands.contains("$SESSIONS_JOB"), "{commands}");
    let manifest = String::from_utf8(get(&s3, "work", "runs/r1/manifest.csv").await).unwrap();
    let rows: Vec<(String, String)> =
        manifest.lines().map(|l| l.split_once(',').map(|(b, k)| (b.to_owned(), k.to_owned())).unwrap()).collect();
    assert_eq!(rows.len(), shards, "{manifest}");
    let mut listed = Vec::new();
    for (bucket, key) in &rows {
        assert_eq!(bucket, "work");
        let text = String::from_utf8(get(&s3, bucket, key).await).unwrap();
        listed.extend(text.lines().map(str::to_owned));
    }
    assert_eq!(listed.len(), logs.len(), "every log in exactly one shard");
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), logs.len());

    // The first job: every shard's issuing calls; then the join, which prints the second job.
    let sessions = json!({"archiveBucket": "archive", "resultsBucket": "work", "resultsPrefix": "runs/r1/results/",
                          "pass": "sessions"});
    let first: Vec<Value> =
        rows.iter().enumerate().map(|(i, (b, k))| task_event("job-0", i, b, k, &sessions)).collect();
    let run = run_lambda(&binary("backtest"), &moto.env(), first, Duration::from_secs(120));
    assert_eq!(run.invocations.len(), shards, "{}", run.logs);
    for invocation in &run.invocations {
        let result = &invocation.result.as_ref().unwrap()["results"][0];
        assert_eq!(result["resultCode"], "Succeeded", "{result}");
    }
    let (code, second, err) = trailguard(&moto.env(), &["backtest-sessions", "s3://work/runs/r1"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("joined the issuing calls of {shards} shard(s)")), "{err}");
    assert!(second.contains(r#""pass":"findings""#) && second.contains("report-findings"), "{second}");

    // Batch Operations' part: one task event per manifest row, and three that cannot fully succeed.
    let arguments = json!({"archiveBucket": "archive", "resultsBucket": "work", "resultsPrefix": "runs/r1/results/"});
    let mut events: Vec<Value> =
        rows.iter().enumerate().map(|(i, (b, k))| task_event("job-1", i, b, k, &arguments)).collect();
    s3.put_object()
        .bucket("archive")
        .key("damaged.json.gz")
        .body(b"\x1f\x8b damaged".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("work")
        .key("runs/r1/shards/extra.txt")
        .body(format!("{}\ndamaged.json.gz\ngone.json.gz\n", listed[0]).into_bytes().into())
        .send()
        .await
        .unwrap();
    events.push(task_event("job-1", 90, "work", "runs/r1/shards/extra.txt", &arguments));
    events.push(task_event("job-1", 91, "work", "runs/r1/shards/missing.txt", &arguments));
    events.push(task_event("job-1", 92, "work", "runs/r1/shards/extra.txt", &json!({"resultsBucket": "work"})));

    let run = run_lambda(&binary("backtest"), &moto.env(), events, Duration::from_secs(120));
    assert!(run.init_error.is_none(), "{:?}\n{}", run.init_error, run.logs);
    assert_eq!(run.invocations.len(), shards + 3, "{}", run.logs);
    let mut replies: Vec<Value> = run.invocations.iter().map(|i| i.result.clone().unwrap()).collect();
    replies.sort_by_key(|r| r["invocationId"].as_str().unwrap().trim_start_matches("inv-").parse::<usize>().unwrap());
    for (i, reply) in replies.iter().take(shards).enumerate() {
        assert_eq!(reply["invocationSchemaVersion"], "2.0");
        assert_eq!(reply["treatMissingKeysAs"], "PermanentFailure");
        assert_eq!(reply["invocationId"], format!("inv-{i}"));
        let result = &reply["results"][0];
        assert_eq!(result["taskId"], format!("task-{i}"));
        assert_eq!(result["resultCode"], "Succeeded", "{reply}");
        assert!(
            result["resultString"].as_str().unwrap().starts_with("3 of 3 log(s) read") || i == shards - 1,
            "{reply}"
        );
    }
    let extra = &replies[shards]["results"][0];
    assert_eq!(extra["resultCode"], "PermanentFailure", "{extra}");
    let said = extra["resultString"].as_str().unwrap();
    assert!(said.starts_with("1 of 3 log(s) read"), "{said}");
    assert!(said.contains("damaged.json.gz: ") && said.contains("gone.json.gz: NoSuchKey"), "{said}");
    let missing = &replies[shards + 1]["results"][0];
    assert_eq!(missing["resultCode"], "PermanentFailure");
    assert!(missing["resultString"]
        .as_str()
        .unwrap()
        .contains("cannot read the shard runs/r1/shards/missing.txt: NoSuchKey"));
    let unconfigured = &replies[shards + 2]["results"][0];
    assert_eq!(unconfigured["resultString"], "user argument `archiveBucket` is missing");

    // The findings, partitioned by day and account, are exactly those of a scan on disk.
    let written = keys(&s3, "work", "runs/r1/results/findings/").await;
    let mut found = BTreeSet::new();
    let mut one = None;
    for key in &written {
        let mut text = String::new();
        flate2::read::GzDecoder::new(get(&s3, "work", key).await.as_slice()).read_to_string(&mut text).unwrap();
        for line in text.lines() {
            let finding: Value = serde_json::from_str(line).unwrap();
            let account = finding["account"].as_str().unwrap();
            let date = &finding["time"].as_str().unwrap()[..10];
            assert!(
                key.starts_with(&format!("runs/r1/results/findings/date={date}/account={account}/job-1-")),
                "{key}"
            );
            one.get_or_insert(finding);
            found.insert(line.to_owned());
        }
    }
    assert_eq!(found, expected);
    glue_table_reads_a_written_finding(&one.unwrap());

    // A log replaced after the listing (between the two jobs, say): the shard lists the ETag it had, so the task
    // names it unreadable instead of judging another version than the first job read.
    let (replaced, etag) = listed[0].split_once('\t').expect("the shard lists each log's ETag");
    assert!(etag.starts_with('"'), "{etag}");
    s3.put_object().bucket("archive").key(replaced).body(b"{\"Records\":[]}".to_vec().into()).send().await.unwrap();
    let again = vec![task_event("job-2", 0, &rows[0].0, &rows[0].1, &arguments)];
    let run = run_lambda(&binary("backtest"), &moto.env(), again, Duration::from_secs(60));
    let result = &run.invocations[0].result.as_ref().unwrap()["results"][0];
    assert_eq!(result["resultCode"], "PermanentFailure", "{result}");
    let said = result["resultString"].as_str().unwrap();
    assert!(said.starts_with("2 of 3 log(s) read") && said.contains("replaced after it was listed"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Glue table's columns in `infra/backtest.yaml` against a finding the Lambda wrote: every column is a field
/// of the finding with a matching type (Athena's JSON SerDe maps fields to columns by name), and the partition
/// keys are `date` and `account`.
fn glue_table_reads_a_written_finding(finding: &Value) {
    let columns = glue_table_reads_a_written_row("FindingsTable:", finding);
    assert!(columns.len() >= 10, "{columns:?}");
}

/// A Glue table's columns (the resource `logical_id` in `infra/backtest.yaml`) against a row the Lambda wrote.
fn glue_table_reads_a_written_row(logical_id: &str, row: &Value) -> Vec<(String, String)> {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/backtest.yaml")).unwrap();
    let from = template.find(&format!("\n  {logical_id}\n")).unwrap_or_else(|| panic!("{logical_id} in the template"));
    // The resource's body: the lines indented deeper than its name.
    let resource: String = template[from + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim().is_empty() || l.starts_with("   "))
        .map(|l| format!("{l}\n"))
        .collect();
    let section = |start: &str, end: &str| -> Vec<(String, String)> {
        let from = resource.find(start).unwrap_or_else(|| panic!("{start} in {logical_id}"));
        let rest = &resource[from + start.len()..];
        let rest = &rest[..rest.find(end).unwrap_or(rest.len())];
        let mut columns = Vec::new();
        let mut name = None;
        for line in rest.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("- Name: ") {
                name = Some(n.trim().to_owned());
            } else if let (Some(t), Some(n)) = (line.strip_prefix("Type: "), name.take()) {
                columns.push((n, t.trim().trim_matches('\'').to_owned()));
            }
        }
        columns
    };
    let columns = section("Columns:", "Location:");
    let partitions = section("PartitionKeys:", "\u{0}");
    assert_eq!(
        partitions,
        [("date".to_owned(), "string".to_owned()), ("account".to_owned(), "string".to_owned())],
        "partitioned by date and account"
    );
    for (name, kind) in &columns {
        let value = row.get(name).unwrap_or_else(|| panic!("column `{name}` is not a field of {row}"));
        check_type(name, kind, value);
    }
    assert!(columns.iter().all(|(n, _)| n != "account" && n != "date"), "partition keys are not columns too");
    columns
}

/// Whether a JSON value reads as a Hive type: strings, booleans, integers, and structs field by field (a
/// missing or null value reads as NULL).
fn check_type(name: &str, kind: &str, value: &Value) {
    if value.is_null() {
        return;
    }
    if let Some(fields) = kind.strip_prefix("struct<").and_then(|k| k.strip_suffix('>')) {
        assert!(value.is_object(), "`{name}` is {kind} but {value}");
        for field in split_top(fields) {
            let (field, inner) = field.split_once(':').unwrap();
            match value.get(field) {
                Some(v) => check_type(&format!("{name}.{field}"), inner, v),
                None => panic!("`{name}.{field}` is not in {value}"),
            }
        }
        return;
    }
    let fits = match kind {
        "string" => true, // OpenX's SerDe gives a nested value's JSON text for a string column
        "boolean" => value.is_boolean(),
        "int" | "bigint" => value.is_i64() || value.is_u64(),
        _ => panic!("`{name}`: type {kind} not checked"),
    };
    assert!(fits, "`{name}` is {kind} but {value}");
}

/// Splits `a:string,b:struct<c:int,d:string>` at its top-level commas.
fn split_top(fields: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in fields.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&fields[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&fields[start..]);
    out
}

/// Each record of a fixture as its own gzipped log file, under the account trail's layout: one shard each.
fn split_fixture(fixture: &str, out: &Path, sizes: &[usize]) -> Vec<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events").join(fixture);
    let records: Vec<Value> = serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()
        ["Records"]
        .as_array()
        .unwrap()
        .clone();
    let folder = out.join("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/29");
    std::fs::create_dir_all(&folder).unwrap();
    let stem = fixture.replace(['/', '.'], "-");
    let mut written = Vec::new();
    let mut rest = records.as_slice();
    for (i, size) in sizes.iter().enumerate() {
        let (part, after) = rest.split_at((*size).min(rest.len()));
        rest = after;
        let file = folder.join(format!("123456789012_CloudTrail_us-east-1_20261129T10{i:02}Z_{stem}.json.gz"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, json!({"Records": part}).to_string().as_bytes()).unwrap();
        std::fs::write(&file, gz.finish().unwrap()).unwrap();
        written.push(file);
    }
    assert!(rest.is_empty(), "{fixture}: sizes cover every record");
    written
}

async fn rows(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for key in keys(s3, bucket, prefix).await {
        let mut text = String::new();
        flate2::read::GzDecoder::new(get(s3, bucket, &key).await.as_slice()).read_to_string(&mut text).unwrap();
        all.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    all
}

/// The verdicts that span objects: a session tagged as an agent in one shard's `AssumeRole`, chained in a second
/// shard and acting in a third, is recognised there as `scan` recognises it on disk (through the registry the
/// first job's issuing calls build); a burst of refused calls and a session-tagged agent's survey of services,
/// each split over two shards, are one crossing each when their counts are added up as the shipped Athena query
/// does, as `scan` finds one `agent-behaviour` finding each; an agent's first use of a region after its learning
/// days, its history split over two shards, is the region the shipped query finds, as `scan` pages for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_tagged_in_one_shard_and_acting_in_another_is_judged_as_scan_judges_it() {
    let dir = std::env::temp_dir().join(format!("trailguard-backtest-span-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let local = dir.join("archive");
    let chain = split_fixture("agent-sessions/transitive-tags-chain.json", &local, &[1, 1, 1]);
    split_fixture("agent-behaviour/denied-burst-over.json", &local, &[6, 6]);
    split_fixture("agent-behaviour/enumeration-session-tagged-over.json", &local, &[5, 5]);
    split_fixture("agent-new-region/first-use-after-learning.json", &local, &[3, 3]);
    let (code, on_disk, err) = trailguard(&[], &["scan", "--format", "jsonl", local.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let local_findings: Vec<Value> = on_disk.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let behaviour: Vec<&Value> = local_findings.iter().filter(|f| f["rule"] == "agent-behaviour").collect();
    assert_eq!(behaviour.len(), 2, "{on_disk}");
    let new_regions: BTreeSet<&str> = local_findings
        .iter()
        .filter(|f| f["rule"] == "agent-new-region")
        .map(|f| f["target"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(new_regions.len(), 1, "{on_disk}");
    // Across shards, behaviour and regions are Athena's to judge: the fan-out writes observations for them.
    let across = |f: &&Value| f["rule"] == "agent-behaviour" || f["rule"] == "agent-new-region";
    let expected: BTreeSet<String> = local_findings.iter().filter(|f| !across(f)).map(Value::to_string).collect();
    assert!(expected.iter().any(|f| f.contains(r#""rule":"agent-sensitive-call""#) && f.contains("ASIACHILD")));
    // The near miss: the acting shard alone holds nothing that says agent.
    let (_, alone, _) = trailguard(&[], &["scan", "--format", "jsonl", chain[2].to_str().unwrap()]);
    assert!(!alone.contains("agent-sensitive-call"), "{alone}");

    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk());
    for bucket in ["archive", "work"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for file in files(&local) {
        let key = file.strip_prefix(&local).unwrap().to_str().unwrap().to_owned();
        s3.put_object().bucket("archive").key(key).body(std::fs::read(&file).unwrap().into()).send().await.unwrap();
    }
    let (code, _, err) =
        trailguard(&moto.env(), &["backtest", "s3://archive/", "--work", "s3://work/q/", "--per-shard", "1"]);
    assert_eq!(code, 0, "{err}");
    let manifest = String::from_utf8(get(&s3, "work", "q/manifest.csv").await).unwrap();
    let shards: Vec<String> = manifest.lines().map(|l| l.split_once(',').unwrap().1.to_owned()).collect();
    assert_eq!(shards.len(), 9, "{manifest}");
    let arguments = |pass: &str| json!({"archiveBucket": "archive", "resultsBucket": "work", "resultsPrefix": "results/", "pass": pass});
    let events = |job: &str, pass: &str| -> Vec<Value> {
        shards.iter().enumerate().map(|(i, k)| task_event(job, i, "work", k, &arguments(pass))).collect()
    };
    let results = |events: Vec<Value>| -> Vec<Value> {
        let run = run_lambda(&binary("backtest"), &moto.env(), events, Duration::from_secs(120));
        assert!(run.init_error.is_none(), "{:?}\n{}", run.init_error, run.logs);
        run.invocations.iter().map(|i| i.result.clone().unwrap()["results"][0].clone()).collect()
    };

    // Judging before the registry exists is refused, not done without it.
    let early = results(events("job-early", "findings"));
    assert!(
        early.iter().all(|r| r["resultCode"] == "PermanentFailure"
            && r["resultString"].as_str().unwrap().contains("no agent-session registry")),
        "{early:?}"
    );
    assert!(keys(&s3, "work", "results/").await.is_empty());
    // Nor is the join, while a shard's issuing calls are missing.
    let (code, _, err) = trailguard(&moto.env(), &["backtest-sessions", "s3://work/q/"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("9 of 9 shard(s) have no issuing calls written"), "{err}");

    for result in results(events("job-sessions", "sessions")) {
        assert_eq!(result["resultCode"], "Succeeded", "{result}");
    }
    let (code, _, err) = trailguard(&moto.env(), &["backtest-sessions", "s3://work/q/"]);
    assert_eq!(code, 0, "{err}");
    for result in results(events("job-findings", "findings")) {
        assert_eq!(result["resultCode"], "Succeeded", "{result}");
    }

    let found: BTreeSet<String> = rows(&s3, "work", "results/findings/").await.iter().map(Value::to_string).collect();
    assert_eq!(found, expected, "the fan-out's findings are scan's (behaviour and regions apart)");

    // What the shipped behaviour query computes: per session, kind and window, the distinct events (`denied`,
    // `deletions`) or services (`services`), over the threshold.
    let observations = rows(&s3, "work", "results/observations/").await;
    for kind in ["denied", "services", "region"] {
        let row = observations.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind} row"));
        glue_table_reads_a_written_row("ObservationsTable:", row);
    }
    let mut windows: std::collections::BTreeMap<(String, String, i64), (u64, BTreeSet<String>)> = Default::default();
    for o in observations.iter().filter(|o| o["kind"] != "region") {
        let window = (
            o["session"].as_str().unwrap().to_owned(),
            o["kind"].as_str().unwrap().to_owned(),
            o["window_start"].as_i64().unwrap(),
        );
        let entry = windows.entry(window).or_default();
        entry.0 = o["threshold"].as_u64().unwrap();
        entry.1.insert(o["value"].as_str().or(o["event_id"].as_str()).unwrap().to_owned());
    }
    let crossings: Vec<_> =
        windows.iter().filter(|(_, (threshold, counted))| counted.len() as u64 > *threshold).collect();
    assert_eq!(crossings.len(), 2, "{windows:?}");
    for ((session, kind, _), (_, counted)) in crossings {
        let word = if kind == "services" { "services" } else { "refused" };
        let finding = behaviour.iter().find(|f| f["title"].as_str().unwrap().contains(word)).unwrap();
        assert_eq!(Some(session.as_str()), finding["actor"]["access_key_id"].as_str(), "{kind}");
        // Denied: the events counted; services: the services read. `scan` names the first threshold+1 it met.
        let evidence = finding.to_string();
        let named = counted.iter().filter(|c| evidence.contains(c.split('.').next().unwrap())).count();
        assert!(named > crossings_threshold(finding), "{kind}: {counted:?} in {evidence}");
    }

    // What the shipped new-region query computes: each identity's first use of each region, paged when it is not
    // the identity's first region and comes at least its learning days after the identity was first seen.
    let mut uses: std::collections::BTreeMap<(String, String), (String, u64)> = Default::default();
    for o in observations.iter().filter(|o| o["kind"] == "region") {
        let key = (o["session"].as_str().unwrap().to_owned(), o["value"].as_str().unwrap().to_owned());
        let time = o["time"].as_str().unwrap().to_owned();
        let first = uses.entry(key).or_insert_with(|| (time.clone(), o["threshold"].as_u64().unwrap()));
        first.0 = first.0.clone().min(time);
    }
    let seconds = |t: &str| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    let paged: BTreeSet<&str> = uses
        .iter()
        .filter(|((identity, region), (first_use, learning_days))| {
            let mine: Vec<_> = uses.iter().filter(|((i, _), _)| i == identity).collect();
            let (first_region, first_seen) =
                mine.iter().map(|((_, r), (t, _))| (r.as_str(), seconds(t))).min_by_key(|(r, t)| (*t, *r)).unwrap();
            first_region != region && seconds(first_use) >= first_seen + time::Duration::days(*learning_days as i64)
        })
        .map(|((_, region), _)| region.as_str())
        .collect();
    assert_eq!(paged, new_regions, "{uses:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The threshold a behaviour finding crossed, from its title ("more than N ...").
fn crossings_threshold(finding: &Value) -> usize {
    let title = finding["title"].as_str().unwrap();
    let after = title.split("more than ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}
