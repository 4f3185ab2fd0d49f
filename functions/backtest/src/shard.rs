//! One Batch Operations task: read the shard, fetch its logs a few at a time, and do the job's pass
//! ([`Pass`]): write the shard's issuing calls (the first job), or judge every record with the run's agent-session
//! registry and write the findings and behaviour counts per partition (the second); then say how it went.
//!
//! A task succeeds when every log was read. Throttling or a 5xx that outlasts the SDK's retries is a temporary
//! failure (Batch Operations runs the task again; its output keys are the same, so a retry replaces its own
//! output). A log that cannot be read (gone, refused, damaged) makes the task a permanent failure that names it,
//! after the output of the shard's other logs is written: the completion report then lists exactly what was
//! not backtested.

use std::collections::{HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use flate2::write::GzEncoder;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailguard_core::backtest::{
    partitions, result_key, run_prefix, sessions_key, sessions_part_key, shard_keys, Arguments, IssuingCall,
    Observation, Partitioned, Pass, ResultCode, ShardLog, Table, TaskEvent, TaskReply, TaskResult, SCHEMA,
};
use trailguard_core::event::{read_records_with, CloudTrailRecord, RecordResult};
use trailguard_core::prefilter::Prefilter;
use trailguard_core::session::{may_issue, Issued, Registry};
use trailguard_core::{Engine, Finding};

/// Logs fetched at once by one task.
const FETCHES: usize = 16;
/// The most unreadable logs named in a result string (the completion report is CSV, one row per task).
const NAMED: usize = 5;

/// What the handler borrows: built once in `main`.
pub struct Backtest {
    pub engine: Engine,
    pub s3: Client,
    /// The last registry built, by its object (`bucket/key`): a warm function serves many shards of one run.
    pub registry: Mutex<Option<(String, Arc<Registry>)>>,
}

/// Why something could not be read or written: worth trying again, or not.
struct Failure {
    temporary: bool,
    what: String,
}

impl Failure {
    /// The same failure, said in the task's terms first.
    fn context(self, doing: &str) -> Failure {
        Failure { temporary: self.temporary, what: format!("{doing} {}", self.what) }
    }
}

fn failure<E, R>(what: &str, e: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let temporary = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => matches!(
            e.code(),
            Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" | "Throttling")
        ),
    };
    let why = match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("(no message)")),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    };
    Failure { temporary, what: format!("{what}: {why}") }
}

/// What one task counted.
#[derive(Default)]
struct Counts {
    logs: usize,
    events: usize,
    unreadable_records: usize,
    outside_window: usize,
    unreadable: Vec<String>,
    temporary: Vec<String>,
}

impl Backtest {
    /// Answers a task event: a result for every task in it.
    pub async fn run(&self, event: TaskEvent) -> TaskReply {
        let arguments = Arguments::from_user_arguments(&event.job.user_arguments);
        let mut results = Vec::with_capacity(event.tasks.len());
        for task in &event.tasks {
            let (result_code, result_string) = match (&arguments, task.bucket()) {
                (Err(e), _) => (ResultCode::PermanentFailure, e.clone()),
                (_, None) => (ResultCode::PermanentFailure, "the task names no bucket".to_owned()),
                (Ok(arguments), Some(bucket)) => {
                    self.task(arguments, &event.job.id, bucket, &task.s3_key, task.s3_version_id.as_deref()).await
                }
            };
            tracing::info!(task = %task.task_id, shard = %task.s3_key, code = ?result_code, result = %result_string, "task");
            results.push(TaskResult { task_id: task.task_id.clone(), result_code, result_string });
        }
        TaskReply {
            invocation_schema_version: if event.invocation_schema_version.is_empty() {
                SCHEMA.to_owned()
            } else {
                event.invocation_schema_version
            },
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: event.invocation_id,
            results,
        }
    }

