//! The first hour with `trailguard` (issue 17): a closed pipe ends every command quietly, empty input is said
//! plainly, `revoke --dry-run` works offline and names its account, and the text output reads well.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trailguard-first-hour-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command with no AWS to reach: no credentials anywhere, an endpoint nothing listens on, no instance metadata.
fn offline(args: &[&str]) -> Command {
    let home = temp("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailguard"));
    command.args(args).env_clear().env("HOME", &home).env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"));
    command
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = offline(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Gone {
    Stdout,
    Stderr,
}

/// Runs the command with the reading end of one of its pipes closed before it writes: the pipe stays open on
/// the command's side, so its writes fail with `EPIPE` (a closed descriptor would not: the standard library
/// treats writes to it as success). Standard input, when given, is fed only after the reader has gone.
fn reader_gone(args: &[&str], stdin: Option<&[u8]>, gone: Gone) -> Output {
    let mut child = offline(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    match gone {
        Gone::Stdout => drop(child.stdout.take()),
        Gone::Stderr => drop(child.stderr.take()),
    }
    let mut input = child.stdin.take().unwrap();
    // The command may have stopped reading already (it ended on the closed pipe): that is fine.
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

fn assert_quiet(args: &[&str], stdin: Option<&[u8]>, gone: Gone) {
    let out = reader_gone(args, stdin, gone);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{args:?} with {gone:?} gone: stdout {stdout} stderr {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    if let Gone::Stdout = gone {
        assert!(stderr.is_empty(), "{args:?} ends quietly: {stderr}");
    }
}

const ADMIN_ATTACH: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEID:agent-run-1","arn":"arn:aws:sts::123456789012:assumed-role/dev/agent-run-1","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEID","arn":"arn:aws:iam::123456789012:role/dev","accountId":"123456789012","userName":"dev"}}},"eventTime":"2026-11-27T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","awsRegion":"us-east-1","requestParameters":{"roleName":"dev","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"},"responseElements":null,"eventID":"3a1b7c9e-0000-4000-8000-000000000001","recipientAccountId":"123456789012"}"#;

fn many_findings() -> Vec<u8> {
    (0..2000).map(|i| ADMIN_ATTACH.replace("000000000001", &format!("{i:012}")) + "\n").collect::<String>().into_bytes()
}

#[test]
fn a_closed_pipe_on_stdout_ends_every_command_quietly() {
    let events = many_findings();
    for format in ["text", "jsonl", "html"] {
        assert_quiet(&["scan", "--format", format, "-"], Some(&events), Gone::Stdout);
    }
    assert_quiet(&["explain", "-"], Some(ADMIN_ATTACH.as_bytes()), Gone::Stdout);
    let policy = br#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    assert_quiet(&["check-policy", "-"], Some(policy), Gone::Stdout);
    assert_quiet(&["rules"], None, Gone::Stdout);
    for format in ["json", "account-stack", "forwarder"] {
        assert_quiet(&["patterns", "--format", format], None, Gone::Stdout);
    }
    let revoke = ["revoke", "--role", "dev", "--session", "s", "--dry-run", "--role-id", "AROAX"];
    assert_quiet(&revoke, None, Gone::Stdout);
    assert_quiet(&["--help"], None, Gone::Stdout);
}

#[test]
fn a_closed_pipe_on_stderr_ends_every_command_quietly() {
    let events = many_findings();
    for format in ["text", "jsonl", "html"] {
        assert_quiet(&["scan", "--format", format, "-"], Some(&events), Gone::Stderr);
    }
    // A record that cannot be read is reported on stderr, and the scan still ends without a panic.
    let out = reader_gone(&["scan", "-"], Some(b"{\"eventName\": 7}\n{\"eventName\": 8}\n"), Gone::Stderr);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{:?}", out.status);
    let dir = temp("gen-stderr");
    assert_quiet(&["gen", "--out", dir.to_str().unwrap(), "--events", "100"], None, Gone::Stderr);
    // An error message that cannot be written still ends with its exit code, not a panic.
    let out = reader_gone(&["revoke", "--role", "dev"], None, Gone::Stderr);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_reader_that_stops_while_the_command_writes_ends_it_quietly() {
    let mut child = offline(&["scan", "--format", "jsonl", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let events = many_findings();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&events);
    });
    // `| head -c 100`: read a little of what it writes, then go.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn empty_input_is_said_plainly() {
    let empty = temp("empty-dir");
    let out = run(&["scan", empty.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "no input file at all is an input error: {stderr}");
    assert!(stderr.contains("holds no file") && stderr.contains("*.json.gz"), "{stderr}");

    let others = temp("other-names");
    std::fs::write(others.join("notes.txt"), "hello").unwrap();
    std::fs::write(others.join("trail.log"), "{}").unwrap();
    let out = run(&["scan", others.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds 2 file(s), none with a name scan reads"), "{stderr}");
    assert!(stderr.contains("notes.txt") && stderr.contains("*.jsonl"), "{stderr}");

    let file = others.join("empty.json");
    std::fs::write(&file, "").unwrap();
    let out = run(&["scan", file.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "files read that held no events are not an error: {stderr}");
    assert!(stderr.contains("note: the 1 file(s) read held no event"), "{stderr}");

    // A directory that gives nothing beside one that does: a note, and the scan goes on.
    let out = run(&["scan", "--format", "jsonl", empty.to_str().unwrap(), "-"], Some(ADMIN_ATTACH.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("holds no file"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);

    let out = run(&["scan", "--since", "2030-01-01T00:00:00Z", "-"], Some(ADMIN_ATTACH.as_bytes()));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("none of the 1 event(s) evaluated is inside the --since/--until window"));

    let help = text(&run(&["scan", "--help"], None).stdout);
    assert!(help.contains("*.json.gz") && help.contains("*.ndjson") && help.contains("exits 2"), "{help}");
}

#[test]
fn help_documents_exit_codes() {
    let help = text(&run(&["--help"], None).stdout);
    assert!(help.contains("Exit codes:") && help.contains("  1  `check-policy`") && help.contains("  2  "), "{help}");
}

#[test]
fn a_dry_run_revocation_works_offline() {
    let args = ["revoke", "--role", "dev", "--session", "agent-1", "--dry-run", "--role-id", "AROAEXAMPLE"];
    let out = run(&[&args[..], &["--issued-before", "2026-11-27T10:00:00Z"]].concat(), None);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let start = stdout.find('{').unwrap();
    let end = stdout.rfind('}').unwrap() + 1;
    let statement: serde_json::Value = serde_json::from_str(&stdout[start..end]).unwrap();
    assert_eq!(statement["Effect"], "Deny");
    assert_eq!(statement["Condition"]["StringEquals"]["aws:userid"], "AROAEXAMPLE:agent-1");
    assert_eq!(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2026-11-27T10:00:00Z");
    assert!(stdout.contains("no AWS call") && stdout.contains("Offline this shows only the new statement"), "{stdout}");
    assert!(stdout.contains("pruning") && stdout.contains("size budget"), "{stdout}");
    assert!(stdout.contains("issued before 2026-11-27T10:00:00Z") && !stdout.contains("before now"), "{stdout}");

    let out = run(&["revoke", "--role", "dev", "--session", "agent-1", "--dry-run", "--offline"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("<ROLE-ID>:agent-1") && stdout.contains("aws iam get-role --role-name dev"), "{stdout}");

    let out = run(&["revoke", "--role", "dev", "--all-older", "--dry-run", "--offline"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("\"Sid\": \"TrailguardRevokeAllOlder\""), "{}", text(&out.stdout));
}

#[test]
fn revoke_checks_its_arguments_before_any_call_and_says_aws_errors_in_one_line() {
    // Without credentials: one line naming the call, the cause and what to do; exit 1 as documented.
    let out = run(&["revoke", "--role", "dev", "--session", "s"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`sts:GetCallerIdentity` failed: no credentials found"), "{stderr}");
    assert!(stderr.contains("--dry-run --offline"), "{stderr}");

    // --assume-role without --account would act with the caller's credentials in the caller's account.
    let out = run(&["revoke", "--role", "dev", "--session", "s", "--assume-role", "trailguard-member"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--account"), "{}", text(&out.stderr));

    let out = run(&["revoke", "--role", "dev", "--session", "s", "--issued-before", "yesterday"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a bad time is found before any call: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        "trailguard: --issued-before `yesterday` is not an RFC 3339 time (such as 2026-11-01T13:00:00Z)"
    );
    let out = run(&["scan", "--since", "noon", "-"], Some(b""));
    assert_eq!(text(&out.stderr).matches("RFC 3339").count(), 1, "said once: {}", text(&out.stderr));
}

#[test]
fn text_scan_puts_the_summary_first_and_describes_each_rule_once() {
    let out = run(&["--config", fixtures().join("config.json").to_str().unwrap(), "scan", "-"], Some(&many_findings()));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.starts_with("Scanned 2000 event(s) in 1 file(s): 2000 finding(s)\nBy severity: 2000 critical"));
    let summary_end = stdout.find("Most severe findings").unwrap();
    assert!(stdout[..summary_end].contains("By rule:") && stdout[..summary_end].contains("Actors with the most"));
    assert!(stdout.find("[CRITICAL]").unwrap() > summary_end, "{stdout}");
    assert_eq!(stdout.matches("\nadmin-policy-grant: ").count(), 1, "described once: {stdout}");
    assert_eq!(stdout.matches("[CRITICAL]").count(), 20, "{stdout}");
}

#[test]
fn iam_actions_are_shown_not_event_names() {
    let file = fixtures().join("events/guardrail-tampering/update-function-code-trailguard-detect.json");
    let out = run(&["explain", file.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Event lambda:UpdateFunctionCode (CloudTrail: lambda.amazonaws.com"), "{stdout}");
    let out =
        run(&["--config", fixtures().join("config.json").to_str().unwrap(), "scan", file.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("lambda:UpdateFunctionCode"), "{stdout}");
    assert!(!stdout.contains("UpdateFunctionCode20150331v2"), "{stdout}");
    let config = fixtures().join("config.json");
    let out = run(&["--config", config.to_str().unwrap(), "scan", "--format", "html", file.to_str().unwrap()], None);
    let page = text(&out.stdout);
    assert!(page.contains("lambda:UpdateFunctionCode") && !page.contains("20150331v2"), "{page}");
}

#[test]
fn rules_say_their_severities() {
    let stdout = text(&run(&["rules"], None).stdout);
    assert!(stdout.contains("root-usage\n  severity: critical / high"), "{stdout}");
    assert_eq!(stdout.matches("  severity: ").count(), trailguard_core::rules::registry().len(), "{stdout}");
}
