//! One Batch Operations task: read the shard, fetch its logs a few at a time, evaluate every record offline,
//! write the findings per partition, and say how it went.
//!
//! A task succeeds when every log was read. Throttling or a 5xx that outlasts the SDK's retries is a temporary
//! failure (Batch Operations runs the task again; its output keys are the same, so a retry replaces its own
//! output). A log that cannot be read (gone, refused, damaged) makes the task a permanent failure that names it,
//! after the findings of the shard's other logs are written: the completion report then lists exactly what was
//! not backtested.

use std::collections::VecDeque;
use std::io::Write as _;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use flate2::write::GzEncoder;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailguard_core::backtest::{
    partitions, result_key, shard_keys, Arguments, ResultCode, TaskEvent, TaskReply, TaskResult, SCHEMA,
};
use trailguard_core::event::read_records_with;
use trailguard_core::prefilter::Prefilter;
use trailguard_core::{Engine, Finding};

/// Logs fetched at once by one task.
const FETCHES: usize = 16;
/// The most unreadable logs named in a result string (the completion report is CSV, one row per task).
const NAMED: usize = 5;

/// What the handler borrows: built once in `main`.
pub struct Backtest {
    pub engine: Engine,
    pub s3: Client,
}

/// Why something could not be read or written: worth trying again, or not.
struct Failure {
    temporary: bool,
    what: String,
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
        let text = match get(&self.s3, bucket, shard, version).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(f) => return (code(f.temporary), format!("cannot read the shard {}", f.what)),
        };
        let keys = shard_keys(&text);
        let mut counts = Counts::default();
        let findings = self.evaluate(arguments, &keys, &window, &mut counts).await;
        let found = findings.len();
        let written = partitions(findings);
        let parts = written.len();
        for ((date, account), findings) in written {
            let key = result_key(&arguments.results_prefix, &date, &account, job, shard);
            if let Err(f) = put(&self.s3, &arguments.results_bucket, &key, &findings).await {
                return (code(f.temporary), format!("cannot write the findings {}", f.what));
            }
        }
        let summary = format!(
            "{} of {} log(s) read, {} event(s), {} outside the window, {} unreadable record(s), {found} finding(s) \
             in {parts} partition(s)",
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

    /// Fetches the logs [`FETCHES`] at a time and evaluates each as it arrives.
    async fn evaluate(
        &self,
        arguments: &Arguments,
        keys: &[String],
        window: &Window,
        counts: &mut Counts,
    ) -> Vec<Finding> {
        let prefilter = Prefilter::new(&self.engine);
        let mut findings = Vec::new();
        let mut pending = VecDeque::new();
        let mut next = keys.iter();
        loop {
            while pending.len() < FETCHES {
                let Some(key) = next.next() else { break };
                let (s3, bucket, owned) = (self.s3.clone(), arguments.archive_bucket.clone(), key.clone());
                pending.push_back((key, tokio::spawn(async move { get(&s3, &bucket, &owned, None).await })));
            }
            let Some((key, handle)) = pending.pop_front() else { break };
            let bytes = match handle.await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(f)) if f.temporary => {
                    counts.temporary.push(f.what);
                    continue;
                }
                Ok(Err(f)) => {
                    counts.unreadable.push(f.what);
                    continue;
                }
                Err(e) => {
                    counts.temporary.push(format!("{key}: {e}"));
                    continue;
                }
            };
            let reading = match read_records_with(&bytes, Some(&prefilter)) {
                Ok(reading) => reading,
                Err(e) => {
                    counts.unreadable.push(format!("{key}: {e}"));
                    continue;
                }
            };
            counts.logs += 1;
            counts.events += reading.records.len() + reading.passed_over;
            for record in reading.records {
                let Ok(record) = record else {
                    counts.unreadable_records += 1;
                    continue;
                };
                if !window.keeps(record.event_time.as_deref()) {
                    counts.outside_window += 1;
                    continue;
                }
                findings.extend(self.engine.evaluate_offline(&record).findings);
            }
        }
        findings
    }
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

async fn get(s3: &Client, bucket: &str, key: &str, version: Option<&str>) -> Result<Vec<u8>, Failure> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .map_err(|e| failure(key, &e))?;
    let body = out.body.collect().await.map_err(|e| Failure { temporary: true, what: format!("{key}: {e}") })?;
    Ok(body.to_vec())
}

/// Writes findings as gzipped JSON lines.
async fn put(s3: &Client, bucket: &str, key: &str, findings: &[Finding]) -> Result<(), Failure> {
    let encode = || -> std::io::Result<Vec<u8>> {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        for finding in findings {
            serde_json::to_writer(&mut gz, finding)?;
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