    async fn task(
        &self,
        arguments: &Arguments,
        job: &str,
        bucket: &str,
        shard: &str,
        version: Option<&str>,
    ) -> (ResultCode, String) {
        let window = match Window::new(arguments) {
            Ok(window) => window,
            Err(e) => return (ResultCode::PermanentFailure, e),
        };
        let text = match get(&self.s3, bucket, shard, version, None).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(f) => return (code(f.temporary), format!("cannot read the shard {}", f.what)),
        };
        let keys = shard_keys(&text);
        let mut counts = Counts::default();
        let summary = match arguments.pass {
            Pass::Sessions => self.sessions(arguments, bucket, shard, &keys, &mut counts).await,
            Pass::Findings => match self.registry(bucket, shard).await {
                Ok(registry) => self.findings(arguments, job, shard, &keys, &window, &registry, &mut counts).await,
                Err(f) => Err(f),
            },
        };
        let summary = match summary {
            Ok(summary) => summary,
            Err(f) => return (code(f.temporary), f.what),
        };
        let summary = format!(
            "{} of {} log(s) read, {} event(s), {} outside the window, {} unreadable record(s), {summary}",
            counts.logs,
            keys.len(),
            counts.events,
            counts.outside_window,
            counts.unreadable_records
        );
        if !counts.temporary.is_empty() {
            return (ResultCode::TemporaryFailure, format!("{summary}; to retry: {}", named(&counts.temporary)));
        }
        if !counts.unreadable.is_empty() {
            return (ResultCode::PermanentFailure, format!("{summary}; unreadable: {}", named(&counts.unreadable)));
        }
        (ResultCode::Succeeded, summary)
    }

    /// The first pass: the shard's issuing calls, from the logs the byte test says may hold one, written to
    /// `<run>sessions/<shard>.jsonl.gz` (also when there are none: the join checks every shard wrote its part).
    /// No `--since` window: a session issued before it may act inside it, as in `scan`'s first pass.
    async fn sessions(
        &self,
        arguments: &Arguments,
        bucket: &str,
        shard: &str,
        keys: &[ShardLog],
        counts: &mut Counts,
    ) -> Result<String, Failure> {
        let mut calls = Vec::new();
        let mut parsed = 0;
        self.each_log(&arguments.archive_bucket, keys, counts, |key, bytes, counts| {
            let text = match inflate(&bytes) {
                Ok(text) => text,
                Err(e) => {
                    counts.unreadable.push(format!("{key}: {e}"));
                    return;
                }
            };
            counts.logs += 1;
            if !may_issue(&text) {
                return;
            }
            parsed += 1;
            match read_records_with(&text, None) {
                Ok(reading) => {
                    counts.events += reading.records.len();
                    calls
                        .extend(records(reading.records, counts).iter().filter_map(|r| self.engine.issuing_offline(r)));
                }
                Err(e) => counts.unreadable.push(format!("{key}: {e}")),
            }
        })
        .await;
        let rows: Vec<IssuingCall> =
            calls.into_iter().map(|(actor, issued)| IssuingCall { actor, session: issued.session }).collect();
        let key = sessions_part_key(shard);
        put(&self.s3, bucket, &key, &rows).await.map_err(|f| f.context("cannot write the issuing calls"))?;
        Ok(format!("{parsed} log(s) parsed for issuing calls, {} issuing call(s) written to {key}", rows.len()))
    }

    /// The second pass: every record judged with the registry; findings and behaviour counts written per
    /// partition.
    #[allow(clippy::too_many_arguments)] // The task's parts, each used once.
    async fn findings(
        &self,
        arguments: &Arguments,
        job: &str,
        shard: &str,
        keys: &[ShardLog],
        window: &Window,
        registry: &Registry,
        counts: &mut Counts,
    ) -> Result<String, Failure> {
        // With the registry's keys: a read call of a session known only by the registry (session tags, a tagged
        // caller) is an agent's, counted toward `services` and regions, and must not be passed over unparsed.
        let prefilter = Prefilter::new(&self.engine).with_registry(registry);
        let mut findings: Vec<Finding> = Vec::new();
        let mut observations: Vec<Observation> = Vec::new();
        // Each identity's first use of each region in this shard: Athena takes the first of all shards'.
        let mut first_uses: HashMap<(String, String), (i64, Observation)> = HashMap::new();
        self.each_log(&arguments.archive_bucket, keys, counts, |key, bytes, counts| {
            let reading = match read_records_with(&bytes, Some(&prefilter)) {
                Ok(reading) => reading,
                Err(e) => {
                    counts.unreadable.push(format!("{key}: {e}"));
                    return;
                }
            };
            counts.logs += 1;
            counts.events += reading.records.len() + reading.passed_over;
            for record in records(reading.records, counts) {
                if !window.keeps(record.event_time.as_deref()) {
                    counts.outside_window += 1;
                    continue;
                }
                // A window's calls, or an identity's history, may sit in several shards: record the count and the
                // region use for Athena, cross nothing and page for no region here.
                let actor_arn = || record.identity().arn.clone();
                let account = || record.account().map(str::to_owned);
                let mut used = None;
                let evaluation = self.engine.evaluate_answering(
                    &record,
                    registry,
                    |count| {
                        observations.push(Observation::new(count, actor_arn(), account()));
                        None
                    },
                    |region| {
                        used = Some(region.clone());
                        None
                    },
                );
                if let Some(used) = used {
                    let key = (used.identity.clone(), used.region.clone());
                    if first_uses.get(&key).is_none_or(|(first, _)| used.at < *first) {
                        let time = record.event_time.clone().unwrap_or_default();
                        let row = Observation::region(&used, record.action(), time, actor_arn(), account());
                        first_uses.insert(key, (used.at, row));
                    }
                }
                findings.extend(evaluation.findings);
            }
        })
        .await;
        observations.extend(first_uses.into_values().map(|(_, row)| row));
        let (found, observed) = (findings.len(), observations.len());
        let mut parts = self.write(arguments, Table::Findings, job, shard, findings).await?;
        parts += self.write(arguments, Table::Observations, job, shard, observations).await?;
        Ok(format!("{found} finding(s), {observed} behaviour count(s) in {parts} object(s)"))
    }

    /// Writes rows per partition; how many objects.
    async fn write<T: Serialize + Partitioned>(
        &self,
        arguments: &Arguments,
        table: Table,
        job: &str,
        shard: &str,
        rows: Vec<T>,
    ) -> Result<usize, Failure> {
        let written = partitions(rows);
        let objects = written.len();
        for ((date, account), rows) in written {
            let key = result_key(&arguments.results_prefix, table, &date, &account, job, shard);
            put(&self.s3, &arguments.results_bucket, &key, &rows)
                .await
                .map_err(|f| f.context("cannot write the findings"))?;
        }
        Ok(objects)
    }

    /// The run's registry, built from `<run>sessions.jsonl.gz` next to the shard: once per warm function and
    /// version of that object (its ETag, asked with a HEAD per task), so a re-joined run is not judged stale.
    async fn registry(&self, bucket: &str, shard: &str) -> Result<Arc<Registry>, Failure> {
        let key = sessions_key(run_prefix(shard));
        let missing = |f: Failure| {
            f.context(
                "no agent-session registry: run the `pass=sessions` job, then `trailguard backtest-sessions`, \
                 before this one",
            )
        };
        let head =
            self.s3.head_object().bucket(bucket).key(&key).send().await.map_err(|e| missing(failure(&key, &e)))?;
        let id = format!("{bucket}/{key}#{}", head.e_tag().unwrap_or_default());
        if let Some((cached, registry)) = self.registry.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if *cached == id {
                return Ok(Arc::clone(registry));
            }
        }
        let bytes = get(&self.s3, bucket, &key, None, None).await.map_err(missing)?;
        let text = inflate(&bytes).map_err(|e| Failure { temporary: false, what: format!("{key}: {e}") })?;
        let mut calls = Vec::new();
        for (n, line) in text.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.trim_ascii().is_empty()) {
            let call: IssuingCall = serde_json::from_slice(line)
                .map_err(|e| Failure { temporary: false, what: format!("{key} line {}: {e}", n + 1) })?;
            calls.push((call.actor, Issued { session: call.session }));
        }
        let registry = Arc::new(self.engine.build_registry(&calls));
        tracing::info!(registry = %id, agent_sessions = registry.len(), "registry built");
        *self.registry.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, Arc::clone(&registry)));
        Ok(registry)
    }

    /// Fetches the logs [`FETCHES`] at a time and hands each to `each` as it arrives, in shard order; what cannot
    /// be fetched is counted.
    async fn each_log(
        &self,
        bucket: &str,
        keys: &[ShardLog],
        counts: &mut Counts,
        mut each: impl FnMut(&str, Vec<u8>, &mut Counts),
    ) {
        let mut pending = VecDeque::new();
        let mut next = keys.iter();
        loop {
            while pending.len() < FETCHES {
                let Some(log) = next.next() else { break };
                let (s3, bucket, owned) = (self.s3.clone(), bucket.to_owned(), log.clone());
                let fetch = async move { get(&s3, &bucket, &owned.key, None, owned.etag.as_deref()).await };
                pending.push_back((&log.key, tokio::spawn(fetch)));
            }
            let Some((key, handle)) = pending.pop_front() else { break };
            match handle.await {
                Ok(Ok(bytes)) => each(key, bytes, counts),
                Ok(Err(f)) if f.temporary => counts.temporary.push(f.what),
                Ok(Err(f)) => counts.unreadable.push(f.what),
                Err(e) => counts.temporary.push(format!("{key}: {e}")),
            }
        }
    }
}

