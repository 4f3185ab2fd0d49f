//! `scan s3://bucket/prefix/`: the archive read where it lives.
//!
//! The bucket's region is asked first (`HeadBucket` answers with `x-amz-bucket-region`, even when it refuses
//! or redirects), because the SDK does not follow S3's cross-region redirects. Then the archive is listed: the
//! folders of CloudTrail's layout are walked with a delimiter (`[prefix/]AWSLogs/[<org id>/]<account>/
//! CloudTrail/<region>/YYYY/MM/DD/`, an account trail or an organisation trail), `CloudTrail-Digest/` and
//! `CloudTrail-Insight/` are left out (they hold no management events), and with `--since` each region's folder
//! is listed one day folder at a time. Listings run a few at a time; the keys are sorted, so a scan from S3
//! reports in the same order as a scan of the same files on disk.
//!
//! The objects are fetched [`FETCHES`] at a time, in order, and handed to the scanner's pipeline as whole
//! inputs: the workers decompress and evaluate them in parallel, and the pipeline's bounded queue holds the
//! producer back, so memory holds at most [`FETCHES`] objects plus the pieces in flight. Throttling (`503
//! SlowDown`) is retried by the SDK in its adaptive mode (exponential backoff with jitter, and a client-side rate
//! that backs off too); an object that still cannot be read is named and the scan goes on.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html>

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::Client;
use time::{Date, Duration, OffsetDateTime};

use super::progress::Progress;
use super::source::Work;

/// Objects fetched at once: CloudTrail log files are small, so throughput is a matter of requests in flight.
const FETCHES: usize = 32;
/// Listings at once (folders of a level, or day folders).
const LISTINGS: usize = 16;
/// Folder levels walked with a delimiter below the given prefix; deeper, everything is listed.
const MAX_DEPTH: usize = 8;
/// Attempts per request unless `AWS_MAX_ATTEMPTS` says otherwise (the SDK's default is 3).
const ATTEMPTS: u32 = 10;
/// Days listed one folder at a time at most; a longer window lists each region's folder whole.
const MAX_DAYS: i64 = 3660;

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

impl Location {
    /// The bucket and key prefix of an `s3://` URL; `None` when it is not one.
    pub fn parse(url: &str) -> Option<Location> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| Location { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

/// Where a folder sits in CloudTrail's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Above a region's folder: walked.
    Above,
    /// `.../<account>/CloudTrail/<region>/`: its day folders hold the logs.
    Region,
    /// Inside a region's date folders, or a prefix that is not a folder: listed whole.
    Below,
}

fn is_account(segment: &str) -> bool {
    segment.len() == 12 && segment.bytes().all(|b| b.is_ascii_digit())
}

fn level(prefix: &str) -> Level {
    if !(prefix.is_empty() || prefix.ends_with('/')) {
        return Level::Below;
    }
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let cloudtrail = segments.windows(2).rposition(|w| matches!(w, [account, "CloudTrail"] if is_account(account)));
    match cloudtrail.map(|at| segments.len().saturating_sub(at + 2)) {
        None | Some(0) => Level::Above,
        Some(1) => Level::Region,
        Some(_) => Level::Below,
    }
}

/// Folders CloudTrail writes beside the event logs that hold no management event.
fn is_other_cloudtrail_folder(segment: &str) -> bool {
    matches!(segment, "CloudTrail-Digest" | "CloudTrail-Insight")
}

/// Whether a key is an event log the scan reads: a name `scan` reads in a directory, outside the digest and
/// Insights folders.
fn is_event_log(key: &str) -> bool {
    !key.split('/').any(is_other_cloudtrail_folder) && super::is_record_file(key)
}

/// The day folders (`YYYY/MM/DD/`) that can hold events of the window: the date in a key is the day CloudTrail
/// delivered the file (UTC), a few minutes after the events in it, so events just before midnight sit in the next
/// day's folder and the window is widened by a day at its end. `None`: list every day (no `--since`, or a
/// window too long to list day by day).
fn day_folders(
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<Vec<String>> {
    let first = since?.to_offset(time::UtcOffset::UTC).date();
    let last = until.unwrap_or(now).to_offset(time::UtcOffset::UTC).date().next_day()?;
    if last < first || (last - first).whole_days() > MAX_DAYS {
        return (last < first).then(Vec::new);
    }
    let mut days = Vec::new();
    let mut day: Date = first;
    while day <= last {
        days.push(format!("{:04}/{:02}/{:02}/", day.year(), u8::from(day.month()), day.day()));
        day = day.checked_add(Duration::DAY)?;
    }
    Some(days)
}

/// One S3 error in one line: the service's code and message, or the SDK's chain of causes.
fn describe<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("(no message)")),
        None => DisplayErrorContext(e).to_string(),
    }
}

