//! The backtest fan-out on S3 Batch Operations, as data: shards, the manifest, the task events the `backtest`
//! Lambda answers, and where its findings go.
//!
//! Batch Operations invokes a function once per manifest row, synchronously. One row per CloudTrail log file
//! would mean tens of millions of invocations and result objects, so a row names a *shard*: an object listing a
//! few thousand log keys, one per line with the ETag the listing gave ([`shard_text`]). The manifest is a CSV of `bucket,key` rows, keys
//! URL-encoded as Batch Operations requires ([`manifest_csv`]).
//!
//! The job uses invocation schema 2.0, the one that carries user arguments: each task names the shard's
//! bucket (`s3Bucket`, a name, not an ARN) and key, and `job.userArguments` say where the archive is and where
//! the findings go ([`Arguments`]). The reply has a result per task and `treatMissingKeysAs`.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html>
//!
//! Findings are written as gzipped JSON lines, one object per shard and partition, under
//! `<results prefix>findings/date=YYYY-MM-DD/account=<id>/` ([`result_key`]): Hive-style partitions that Athena reads
//! (the Glue table in `infra/backtest.yaml`). A retried task writes the same keys again, so a retry replaces
//! its own output and never duplicates it.
//!
//! Verdicts that span objects take two jobs over the same manifest ([`Pass`]). Session tags live only in the
//! `AssumeRole` event that issued a session, so a later call is recognised as an agent's through the registry
//! (`crate::session`). The first job (`pass=sessions`) reads only the logs the byte pre-filter says may hold an
//! issuing call and writes each shard's issuing calls ([`IssuingCall`]) to `<run>sessions/<shard>.jsonl.gz`;
//! `trailguard backtest-sessions` joins them into one object, `<run>sessions.jsonl.gz` ([`sessions_key`]); the
//! second job (`pass=findings`) reads that object once per warm function and builds the registry with the
//! function's own configuration, exactly as `scan` does in its first pass. Behaviour counts over time windows
//! cannot be kept per shard (a window's calls may sit in several shards): each shard writes the counts it takes
//! ([`Observation`]) under `<results>observations/`, and Athena counts them (the `observations` table and its
//! named query in `infra/backtest.yaml`).
//!
//! **Invariant:** nothing here does I/O; the `backtest` Lambda and the command line read and write S3.

use std::collections::{BTreeMap, HashMap};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::behaviour::Count;
use crate::event::Actor;
use crate::session::Session;
use crate::Finding;

/// The invocation schema the manifest's job uses: 2.0, the one with user arguments.
pub const SCHEMA: &str = "2.0";

/// Log keys per shard by default: a few thousand small files is a few minutes of one Lambda at most.
pub const PER_SHARD: usize = 2_000;

/// A Batch Operations task event (schema 2.0).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// `2.0`.
    pub invocation_schema_version: String,
    /// Copied into the reply.
    pub invocation_id: String,
    /// The job, with the user arguments.
    pub job: Job,
    /// The tasks: one per invocation today, but the schema allows several.
    pub tasks: Vec<Task>,
}

/// The job a task belongs to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// What `CreateJob` passed in `UserArguments`.
    #[serde(default)]
    pub user_arguments: HashMap<String, String>,
}

/// One manifest row: here, one shard.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Copied into the result.
    pub task_id: String,
    /// The shard's key.
    pub s3_key: String,
    /// The shard's version, when the manifest names one.
    #[serde(default)]
    pub s3_version_id: Option<String>,
    /// The shard's bucket, by name (schema 2.0).
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// The shard's bucket as an ARN (schema 1.0), read when `s3Bucket` is absent.
    #[serde(default)]
    pub s3_bucket_arn: Option<String>,
}

impl Task {
    /// The shard's bucket name, from `s3Bucket` or `s3BucketArn`.
    pub fn bucket(&self) -> Option<&str> {
        self.s3_bucket.as_deref().or_else(|| self.s3_bucket_arn.as_deref()?.strip_prefix("arn:aws:s3:::"))
    }
}

/// The reply to a task event.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskReply {
    /// The event's schema version.
    pub invocation_schema_version: String,
    /// What Batch Operations records for a task the reply leaves out.
    pub treat_missing_keys_as: ResultCode,
    /// The event's invocation id.
    pub invocation_id: String,
    /// One result per task.
    pub results: Vec<TaskResult>,
}

/// One task's result, as the job's completion report shows it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task's id.
    pub task_id: String,
    /// Done, try again, or give up.
    pub result_code: ResultCode,
    /// What happened, for people (counts, or what could not be read).
    pub result_string: String,
}