/// The records that could be read; the others counted.
fn records(records: Vec<RecordResult>, counts: &mut Counts) -> Vec<CloudTrailRecord> {
    let all = records.len();
    let read: Vec<CloudTrailRecord> = records.into_iter().filter_map(Result::ok).collect();
    counts.unreadable_records += all - read.len();
    read
}

/// A log's text, inflated when gzipped.
fn inflate(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text)?;
    Ok(text)
}

fn code(temporary: bool) -> ResultCode {
    if temporary {
        ResultCode::TemporaryFailure
    } else {
        ResultCode::PermanentFailure
    }
}

/// The first few of a list, and how many more.
fn named(all: &[String]) -> String {
    let shown: Vec<&str> = all.iter().take(NAMED).map(String::as_str).collect();
    match all.len().saturating_sub(NAMED) {
        0 => shown.join("; "),
        more => format!("{}; and {more} more", shown.join("; ")),
    }
}

/// The `since`/`until` user arguments, as `scan --since/--until`.
struct Window {
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl Window {
    fn new(arguments: &Arguments) -> Result<Window, String> {
        let parse = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    OffsetDateTime::parse(t, &Rfc3339)
                        .map_err(|_| format!("user argument `{name}` `{t}` is not RFC 3339"))
                })
                .transpose()
        };
        Ok(Window { since: parse("since", &arguments.since)?, until: parse("until", &arguments.until)? })
    }

    fn keeps(&self, event_time: Option<&str>) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = event_time.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else { return false };
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }
}

