//! The `trailguard` binary as a user runs it: arguments in, text and exit codes out.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn trailguard(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailguard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ADMIN_ATTACH: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEID:agent-run-1",
 "arn":"arn:aws:sts::123456789012:assumed-role/dev/agent-run-1","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE",
 "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEID","arn":"arn:aws:iam::123456789012:role/dev","accountId":"123456789012","userName":"dev"}}},
 "eventTime":"2026-11-27T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","awsRegion":"us-east-1",
 "requestParameters":{"roleName":"dev","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"},"responseElements":null,
 "eventID":"3a1b7c9e-0000-4000-8000-000000000001","recipientAccountId":"123456789012"}"#;

#[test]
fn scan_prints_jsonl_findings_from_stdin() {
    let out = trailguard(&["scan", "--format", "jsonl", "-"], Some(ADMIN_ATTACH.replace('\n', "").as_bytes()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["rule"], "admin-policy-grant");
    assert_eq!(lines[0]["severity"], "critical");
    assert_eq!(lines[0]["actor"]["agent"]["signal"], "session_name");
    assert_eq!(lines[0]["remediation"][0]["action"], "detach_managed_policy");
    assert_eq!(lines[0]["remediation"][1]["action"], "revoke_session");
    assert!(text(&out.stderr).contains("read 1 file(s), 1 event(s)"), "{}", text(&out.stderr));
}

#[test]
fn scan_of_the_fixture_tree_summarises_and_reports_counts() {
    let out = trailguard(
        &[
            "--config",
            fixtures().join("config.json").to_str().unwrap(),
            "scan",
            fixtures().join("events").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("[CRITICAL]"), "{stdout}");
    assert!(stdout.contains("root-usage"));
    assert!(text(&out.stderr).contains("0 unreadable file(s), 0 unreadable record(s)"), "{}", text(&out.stderr));
}

#[test]
fn scan_reports_unreadable_input_and_goes_on() {
    let dir = std::env::temp_dir().join(format!("trailguard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a-broken.json"), b"{\"Records\": [").unwrap();
    std::fs::write(
        dir.join("b-bad-record.json"),
        br#"{"Records":[{"eventSource":"iam.amazonaws.com","eventName":7}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("c-good.json"), ADMIN_ATTACH.as_bytes()).unwrap();
    let out = trailguard(&["scan", "--format", "jsonl", dir.to_str().unwrap()], None);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a-broken.json: input is not JSON"), "{stderr}");
    assert!(stderr.contains("b-bad-record.json: record 0: `eventName`: invalid type: integer `7`"), "{stderr}");
    assert!(stderr.contains("skipped 1 unreadable file(s), 1 unreadable record(s)"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 1, "the good file was still scanned");
}

#[test]
fn missing_path_and_bad_config_fail_clearly() {
    let out = trailguard(&["scan", "/nonexistent/trail.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("skipped /nonexistent/trail.json"));
    let dir = std::env::temp_dir().join(format!("trailguard-cfg-{}.json", std::process::id()));
    std::fs::write(&dir, br#"{"rules":{"root-usge":{}}}"#).unwrap();
    let out = trailguard(&["--config", dir.to_str().unwrap(), "rules"], None);
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown rule `root-usge`"), "{}", text(&out.stderr));
}

#[test]
fn check_policy_exit_codes_follow_the_verdict() {
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            "identity",
            1,
            "full administrator access",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:Pass*","Resource":"*"}]}"#,
            "identity",
            1,
            "iam:PassRole on any role",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            "identity",
            0,
            "Nothing the rules flag",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#,
            "auto",
            1,
            "any AWS principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            "auto",
            0,
            "No outsider",
        ),
    ];
    for (doc, kind, code, says) in cases {
        let out = trailguard(&["check-policy", "--kind", kind, "-"], Some(doc.as_bytes()));
        assert_eq!(out.status.code(), Some(*code), "{doc}: {}", text(&out.stdout));
        assert!(text(&out.stdout).contains(says), "{doc}: {}", text(&out.stdout));
    }
    let out = trailguard(&["check-policy", "-"], Some(b"{\"Statement\":[{\"Effect\":\"Perhaps\",\"Action\":\"*\"}]}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("statement 0 has unknown `Effect` `Perhaps`"), "{}", text(&out.stderr));
}

#[test]
fn rules_lists_every_rule() {
    let out = trailguard(&["rules"], None);
    assert!(out.status.success());
    for id in [
        "root-usage",
        "admin-policy-grant",
        "wildcard-policy-grant",
        "passrole-grant",
        "trust-policy-grant",
        "agent-sensitive-call",
        "agent-behaviour",
        "audit-tampering",
        "guardrail-tampering",
    ] {
        assert!(text(&out.stdout).contains(id), "{id}");
    }
}

#[test]
fn the_bad_input_corpus_gives_each_documented_outcome_through_the_cli() {
    let dir = fixtures().join("bad-input");
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut failures = Vec::new();
    for line in expected.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (file, outcome) = line.split_once('\t').unwrap();
        let out = trailguard(&["scan", "--format", "jsonl", dir.join("cases").join(file).to_str().unwrap()], None);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let (kind, what) = outcome.split_once(':').unwrap_or((outcome, ""));
        let good = match kind {
            "input-error" | "record-error" => out.status.code() == Some(2) && stderr.contains(what),
            "finding" => out.status.success() && stdout.lines().any(|l| l.contains(&format!("\"rule\":\"{what}\""))),
            _ => out.status.success() && stdout.is_empty(),
        };
        if !good || stderr.contains("panicked") {
            failures.push(format!("{file}: expected {outcome}, exit {:?}, stderr {stderr}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_says_rule_by_rule_why() {
    let file = fixtures().join("events/admin-policy-grant/agent-attaches-administratoraccess-to-own-role.json");
    let out = trailguard(&["explain", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("AI agent: role `ai-agent-deployer` matches `ai-agent*`"), "{stdout}");
    assert!(stdout.contains("full administrator access"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("admin-policy-grant") && l.contains("FINDING critical")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("agent-sensitive-call") && l.contains("more specific rule")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("root-usage") && l.contains("not its event")), "{stdout}");
    let service = fixtures().join("events/harmless/kms-deletes-key-after-waiting-period-service-event.json");
    let out = trailguard(&["explain", service.to_str().unwrap()], None);
    assert!(text(&out.stdout).contains("Not judged: AWS itself acted"), "{}", text(&out.stdout));
}

#[test]
fn scan_finds_exactly_what_gen_planted_and_filters_narrow_it() {
    let dir = std::env::temp_dir().join(format!("trailguard-gen-{}", std::process::id()));
    let out = trailguard(&["gen", "--out", dir.to_str().unwrap(), "--events", "8000", "--seed", "7"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let planted: std::collections::BTreeSet<(String, String)> = std::fs::read_to_string(dir.join("planted.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (id, rule) = l.split_once('\t').unwrap();
            (id.to_owned(), rule.to_owned())
        })
        .collect();
    assert!(planted.len() >= 8, "every rule is planted at least once: {planted:?}");
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--format", "jsonl"];
        args.extend_from_slice(extra);
        args.push(dir.to_str().unwrap());
        let out = trailguard(&args, None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let f: serde_json::Value = serde_json::from_str(l).unwrap();
                (f["event_id"].as_str().unwrap().to_owned(), f["rule"].as_str().unwrap().to_owned())
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(scan(&[]), planted, "exactly the planted findings, no more, no less");
    assert_eq!(scan(&["--no-prefilter"]), planted, "the pre-filter drops nothing");
    let roots = scan(&["--rule", "root-usage"]);
    assert!(!roots.is_empty() && roots.iter().all(|(_, r)| r == "root-usage"));
    assert!(scan(&["--since", "2026-11-02T00:00:00Z"]).is_empty(), "the archive is of 2026-11-01");
    let mallory = scan(&["--actor", "*mallory*"]);
    assert!(!mallory.is_empty() && mallory.iter().all(|(_, r)| r == "audit-tampering" || r == "guardrail-tampering"));
    let out = trailguard(&["scan", "--rule", "no-such-rule", dir.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `gen --jsonl` of 12,000 events (larger than a whole-file read) with `seed`, in a fresh directory named after
/// `name`: the directory and the file.
fn generated_jsonl(name: &str, seed: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("trailguard-{name}-{}", std::process::id()));
    let out =
        trailguard(&["gen", "--out", dir.to_str().unwrap(), "--events", "12000", "--seed", seed, "--jsonl"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.join("events.jsonl");
    (dir, file)
}

/// A JSON-lines file too large to read whole is streamed in blocks and evaluated in parallel: the same findings as
/// the gzipped archive of the same seed, the line numbers of bad lines right, a progress line only when asked.
#[test]
fn a_large_json_lines_file_is_streamed_with_progress_and_an_html_report() {
    let (dir, file) = generated_jsonl("jsonl", "3");
    let mut lines = std::fs::read_to_string(&file).unwrap();
    assert!(lines.len() > 8 << 20, "larger than a whole-file read: {} bytes", lines.len());
    // Two damaged lines far apart: each is named by its number, the rest is still scanned.
    let mut all: Vec<&str> = lines.lines().collect();
    all.insert(10_500, "{\"eventSource\": \"iam.amazonaws.com\", \"eventName\": ");
    all.insert(2, "not json");
    lines = all.join("\n") + "\n";
    std::fs::write(&file, &lines).unwrap();
    let planted: std::collections::BTreeSet<String> = std::fs::read_to_string(dir.join("planted.tsv"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();

    let out = trailguard(&["scan", "--format", "jsonl", "--progress", "always", file.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let found: std::collections::BTreeSet<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(found, planted);
    assert!(stderr.contains("line 3:") && stderr.contains("line 10502:"), "{stderr}");
    assert!(stderr.contains("read 1 file(s), 12000 event(s)") && stderr.contains("2 unreadable record(s)"), "{stderr}");
    assert!(stderr.contains("\x1b[2K") && stderr.contains(" events  ") && stderr.contains("/s"), "{stderr}");

    let piped = trailguard(&["scan", "--format", "html", file.to_str().unwrap()], None);
    assert!(!text(&piped.stderr).contains('\x1b'), "no progress line when standard error is not a terminal");
    let page = text(&piped.stdout);
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"), "{page}");
    assert!(page.contains(&format!("<b>{} finding(s)</b>", planted.len())), "{page}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An `AssumeRole` call in CloudTrail's shape, on one line: `caller` (session `caller_session`) assumes `role` and
/// gets `issued`; `request` adds to the request's parameters.
fn assume_line(caller: &str, caller_session: &str, role: &str, issued: &str, minute: u8, request: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAC:{caller_session}","arn":"arn:aws:sts::123456789012:assumed-role/ci/{caller_session}","accountId":"123456789012","accessKeyId":"{caller}"}},"eventTime":"2026-11-29T10:{minute:02}:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"e-assume-{issued}","awsRegion":"us-east-1","requestParameters":{{"roleArn":"arn:aws:iam::123456789012:role/{role}","roleSessionName":"{role}-run"{request}}},"responseElements":{{"credentials":{{"accessKeyId":"{issued}","expiration":"Nov 29, 2026, 11:00:00 AM"}},"assumedRoleUser":{{"assumedRoleId":"AROA{role}:{role}-run","arn":"arn:aws:sts::123456789012:assumed-role/{role}/{role}-run"}}}}}}"#
    )
}

/// A call by the session `key` of `role` (`readOnly` when `read`).
fn call_line(key: &str, role: &str, source: &str, name: &str, minute: u8, id: &str, read: bool) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROA{role}:{role}-run","arn":"arn:aws:sts::123456789012:assumed-role/{role}/{role}-run","accountId":"123456789012","accessKeyId":"{key}"}},"eventTime":"2026-11-29T10:{minute:02}:00Z","eventSource":"{source}","eventName":"{name}","eventID":"{id}","readOnly":{read},"awsRegion":"us-east-1","requestParameters":{{"userName":"u-{id}"}}}}"#
    )
}

/// A large plain JSON-lines file is read once for both passes (the second reads again, by offset, only what it
/// must): the same findings and counts as the same lines gzipped, which are read twice, for an agent chain whose
/// calls come before the call that started it and whose reads are spread over the file.
#[test]
fn a_large_plain_file_read_once_finds_what_its_gzipped_copy_finds() {
    let (dir, file) = generated_jsonl("once", "5");
    let mut lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
    let tag = r#","tags":[{"key":"trailguard:agent","value":"true"}]"#;
    // The grandchild's and the child's calls first; the tagged call that makes them agents' near the end.
    lines.insert(20, assume_line("ASIACHILD", "deployer-run", "auditor", "ASIAGRAND", 2, ""));
    lines.insert(40, assume_line("ASIATAGGED", "builder-run", "deployer", "ASIACHILD", 1, ""));
    lines.insert(6_000, call_line("ASIAGRAND", "auditor", "iam.amazonaws.com", "CreateUser", 3, "e-grand", false));
    let services = ["s3", "ec2", "iam", "lambda", "rds", "dynamodb", "kms", "sns", "sqs"];
    for (i, service) in services.iter().enumerate() {
        let read = call_line(
            "ASIACHILD",
            "deployer",
            &format!("{service}.amazonaws.com"),
            "ListThings",
            4,
            &format!("e-read-{i}"),
            true,
        );
        lines.insert(100 + i * 1_200, read);
    }
    lines.insert(11_000, assume_line("ASIAPERSON", "build", "builder", "ASIATAGGED", 0, tag));
    let body = lines.join("\n") + "\n";
    std::fs::write(&file, &body).unwrap();
    assert!(body.len() > 8 << 20, "streamed in blocks: {} bytes", body.len());
    let zipped = dir.join("zipped");
    std::fs::create_dir_all(&zipped).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body.as_bytes()).unwrap();
    std::fs::write(zipped.join("events.jsonl.gz"), gz.finish().unwrap()).unwrap();

    let plain = trailguard(&["scan", "--format", "jsonl", file.to_str().unwrap()], None);
    let gzipped = trailguard(&["scan", "--format", "jsonl", zipped.to_str().unwrap()], None);
    assert!(plain.status.success() && gzipped.status.success(), "{}", text(&plain.stderr));
    assert_eq!(text(&plain.stdout), text(&gzipped.stdout));
    let summary = |out: &Output| text(&out.stderr).lines().last().unwrap_or_default().to_owned();
    assert_eq!(summary(&plain), summary(&gzipped));
    let findings: Vec<serde_json::Value> =
        text(&plain.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let grand = findings.iter().find(|f| f["event_id"] == "e-grand").expect("the grandchild's call is found");
    assert_eq!(grand["actor"]["agent"]["signal"], "parent_session", "{grand}");
    let behaviour = findings.iter().filter(|f| f["rule"] == "agent-behaviour").count();
    assert!(behaviour >= 1, "the child's reads from nine services: {findings:?}");
    // Standard input before it is read too: the first pass leaves standard input out, and numbers the file first.
    let stdin = call_line("ASIAGRAND", "auditor", "iam.amazonaws.com", "CreateUser", 5, "e-stdin", false) + "\n";
    let both = trailguard(&["scan", "--format", "jsonl", "-", file.to_str().unwrap()], Some(stdin.as_bytes()));
    assert!(both.status.success(), "{}", text(&both.stderr));
    assert!(summary(&both).contains("read 2 file(s)") && summary(&both).contains("skipped 0 unreadable file(s)"));
    assert!(text(&both.stdout).contains("e-stdin") && text(&both.stdout).contains(text(&plain.stdout).trim_end()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A person's CI session assuming `builder` with the agent session tag: the session `ASIATAGGED` is an agent's,
/// known only through the registry.
const TAGGED_ASSUME: &str = r#"{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventTime":"2026-11-29T10:00:00Z","eventID":"e-assume",
 "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAPERSON","accountId":"123456789012","arn":"arn:aws:sts::123456789012:assumed-role/ci/build"},
 "requestParameters":{"roleArn":"arn:aws:iam::123456789012:role/builder","tags":[{"key":"trailguard:agent","value":"true"}]},
 "responseElements":{"credentials":{"accessKeyId":"ASIATAGGED","expiration":"Nov 29, 2026, 11:00:00 AM"},
 "assumedRoleUser":{"assumedRoleId":"AROABUILDER:run-1","arn":"arn:aws:sts::123456789012:assumed-role/builder/run-1"}}}"#;

#[test]
fn scan_recognises_a_session_tagged_agent_whatever_the_order_of_files() {
    let call = r#"{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventTime":"2026-11-29T10:05:00Z","eventID":"e-call",
 "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIATAGGED","accountId":"123456789012","principalId":"AROABUILDER:run-1",
 "arn":"arn:aws:sts::123456789012:assumed-role/builder/run-1"},"requestParameters":{"userName":"backdoor"}}"#;
    let dir = std::env::temp_dir().join(format!("trailguard-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The call's file comes first by name: the registry is built before anything is judged.
    std::fs::write(
        dir.join("a.jsonl"),
        format!("{}\n{}\n", call.replace('\n', ""), call.replace('\n', "").replace("e-call", "e-call-2")),
    )
    .unwrap();
    std::fs::write(dir.join("b.json"), TAGGED_ASSUME.replace('\n', "")).unwrap();
    for prefilter in [true, false] {
        let (findings, stderr) = scan_jsonl(&dir, prefilter);
        assert_eq!(findings.len(), 2, "{stderr}");
        assert!(findings
            .iter()
            .all(|f| f["rule"] == "agent-sensitive-call" && f["actor"]["agent"]["signal"] == "session_tag"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `scan --format jsonl` of `dir`, with or without the pre-filter: its findings, and its standard error.
fn scan_jsonl(dir: &std::path::Path, prefilter: bool) -> (Vec<serde_json::Value>, String) {
    let mut args = vec!["scan", "--format", "jsonl", dir.to_str().unwrap()];
    if !prefilter {
        args.push("--no-prefilter");
    }
    let out = trailguard(&args, None);
    let findings = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (findings, text(&out.stderr))
}

#[test]
fn scan_finds_one_enumeration_whatever_the_order_of_files_and_with_or_without_the_prefilter() {
    // A session known only through the registry reads from nine services (the default threshold is eight).
    let services = ["s3", "ec2", "iam", "lambda", "rds", "dynamodb", "kms", "sns", "sqs"];
    let read = |i: usize| {
        format!(
            r#"{{"eventSource":"{}.amazonaws.com","eventName":"ListThings","eventTime":"2026-11-29T10:0{}:00Z","eventID":"e-read-{i}","readOnly":true,"userIdentity":{{"type":"AssumedRole","accessKeyId":"ASIATAGGED","accountId":"123456789012","principalId":"AROABUILDER:run-1","arn":"arn:aws:sts::123456789012:assumed-role/builder/run-1"}}}}"#,
            services[i % 9],
            i % 9
        )
    };
    let first: Vec<String> = (0..5).map(read).chain([TAGGED_ASSUME.replace('\n', "")]).collect();
    let second: Vec<String> = (5..12).map(read).collect();
    let dir = std::env::temp_dir().join(format!("trailguard-enumeration-{}", std::process::id()));
    let mut seen = std::collections::BTreeSet::new();
    for (a, b) in [(&first, &second), (&second, &first)] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.jsonl"), a.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("b.jsonl"), b.join("\n") + "\n").unwrap();
        for prefilter in [true, false] {
            let (findings, stderr) = scan_jsonl(&dir, prefilter);
            assert_eq!(findings.len(), 1, "{findings:?} {stderr}");
            let finding = &findings[0];
            assert_eq!(finding["rule"], "agent-behaviour");
            let mut evidence: Vec<String> = finding["evidence"]["notes"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|n| n.as_str()?.split_whitespace().nth(1).map(str::to_owned))
                .filter(|call| call.ends_with(":ListThings"))
                .collect();
            evidence.sort();
            seen.insert((finding["id"].to_string(), finding["title"].to_string(), evidence));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // The same finding (its id comes from the counter), with one call to each service as evidence (which call of
    // a service read twice depends on the order of reading; which services, never).
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (_, title, evidence) = seen.into_iter().next().unwrap();
    assert!(title.contains("read from more than 8 services"), "{title}");
    let mut want: Vec<String> = services.iter().map(|s| format!("{s}:ListThings")).collect();
    want.sort();
    assert_eq!(evidence, want);
}

#[test]
fn scan_answers_behaviour_in_input_order_whatever_the_workers_timing() {
    // Eight files of three refused calls each by one person's session, all in one five-minute window (the default
    // threshold is ten): the eleventh in input order crosses, on any number of threads, every time.
    let refused = |file: usize, n: usize| {
        format!(
            r#"{{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventTime":"2026-11-29T10:0{n}:0{file}Z","eventID":"e-{file}-{n}","errorCode":"AccessDenied","userIdentity":{{"type":"AssumedRole","accessKeyId":"ASIAPERSON","accountId":"123456789012","principalId":"AROAOPS:alice","arn":"arn:aws:sts::123456789012:assumed-role/ops/alice"}},"requestParameters":{{"userName":"u{file}{n}"}}}}"#
        )
    };
    let dir = std::env::temp_dir().join(format!("trailguard-in-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in 0..8 {
        let lines: Vec<String> = (0..3).map(|n| refused(file, n)).collect();
        std::fs::write(dir.join(format!("{file}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
    let mut runs = std::collections::BTreeSet::new();
    // Before answering in input order, about one run in twelve on four threads named another event.
    for threads in ["1", "4", "4", "4", "4", "4", "4", "4", "4", "4", "4", "4", "4"] {
        let out = Command::new(env!("CARGO_BIN_EXE_trailguard"))
            .args(["scan", "--format", "jsonl", dir.to_str().unwrap()])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        let findings: Vec<serde_json::Value> =
            text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let behaviour: Vec<&serde_json::Value> = findings.iter().filter(|f| f["rule"] == "agent-behaviour").collect();
        assert_eq!(behaviour.len(), 1, "{findings:?}");
        assert_eq!(behaviour[0]["event_id"], "e-3-1", "{:?}", behaviour[0]);
        runs.insert(text(&out.stdout));
    }
    assert_eq!(runs.len(), 1, "every run gives the same findings: {runs:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