/// A task's outcome.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum ResultCode {
    /// Every log of the shard was read and its findings written.
    Succeeded,
    /// S3 throttled or failed: Batch Operations runs the task again (its output is replaced, not doubled).
    TemporaryFailure,
    /// The shard, or a log in it, cannot be read; running again would not help.
    PermanentFailure,
}

/// What a job does with its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The first job: write each shard's issuing calls, for the agent-session registry.
    Sessions,
    /// The second job: judge every event with the registry, write findings and behaviour counts.
    Findings,
}

impl Pass {
    /// Its name as the `pass` user argument.
    pub fn as_str(self) -> &'static str {
        match self {
            Pass::Sessions => "sessions",
            Pass::Findings => "findings",
        }
    }
}

/// Where the archive is and where findings go: the job's user arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arguments {
    /// Which pass the job is.
    pub pass: Pass,
    /// The bucket holding the CloudTrail logs the shards name.
    pub archive_bucket: String,
    /// The bucket findings are written to.
    pub results_bucket: String,
    /// The prefix under it (empty, or ending in `/`).
    pub results_prefix: String,
    /// Only events at or after this time (RFC 3339), as `scan --since`.
    pub since: Option<String>,
    /// Only events before this time (RFC 3339), as `scan --until`.
    pub until: Option<String>,
}

impl Arguments {
    /// The user-argument names, as `CreateJob` passes them (at most 10 entries, values at most 1,024 bytes).
    pub const NAMES: [&'static str; 6] = ["archiveBucket", "resultsBucket", "resultsPrefix", "since", "until", "pass"];

    /// Reads the user arguments; an error names what is missing.
    pub fn from_user_arguments(arguments: &HashMap<String, String>) -> Result<Arguments, String> {
        let get = |name: &str| arguments.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or_else(|| format!("user argument `{name}` is missing"));
        let mut results_prefix = get("resultsPrefix").unwrap_or_default();
        if !results_prefix.is_empty() && !results_prefix.ends_with('/') {
            results_prefix.push('/');
        }
        let pass = match get("pass").as_deref() {
            None | Some("findings") => Pass::Findings,
            Some("sessions") => Pass::Sessions,
            Some(other) => return Err(format!("user argument `pass` is `{other}`, not `sessions` or `findings`")),
        };
        Ok(Arguments {
            pass,
            archive_bucket: required("archiveBucket")?,
            results_bucket: required("resultsBucket")?,
            results_prefix,
            since: get("since"),
            until: get("until"),
        })
    }

    /// The user arguments for `CreateJob`.
    pub fn to_user_arguments(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let [archive, results, prefix, since, until, pass] = Arguments::NAMES;
        out.insert(pass.to_owned(), self.pass.as_str().to_owned());
        out.insert(archive.to_owned(), self.archive_bucket.clone());
        out.insert(results.to_owned(), self.results_bucket.clone());
        out.insert(prefix.to_owned(), self.results_prefix.clone());
        if let Some(t) = &self.since {
            out.insert(since.to_owned(), t.clone());
        }
        if let Some(t) = &self.until {
            out.insert(until.to_owned(), t.clone());
        }
        out
    }
}

/// One log a shard lists: its key, and the ETag the listing gave (both passes read that version, or name the log
/// unreadable: the registry and the findings then come from the same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLog {
    /// The log's key in the archive bucket.
    pub key: String,
    /// Its ETag as listed (quoted, as S3 gives it).
    pub etag: Option<String>,
}

/// The logs a shard lists, one per line: the key, then a tab and the ETag when known (keys hold no line break or
/// tab: CloudTrail names them).
pub fn shard_text(logs: &[ShardLog]) -> String {
    let line = |log: &ShardLog| match &log.etag {
        Some(etag) => format!("{}\t{etag}\n", log.key),
        None => format!("{}\n", log.key),
    };
    logs.iter().map(line).collect()
}

/// The logs of a shard's text: its non-empty lines (a line without a tab, as earlier versions wrote, has no ETag).
pub fn shard_keys(text: &str) -> Vec<ShardLog> {
    let log = |line: &str| match line.rsplit_once('\t') {
        Some((key, etag)) => ShardLog { key: key.to_owned(), etag: Some(etag.to_owned()) },
        None => ShardLog { key: line.to_owned(), etag: None },
    };
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(log).collect()
}

/// Characters a manifest key keeps as they are; everything else is percent-encoded (`/` stays readable).
const KEY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The CSV manifest: one `bucket,key` row per shard, keys URL-encoded.
pub fn manifest_csv(bucket: &str, shard_keys: &[String]) -> String {
    shard_keys.iter().map(|k| format!("{bucket},{}\n", utf8_percent_encode(k, KEY))).collect()
}

