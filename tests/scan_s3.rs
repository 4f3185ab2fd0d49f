//! `trailguard scan s3://...` against moto's S3 with the real SDK: a generated archive uploaded under both of
//! CloudTrail's layouts gives the same findings as the same files on disk; the date window becomes day folders;
//! throttled objects are retried; objects that cannot be read are named and the rest is scanned.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::faults::{Fault, FaultProxy};
use harness::moto::Moto;
use harness::runtime::binary;

const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn trailguard(env: &[(String, String)], args: &[&str]) -> Out {
    let out = Command::new(binary("trailguard")).args(args).envs(env.iter().cloned()).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The findings' JSON lines, sorted (order across files is not what is compared).
fn findings(out: &Out) -> Vec<String> {
    let mut lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A generated archive on disk: `AWSLogs/<account>/CloudTrail/<region>/2026/11/01/*.json.gz`.
fn archive(dir: &Path, events: u32) -> PathBuf {
    let out = dir.join("archive");
    let accounts: Vec<String> = ACCOUNTS.iter().flat_map(|a| ["--account".to_owned(), (*a).to_owned()]).collect();
    let mut args = vec!["gen", "--out", out.to_str().unwrap(), "--seed", "16"];
    let events = events.to_string();
    args.extend(["--events", events.as_str()]);
    args.extend(accounts.iter().map(String::as_str));
    let run = trailguard(&[], &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::remove_file(out.join("planted.tsv")).unwrap();
    out
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

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trailguard-s3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Uploads every file under `local` to `bucket`, its key `rename(path relative to local)`.
async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, local: &Path, rename: impl Fn(&str) -> String) -> usize {
    let all = files(local);
    for file in &all {
        let relative = file.strip_prefix(local).unwrap().to_str().unwrap();
        put(s3, bucket, &rename(relative), std::fs::read(file).unwrap()).await;
    }
    all.len()
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object().bucket(bucket).key(key).body(body.into()).send().await.unwrap();
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// An organisation trail's key for a file of the account-trail layout.
fn org_key(relative: &str) -> String {
    format!("org/trail/{}", relative.replacen("AWSLogs/", "AWSLogs/o-exampleorg1/", 1))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_in_s3_gives_the_same_findings_as_on_disk_under_both_layouts() {
    let dir = temp("layouts");
    let local = archive(&dir, 12_000);
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk());
    s3.create_bucket().bucket("account-trail").send().await.unwrap();
    s3.create_bucket().bucket("org-trail").send().await.unwrap();
    let count = upload(&s3, "account-trail", &local, |k| k.to_owned()).await;
    upload(&s3, "org-trail", &local, org_key).await;
    // Beside the logs, what CloudTrail also writes there, none of it events (an unreadable object would say so).
    for bucket_key in [
        ("account-trail", "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/01/d.json.gz"),
        ("account-trail", "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/01/i.json.gz"),
        ("org-trail", "org/trail/AWSLogs/o-exampleorg1/111122223333/CloudTrail-Digest/us-east-1/2026/11/01/d.json.gz"),
    ] {
        put(&s3, bucket_key.0, bucket_key.1, b"not an event log".to_vec()).await;
    }

    let on_disk = trailguard(&[], &["scan", "--format", "jsonl", local.to_str().unwrap()]);
    assert_eq!(on_disk.code, 0, "{}", on_disk.stderr);
    let expected = findings(&on_disk);
    assert!(expected.len() >= 4, "the generated archive has planted findings: {}", on_disk.stderr);

    for url in ["s3://account-trail", "s3://account-trail/AWSLogs/", "s3://org-trail/org/trail/"] {
        let run = trailguard(&moto.env(), &["scan", "--format", "jsonl", url]);
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert_eq!(findings(&run), expected, "{url}");
        assert!(run.stderr.contains(&format!("{count} object(s)")), "{url}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("read {count} file(s)")), "{url}: {}", run.stderr);
    }
    // An account's own folder of the organisation trail: that account's findings only.
    let one = trailguard(
        &moto.env(),
        &["scan", "--format", "jsonl", "s3://org-trail/org/trail/AWSLogs/o-exampleorg1/444455556666/"],
    );
    assert_eq!(one.code, 0, "{}", one.stderr);
    let mine: Vec<String> = expected.iter().filter(|f| f.contains("\"444455556666\"")).cloned().collect();
    assert!(!mine.is_empty());
    assert_eq!(findings(&one), mine);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_lists_its_day_folders_widened_by_a_day_and_filters_by_event_time() {
    let dir = temp("window");
    let local = archive(&dir, 6_000);
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk());
    s3.create_bucket().bucket("trail").send().await.unwrap();
    // Files delivered after midnight carry the next day's date: one region's logs sit in 2026/11/02.
    upload(&s3, "trail", &local, |k| org_key(k).replace("eu-west-1/2026/11/01", "eu-west-1/2026/11/02")).await;
    // A day outside the window is never listed, so its damaged object is never read.
    put(&s3, "trail", &org_key("AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/20/old.json.gz"), gzip("{")).await;

    let window = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-01T12:00:00Z"];
    let mut args = vec!["scan", "--format", "jsonl"];
    args.extend(window);
    let on_disk = trailguard(&[], &[args.as_slice(), &[local.to_str().unwrap()]].concat());
    assert_eq!(on_disk.code, 0, "{}", on_disk.stderr);
    let from_s3 = trailguard(&moto.env(), &[args.as_slice(), &["s3://trail/org/trail/"]].concat());
    assert_eq!(from_s3.code, 0, "{}", from_s3.stderr);
    assert_eq!(findings(&from_s3), findings(&on_disk));
    assert!(!findings(&on_disk).is_empty(), "the window holds findings");

    let all = trailguard(&moto.env(), &["scan", "--format", "jsonl", "s3://trail/org/trail/"]);
    assert_eq!(all.code, 2, "without a window every day is read, the damaged one too: {}", all.stderr);
    assert!(all.stderr.contains("skipped s3://trail/org/trail/AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2026/10/20/old.json.gz"), "{}", all.stderr);
    let late = trailguard(&moto.env(), &["scan", "--since", "2026-12-01T00:00:00Z", "s3://trail/org/trail/"]);
    assert_eq!(late.code, 2, "{}", late.stderr);
    assert!(
        late.stderr
            .contains("nothing to read: no CloudTrail log under s3://trail/org/trail/ for the --since/--until window"),
        "{}",
        late.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The archive at `local` uploaded to bucket `trail` of a fresh moto, and the environment that reaches it through a
/// fault proxy; with the S3 client and the number of objects.
async fn behind_a_proxy(local: &Path) -> (Moto, aws_sdk_s3::Client, usize, FaultProxy, Vec<(String, String)>) {
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk());
    s3.create_bucket().bucket("trail").send().await.unwrap();
    let count = upload(&s3, "trail", local, str::to_owned).await;
    let proxy = FaultProxy::start(moto.port);
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| if k == "AWS_ENDPOINT_URL" { (k, proxy.endpoint()) } else { (k, v) })
        .collect();
    (moto, s3, count, proxy, env)
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_objects_are_retried_and_unreadable_ones_named() {
    let dir = temp("faults");
    let local = archive(&dir, 6_000);
    let (_moto, s3, count, proxy, env) = behind_a_proxy(&local).await;
    let expected = findings(&trailguard(&[], &["scan", "--format", "jsonl", local.to_str().unwrap()]));

    proxy.inject("GetObject", Fault::SlowDown, 3);
    proxy.inject("ListObjectsV2", Fault::SlowDown, 1);
    let run = trailguard(&env, &["scan", "--format", "jsonl", "s3://trail"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(findings(&run), expected);
    // Each object is fetched twice (the first pass reads the agent sessions), and each SlowDown once more.
    assert_eq!(proxy.seen("GetObject"), 2 * count + 3, "each SlowDown retried once more");
    assert!(proxy.seen("HeadBucket") >= 1, "the bucket's region asked first");

    // An object the first pass cannot fetch (and the second can): named, the scan incomplete (exit 2), since
    // sessions issued there are unknown; every object is still judged.
    proxy.clear();
    proxy.inject("GetObject", Fault::Missing, 1);
    let run = trailguard(&env, &["scan", "--format", "jsonl", "s3://trail"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let missed: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("the first pass (agent sessions) could not read")).collect();
    assert!(matches!(missed.as_slice(), [line] if line.contains("NoSuchKey")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("read {count} file(s)")), "{}", run.stderr);
    assert_eq!(findings(&run), expected);

    // Every fetch of the first pass fails, then the second pass's first: that object is named as skipped, every
    // other one is scanned.
    proxy.clear();
    proxy.inject("GetObject", Fault::Missing, count + 1);
    let run = trailguard(&env, &["scan", "--format", "jsonl", "s3://trail"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let skipped: Vec<&str> = run.stderr.lines().filter(|l| l.contains("skipped s3://trail/AWSLogs/")).collect();
    assert!(matches!(skipped.as_slice(), [line] if line.contains("NoSuchKey")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("read {} file(s)", count - 1)), "{}", run.stderr);
    let got = findings(&run);
    assert!(got.iter().all(|f| expected.contains(f)) && got.len() <= expected.len());

    // A damaged object: named, everything else scanned.
    proxy.clear();
    let damaged = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/damaged.json.gz";
    put(&s3, "trail", damaged, b"\x1f\x8b not really gzip".to_vec()).await;
    let run = trailguard(&env, &["scan", "--format", "jsonl", "s3://trail"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("skipped s3://trail/{damaged}: ")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("read {count} file(s)")), "{}", run.stderr);
    assert!(run.stderr.contains("skipped 1 unreadable file(s)"), "{}", run.stderr);
    assert_eq!(findings(&run), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An object replaced between the two passes (after the first has read it for the agent sessions, before the
/// second judges it): both passes ask for the version the listing gave (`If-Match`), so the replaced object is
/// named unread (exit 2) instead of being judged against a registry built from what it held before.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_replaced_between_the_passes_is_named_not_read_in_two_versions() {
    let dir = temp("replaced");
    let local = archive(&dir, 3_000);
    let (moto, _, count, proxy, env) = behind_a_proxy(&local).await;
    let victim = files(&local)[0].strip_prefix(&local).unwrap().to_str().unwrap().to_owned();
    let replaced = victim.clone();
    // Just before its second read (the first pass has read it whole), written straight to moto through the SDK.
    let sdk = moto.sdk();
    proxy.before(&format!("/trail/{victim}"), 2, move |_| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(put(&aws_sdk_s3::Client::new(&sdk), "trail", &replaced, gzip(r#"{"Records":[]}"#)));
    });
    let run = trailguard(&env, &["scan", "--format", "jsonl", "s3://trail"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let skipped: Vec<&str> = run.stderr.lines().filter(|l| l.contains("skipped s3://trail/")).collect();
    assert!(
        matches!(skipped.as_slice(), [line] if line.contains(&victim) && line.contains("replaced after it was listed")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("read {} file(s)", count - 1)), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}