/// One object, in the `version` asked for, or only while its ETag is still `etag` (`If-Match`: a log replaced since
/// the listing is unreadable, rather than read in another version than the other pass read).
async fn get(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    etag: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let request = s3.get_object().bucket(bucket).key(key).set_version_id(version.map(str::to_owned));
    let out = request.set_if_match(etag.map(str::to_owned)).send().await.map_err(|e| match e.code() {
        Some("PreconditionFailed") => {
            Failure { temporary: false, what: format!("{key}: replaced after it was listed, so not read") }
        }
        _ => failure(key, &e),
    })?;
    let body = out.body.collect().await.map_err(|e| Failure { temporary: true, what: format!("{key}: {e}") })?;
    Ok(body.to_vec())
}

/// Writes rows as gzipped JSON lines.
async fn put<T: Serialize>(s3: &Client, bucket: &str, key: &str, rows: &[T]) -> Result<(), Failure> {
    let encode = || -> std::io::Result<Vec<u8>> {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        for row in rows {
            serde_json::to_writer(&mut gz, row)?;
            gz.write_all(b"\n")?;
        }
        gz.finish()
    };
    let body = encode().map_err(|e| Failure { temporary: false, what: format!("{key}: {e}") })?;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/x-ndjson")
        .body(body.into())
        .send()
        .await
        .map_err(|e| failure(key, &e))?;
    Ok(())
}