/// Runs `task` over `items`, at most `limit` at once, and gives the results in the order of `items`.
async fn ordered<I, T, F, Fut>(items: Vec<I>, limit: usize, task: F) -> Vec<Result<T, String>>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let mut pending = VecDeque::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        if pending.len() >= limit {
            if let Some(handle) = pending.pop_front() {
                results.push(joined(handle).await);
            }
        }
        pending.push_back(tokio::spawn(task(item)));
    }
    while let Some(handle) = pending.pop_front() {
        results.push(joined(handle).await);
    }
    results
}

async fn joined<T>(handle: tokio::task::JoinHandle<Result<T, String>>) -> Result<T, String> {
    handle.await.unwrap_or_else(|e| Err(format!("request task failed: {e}")))
}

/// One object to read.
struct Object {
    /// Index into [`Archive::buckets`].
    bucket: usize,
    key: String,
    size: u64,
    /// The ETag the listing gave: both passes read exactly this version of the object, or name it unread.
    etag: Option<String>,
}

/// The objects of one or more `s3://` locations, listed, with a client per bucket in the bucket's region.
pub struct Archive {
    runtime: tokio::runtime::Runtime,
    sdk: SdkConfig,
    buckets: Vec<(String, Client)>,
    objects: Vec<Object>,
}