/// A shard's key under the run's prefix: `shards/00042.txt`, numbered so they sort in archive order.
pub fn shard_key(run_prefix: &str, index: usize) -> String {
    format!("{run_prefix}shards/{index:06}.txt")
}

/// A key component made safe: letters, digits and `-` kept, anything else `_`.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// A shard's file name without `.txt`.
fn shard_name(shard: &str) -> &str {
    shard.rsplit('/').next().unwrap_or(shard).trim_end_matches(".txt")
}

/// The Athena tables a shard writes, each its own folder under the results prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per finding (`Finding`'s JSON).
    Findings,
    /// One row per behaviour count taken ([`Observation`]).
    Observations,
}

/// Where one shard's rows of one table, day and account go.
pub fn result_key(results_prefix: &str, table: Table, date: &str, account: &str, job: &str, shard: &str) -> String {
    let table = match table {
        Table::Findings => "findings",
        Table::Observations => "observations",
    };
    format!(
        "{results_prefix}{table}/date={}/account={}/{}-{}.json.gz",
        safe(date),
        safe(account),
        safe(job),
        safe(shard_name(shard))
    )
}

/// Rows grouped by partition: the day of the event (`YYYY-MM-DD`, from its time) and its account (`unknown`
/// where a record has none).
pub fn partitions<T: Partitioned>(rows: Vec<T>) -> BTreeMap<(String, String), Vec<T>> {
    let mut out: BTreeMap<(String, String), Vec<T>> = BTreeMap::new();
    for row in rows {
        let date = row.time().and_then(|t| t.get(..10)).unwrap_or("unknown").to_owned();
        let account = row.account().unwrap_or("unknown").to_owned();
        out.entry((date, account)).or_default().push(row);
    }
    out
}

/// A row's partition: its event's time and account.
pub trait Partitioned {
    /// The event's time (RFC 3339).
    fn time(&self) -> Option<&str>;
    /// The event's account.
    fn account(&self) -> Option<&str>;
}

impl Partitioned for Finding {
    fn time(&self) -> Option<&str> {
        self.time.as_deref()
    }
    fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

impl Partitioned for Observation {
    fn time(&self) -> Option<&str> {
        Some(&self.time)
    }
    fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

/// The run's prefix a shard key sits under: `runs/r1/` for `runs/r1/shards/000007.txt` (empty for a shard
/// outside a `shards/` folder).
pub fn run_prefix(shard: &str) -> &str {
    shard.rfind("shards/").and_then(|at| shard.get(..at)).unwrap_or("")
}

/// Where the first pass writes one shard's issuing calls: `<run>sessions/<shard>.jsonl.gz`.
pub fn sessions_part_key(shard: &str) -> String {
    format!("{}sessions/{}.jsonl.gz", run_prefix(shard), safe(shard_name(shard)))
}

/// The run's issuing calls joined into one object, which the second pass reads: `<run>sessions.jsonl.gz`.
pub fn sessions_key(run_prefix: &str) -> String {
    format!("{run_prefix}sessions.jsonl.gz")
}

/// One credential-issuing call, as the first pass writes it (a JSON line): who called, and the session issued.
/// Agency is decided when the registry is built ([`crate::Engine::build_registry`]), from all of them in issue
/// order, because a chained session inherits it from its caller's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuingCall {
    /// The caller.
    pub actor: Actor<'static>,
    /// The session issued (`agent` not yet decided).
    pub session: Session,
}

/// One behaviour count a shard took (a refused call, a deletion, an agent's read of a service), or an agent
/// identity's use of a region, as a row of the `observations` table. Athena counts, per `(session, kind,
/// window_start)`, the distinct events (`denied`, `deletions`) or services (`services`) against `threshold`: the
/// windows `scan` would have reported. For `region` rows it finds each identity's first use of each region after
/// its first `threshold` days (`agent-new-region`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The session counted (its access key, or principal id or ARN when it has none); for `region`, the agent
    /// identity remembered (its role ARN, else source identity, else user ARN).
    pub session: String,
    /// `denied`, `deletions`, `services` or `region`.
    pub kind: String,
    /// The window's start, epoch seconds (`0` for `region`).
    pub window_start: i64,
    /// More than this many in one window is a crossing; for `region`, the learning days.
    pub threshold: u32,
    /// What a distinct count adds (`services`: the event source), or the region used (`region`).
    pub value: Option<String>,
    /// The event counted.
    pub event_id: String,
    /// `service:Call`.
    pub call: String,
    /// `eventTime`.
    pub time: String,
    /// The actor's ARN.
    pub actor_arn: Option<String>,
    /// The event's account (the partition, not a column).
    #[serde(skip_serializing)]
    pub account: Option<String>,
}