impl Archive {
    /// Lists the event logs under each URL that can hold events of the window.
    pub fn list(
        urls: &[String],
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> anyhow::Result<Archive> {
        let locations = urls
            .iter()
            .map(|u| Location::parse(u).ok_or_else(|| anyhow::anyhow!("`{u}` is not an s3://bucket/prefix URL")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let days = day_folders(since, until, OffsetDateTime::now_utc());
        let sdk = runtime.block_on(aws_config::load_defaults(BehaviorVersion::latest()));
        let (buckets, objects) = runtime.block_on(async {
            let mut buckets: Vec<(String, Client)> = Vec::new();
            let mut objects = Vec::new();
            for location in &locations {
                let index = match buckets.iter().position(|(name, _)| *name == location.bucket) {
                    Some(index) => index,
                    None => {
                        buckets.push((location.bucket.clone(), client_for(&sdk, &location.bucket).await?));
                        buckets.len() - 1
                    }
                };
                let client = buckets.get(index).map(|(_, c)| c.clone()).context("bucket client")?;
                let keys = discover(&client, location, days.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot list s3://{}/{}: {e}", location.bucket, location.prefix))?;
                objects.extend(keys.into_iter().map(|(key, size, etag)| Object { bucket: index, key, size, etag }));
            }
            anyhow::Ok((buckets, objects))
        })?;
        Ok(Archive { runtime, sdk, buckets, objects })
    }

    /// No archive listed: a connection to read and write a work bucket.
    pub fn connect() -> anyhow::Result<Archive> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let sdk = runtime.block_on(aws_config::load_defaults(BehaviorVersion::latest()));
        Ok(Archive { runtime, sdk, buckets: Vec::new(), objects: Vec::new() })
    }

    /// Reads objects of a bucket, [`FETCHES`] at a time; each one's bytes or why it could not be read, in order.
    pub fn fetch(&self, bucket: &str, keys: Vec<String>) -> anyhow::Result<Vec<Result<Vec<u8>, String>>> {
        self.runtime.block_on(async {
            let client = client_for(&self.sdk, bucket).await?;
            let bucket = bucket.to_owned();
            Ok(ordered(keys, FETCHES, |key| get(client.clone(), bucket.clone(), key, None)).await)
        })
    }

    /// The objects listed, as (bucket, key, ETag), in order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str, Option<&str>)> {
        self.objects.iter().map(|o| {
            let bucket = self.buckets.get(o.bucket).map(|(b, _)| b.as_str()).unwrap_or_default();
            (bucket, o.key.as_str(), o.etag.as_deref())
        })
    }

    /// Writes objects to a bucket, [`FETCHES`] at a time; gives each one's ETag, in order.
    pub fn put(&self, bucket: &str, objects: Vec<(String, Vec<u8>)>) -> anyhow::Result<Vec<String>> {
        self.runtime.block_on(async {
            let client = client_for(&self.sdk, bucket).await?;
            let bucket = bucket.to_owned();
            let written = ordered(objects, FETCHES, |(key, body)| {
                let (client, bucket) = (client.clone(), bucket.clone());
                async move {
                    let out = client
                        .put_object()
                        .bucket(&bucket)
                        .key(&key)
                        .body(body.into())
                        .send()
                        .await
                        .map_err(|e| format!("cannot write s3://{bucket}/{key}: {}", describe(&e)))?;
                    Ok(out.e_tag().unwrap_or_default().trim_matches('"').to_owned())
                }
            })
            .await;
            written.into_iter().map(|r| r.map_err(anyhow::Error::msg)).collect()
        })
    }

    /// How many objects, and their bytes.
    pub fn size(&self) -> (u64, u64) {
        (self.objects.len() as u64, self.objects.iter().map(|o| o.size).sum())
    }

    /// The objects' names (`s3://bucket/key`), in the order they are read: the inputs' names in messages.
    pub fn names(&self) -> Vec<PathBuf> {
        self.objects
            .iter()
            .map(|o| {
                let bucket = self.buckets.get(o.bucket).map(|(b, _)| b.as_str()).unwrap_or_default();
                PathBuf::from(format!("s3://{bucket}/{}", o.key))
            })
            .collect()
    }

    /// Fetches the objects, [`FETCHES`] at a time, and hands each to `send` in order as a whole input (or its
    /// end with the reason it could not be read), until done or `send` says stop.
    pub fn produce(&self, progress: &Progress, send: &mut dyn FnMut(Work) -> bool) {
        self.runtime.block_on(async {
            let mut pending = VecDeque::new();
            let mut next = self.objects.iter().enumerate();
            loop {
                while pending.len() < FETCHES {
                    let Some((input, object)) = next.next() else { break };
                    let Some((bucket, client)) = self.buckets.get(object.bucket) else { break };
                    let fetch = get(client.clone(), bucket.clone(), object.key.clone(), object.etag.clone());
                    pending.push_back((input, tokio::spawn(fetch)));
                }
                let Some((input, handle)) = pending.pop_front() else { return };
                let work = match joined(handle).await {
                    Ok(bytes) => {
                        progress.add_object(bytes.len() as u64);
                        Work::Whole { input, bytes: Some(bytes) }
                    }
                    Err(error) => {
                        progress.add_object(0);
                        Work::End { input, error: Some(error) }
                    }
                };
                // Blocks while the pipeline is full: the fetches in flight go on on the runtime's workers.
                if !send(work) {
                    return;
                }
            }
        });
    }
}

/// A client for the bucket's own region, retrying throttling in the SDK's adaptive mode.
async fn client_for(sdk: &SdkConfig, bucket: &str) -> anyhow::Result<Client> {
    let retry = match std::env::var_os("AWS_MAX_ATTEMPTS") {
        Some(_) => sdk.retry_config().cloned().unwrap_or_else(RetryConfig::adaptive),
        None => RetryConfig::adaptive().with_max_attempts(ATTEMPTS),
    };
    let config = aws_sdk_s3::config::Builder::from(sdk).retry_config(retry);
    let client = Client::from_conf(config.clone().build());
    // `x-amz-bucket-region` comes with the answer whether it is 200, 301 (another region) or 403.
    let region = match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => out.bucket_region().map(str::to_owned),
        Err(e) => match e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")) {
            Some(region) => Some(region.to_owned()),
            None => anyhow::bail!("cannot read bucket `{bucket}` (HeadBucket): {}", describe(&e)),
        },
    };
    Ok(match region {
        Some(region) if sdk.region().is_none_or(|r| r.as_ref() != region) => {
            Client::from_conf(config.region(Region::new(region)).build())
        }
        _ => client,
    })
}

/// Lists the event logs under a location: the layout's folders walked level by level, then the region (or day)
/// folders listed whole; sorted by key.
async fn discover(client: &Client, location: &Location, days: Option<&[String]>) -> Result<Vec<Listed>, String> {
    let mut objects = Vec::new();
    let mut leaves = Vec::new();
    let mut folders = vec![location.prefix.clone()];
    let mut depth = 0;
    while !folders.is_empty() {
        let mut walk = Vec::new();
        for folder in folders.drain(..) {
            match (level(&folder), days) {
                (Level::Region, Some(days)) => leaves.extend(days.iter().map(|d| format!("{folder}{d}"))),
                (Level::Above, _) if depth < MAX_DEPTH => walk.push(folder),
                _ => leaves.push(folder),
            }
        }
        for listed in ordered(walk, LISTINGS, |p| list(client.clone(), location.bucket.clone(), p, true)).await {
            let (files, below) = listed?;
            objects.extend(files.into_iter().filter(|(key, _, _)| is_event_log(key)));
            folders.extend(below.into_iter().filter(|f| !f.split('/').any(is_other_cloudtrail_folder)));
        }
        depth += 1;
    }
    for listed in ordered(leaves, LISTINGS, |p| list(client.clone(), location.bucket.clone(), p, false)).await {
        objects.extend(listed?.0.into_iter().filter(|(key, _, _)| is_event_log(key)));
    }
    objects.sort();
    objects.dedup_by(|a, b| a.0 == b.0);
    Ok(objects)
}