impl Observation {
    /// The row for one count taken while judging an event of `account`.
    pub fn new(count: &Count, actor_arn: Option<String>, account: Option<String>) -> Observation {
        Observation {
            session: count.session.clone(),
            kind: count.kind.as_str().to_owned(),
            window_start: count.window_start,
            threshold: count.limit.saturating_sub(1),
            value: count.distinct.clone(),
            event_id: count.event.id.clone(),
            call: count.event.call.clone(),
            time: count.event.time.clone(),
            actor_arn,
            account,
        }
    }

    /// The row for one agent identity's use of a region, in an event of `account` made at `time` (`eventTime`).
    pub fn region(
        used: &crate::regions::RegionUse,
        call: String,
        time: String,
        actor_arn: Option<String>,
        account: Option<String>,
    ) -> Observation {
        let learning_days = used.learning / 86_400;
        Observation {
            session: used.identity.clone(),
            kind: "region".to_owned(),
            window_start: 0,
            threshold: u32::try_from(learning_days).unwrap_or(u32::MAX),
            value: Some(used.region.clone()),
            event_id: used.event_id.clone(),
            call,
            time,
            actor_arn,
            account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_2_task_event_reads_and_the_reply_is_what_batch_operations_expects() {
        let event: TaskEvent = serde_json::from_str(
            r#"{"invocationSchemaVersion":"2.0","invocationId":"inv-1",
                "job":{"id":"job-1","userArguments":{"archiveBucket":"logs","resultsBucket":"out","resultsPrefix":"bt"}},
                "tasks":[{"taskId":"t-1","s3Key":"run/shards/000001.txt","s3VersionId":null,"s3Bucket":"work"}]}"#,
        )
        .unwrap();
        assert_eq!(event.tasks[0].bucket(), Some("work"));
        let args = Arguments::from_user_arguments(&event.job.user_arguments).unwrap();
        assert_eq!(args.results_prefix, "bt/");
        assert_eq!(
            Arguments::from_user_arguments(&HashMap::new()).unwrap_err(),
            "user argument `archiveBucket` is missing"
        );
        let reply = TaskReply {
            invocation_schema_version: SCHEMA.into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: "inv-1".into(),
            results: vec![TaskResult {
                task_id: "t-1".into(),
                result_code: ResultCode::Succeeded,
                result_string: "ok".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            serde_json::json!({"invocationSchemaVersion":"2.0","treatMissingKeysAs":"PermanentFailure","invocationId":"inv-1",
                "results":[{"taskId":"t-1","resultCode":"Succeeded","resultString":"ok"}]})
        );
        let v1: Task = serde_json::from_str(r#"{"taskId":"t","s3Key":"k","s3BucketArn":"arn:aws:s3:::work"}"#).unwrap();
        assert_eq!(v1.bucket(), Some("work"));
    }

    #[test]
    fn shards_and_the_manifest_round_trip() {
        let keys = vec![
            ShardLog {
                key: "AWSLogs/1/CloudTrail/us-east-1/2026/11/01/a b+c.json.gz".to_owned(),
                etag: Some("\"9b2cf535f27731c974343645a3985328\"".to_owned()),
            },
            ShardLog { key: "x.json.gz".to_owned(), etag: None },
        ];
        assert_eq!(shard_keys(&shard_text(&keys)), keys);
        assert_eq!(shard_keys("a.json.gz\n\n"), [ShardLog { key: "a.json.gz".to_owned(), etag: None }]);
        assert_eq!(manifest_csv("work", &[shard_key("runs/r1/", 7)]), "work,runs/r1/shards/000007.txt\n");
        assert_eq!(manifest_csv("w", &["a b,c.txt".to_owned()]), "w,a%20b%2Cc.txt\n");
        assert_eq!(
            result_key("bt/", Table::Findings, "2026-11-01", "123456789012", "job-1", "runs/r1/shards/000007.txt"),
            "bt/findings/date=2026-11-01/account=123456789012/job-1-000007.json.gz"
        );
        assert_eq!(sessions_part_key("runs/r1/shards/000007.txt"), "runs/r1/sessions/000007.jsonl.gz");
        assert_eq!(sessions_part_key("loose.txt"), "sessions/loose.jsonl.gz");
        assert_eq!(sessions_key(run_prefix("runs/r1/shards/000007.txt")), "runs/r1/sessions.jsonl.gz");
    }
}