/// An object as listed: its key, size and ETag.
type Listed = (String, u64, Option<String>);

/// One prefix listed, every page: the objects, and with a delimiter the folders below it.
async fn list(
    client: Client,
    bucket: String,
    prefix: String,
    folders: bool,
) -> Result<(Vec<Listed>, Vec<String>), String> {
    let mut objects = Vec::new();
    let mut below = Vec::new();
    let mut token = None;
    loop {
        let mut request = client.list_objects_v2().bucket(&bucket).prefix(&prefix).set_continuation_token(token);
        if folders {
            request = request.delimiter("/");
        }
        let page = request.send().await.map_err(|e| format!("listing `{prefix}`: {}", describe(&e)))?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                let etag = object.e_tag().map(str::to_owned);
                objects.push((key.to_owned(), object.size().unwrap_or(0).max(0) as u64, etag));
            }
        }
        below.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)));
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return Ok((objects, below)),
        }
    }
}

/// One object's bytes, as stored (the scanner's workers decompress them); with an `etag`, only that version of it
/// (S3 answers 412 `PreconditionFailed` to `If-Match` when the object has been replaced since).
async fn get(client: Client, bucket: String, key: String, etag: Option<String>) -> Result<Vec<u8>, String> {
    let request = client.get_object().bucket(bucket).key(key).set_if_match(etag);
    let out = request.send().await.map_err(|e| match e.code() {
        Some("PreconditionFailed") => format!("replaced after it was listed, so not read ({})", describe(&e)),
        _ => describe(&e),
    })?;
    let body = out.body.collect().await.map_err(|e| format!("reading the object: {e}"))?;
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let at = |b: &str, p: &str| Some(Location { bucket: b.into(), prefix: p.into() });
        assert_eq!(Location::parse("s3://logs"), at("logs", ""));
        assert_eq!(Location::parse("s3://logs/"), at("logs", ""));
        assert_eq!(Location::parse("s3://logs/org/AWSLogs/"), at("logs", "org/AWSLogs/"));
        assert_eq!(Location::parse("s3:///x"), None);
        assert_eq!(Location::parse("/tmp/logs"), None);
    }

    #[test]
    fn both_layouts_are_recognised() {
        assert_eq!(level(""), Level::Above);
        assert_eq!(level("p/AWSLogs/"), Level::Above);
        assert_eq!(level("AWSLogs/123456789012/CloudTrail/"), Level::Above);
        assert_eq!(level("AWSLogs/123456789012/CloudTrail/eu-west-1/"), Level::Region);
        assert_eq!(level("p/q/AWSLogs/o-abc123/123456789012/CloudTrail/us-east-1/"), Level::Region);
        assert_eq!(level("AWSLogs/o-abc123/123456789012/CloudTrail/us-east-1/2026/11/"), Level::Below);
        assert_eq!(level("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11"), Level::Below, "not a folder");
        assert_eq!(level("AWSLogs/CloudTrail/"), Level::Above, "no account before it");
    }

    #[test]
    fn digests_and_insights_are_not_event_logs() {
        assert!(is_event_log("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/a.json.gz"));
        assert!(!is_event_log("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/01/a.json.gz"));
        assert!(!is_event_log("AWSLogs/o-1/123456789012/CloudTrail-Insight/us-east-1/2026/11/01/a.json.gz"));
        assert!(!is_event_log("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/"));
    }

    #[test]
    fn the_window_becomes_day_folders_one_day_wider_at_its_end() {
        let now = datetime!(2026-11-29 12:00 UTC);
        let days = day_folders(Some(datetime!(2026-10-30 23:00 UTC)), Some(datetime!(2026-11-01 00:00 UTC)), now);
        assert_eq!(days.unwrap(), ["2026/10/30/", "2026/10/31/", "2026/11/01/", "2026/11/02/"]);
        let days = day_folders(Some(datetime!(2026-11-28 10:00 +02:00)), None, now).unwrap();
        assert_eq!(days, ["2026/11/28/", "2026/11/29/", "2026/11/30/"], "UTC dates, up to tomorrow");
        assert_eq!(day_folders(None, Some(now), now), None, "no start: every day");
        assert_eq!(day_folders(Some(now), Some(datetime!(2026-01-01 00:00 UTC)), now), Some(vec![]));
        assert_eq!(day_folders(Some(datetime!(2000-01-01 00:00 UTC)), None, now), None, "too long: list whole");
    }
}
