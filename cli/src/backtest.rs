//! `trailguard backtest`: prepares a backtest of an archive in S3 on S3 Batch Operations and the `backtest`
//! Lambda (`infra/backtest.yaml`). It lists the archive as `scan s3://` does (layouts, digests left out, the
//! window's day folders), writes the shards (a few thousand log keys each), the CSV manifest naming them and the
//! run's description (`run.json`), and prints the commands that start the first job (`pass=sessions`: each
//! shard's issuing calls) and follow it. `trailguard backtest-sessions` then joins those into the run's
//! agent-session registry input and prints the second job (`pass=findings`). See `trailguard_core::backtest`.

use std::io::Write as _;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use trailguard_core::backtest::{
    manifest_csv, run_prefix, sessions_key, sessions_part_key, shard_key, shard_text, Arguments, Pass, ShardLog, SCHEMA,
};

use crate::scan::s3::{Archive, Location};

/// What to prepare.
pub struct Plan {
    /// `s3://bucket/prefix/` of the CloudTrail archive.
    pub archive: String,
    /// `s3://bucket/prefix/` where the shards, the manifest and the job's report go.
    pub work: String,
    /// `s3://bucket/prefix/` for the findings (default: `results/` under `work`).
    pub results: Option<String>,
    pub since: Option<(String, OffsetDateTime)>,
    pub until: Option<(String, OffsetDateTime)>,
    pub per_shard: usize,
    /// The `backtest` function's ARN (the stack's output), filled into the printed command.
    pub function_arn: Option<String>,
    /// The Batch Operations role's ARN (the stack's output).
    pub role_arn: Option<String>,
}

/// A folder URL: the prefix empty or ending in `/`.
fn folder(url: &str) -> anyhow::Result<Location> {
    let mut location =
        Location::parse(url).ok_or_else(|| anyhow::anyhow!("`{url}` is not an s3://bucket/prefix/ URL"))?;
    if !location.prefix.is_empty() && !location.prefix.ends_with('/') {
        location.prefix.push('/');
    }
    Ok(location)
}

pub fn run(plan: &Plan) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(plan.per_shard > 0, "--per-shard must be at least 1");
    let work = folder(&plan.work)?;
    let results = match &plan.results {
        Some(url) => folder(url)?,
        None => Location { bucket: work.bucket.clone(), prefix: format!("{}results/", work.prefix) },
    };
    crate::note(format_args!("listing {}", plan.archive))?;
    let archive = Archive::list(
        std::slice::from_ref(&plan.archive),
        plan.since.as_ref().map(|s| s.1),
        plan.until.as_ref().map(|u| u.1),
    )?;
    let mut archive_bucket = String::new();
    let keys: Vec<ShardLog> = archive
        .keys()
        .map(|(bucket, key, etag)| {
            archive_bucket = bucket.to_owned();
            ShardLog { key: key.to_owned(), etag: etag.map(str::to_owned) }
        })
        .collect();
    if keys.is_empty() {
        anyhow::bail!("nothing to backtest: no CloudTrail log under {}", plan.archive);
    }
    let shards: Vec<(String, Vec<u8>)> = keys
        .chunks(plan.per_shard)
        .enumerate()
        .map(|(i, chunk)| (shard_key(&work.prefix, i), shard_text(chunk).into_bytes()))
        .collect();
    let names: Vec<String> = shards.iter().map(|(k, _)| k.clone()).collect();
    archive.put(&work.bucket, shards)?;
    let manifest_key = format!("{}manifest.csv", work.prefix);
    let etag = archive
        .put(&work.bucket, vec![(manifest_key.clone(), manifest_csv(&work.bucket, &names).into_bytes())])?
        .pop()
        .unwrap_or_default();
    crate::note(format_args!(
        "wrote {} shard(s) of at most {} log(s) ({} logs in all) and the manifest s3://{}/{manifest_key}",
        names.len(),
        plan.per_shard,
        keys.len(),
        work.bucket
    ))?;
    let arguments = Arguments {
        pass: Pass::Sessions,
        archive_bucket,
        results_bucket: results.bucket.clone(),
        results_prefix: results.prefix.clone(),
        since: plan.since.as_ref().map(|s| s.0.clone()),
        until: plan.until.as_ref().map(|u| u.0.clone()),
    };
    let run = Run {
        work_bucket: work.bucket.clone(),
        manifest_key,
        etag,
        function_arn: plan.function_arn.clone(),
        role_arn: plan.role_arn.clone(),
        user_arguments: arguments.to_user_arguments(),
        shards: names,
    };
    archive.put(&work.bucket, vec![(run_key(&work.prefix), serde_json::to_vec_pretty(&run)?)])?;
    let mut out = crate::stdout();
    out.write_all(commands(&run, Pass::Sessions).as_bytes())?;
    writeln!(
        out,
        "# When it has finished (every task succeeded):\ntrailguard backtest-sessions s3://{}/{}",
        work.bucket, work.prefix
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What `backtest` prepared, kept next to the manifest for `backtest-sessions`.
#[derive(Serialize, Deserialize)]
struct Run {
    work_bucket: String,
    manifest_key: String,
    etag: String,
    function_arn: Option<String>,
    role_arn: Option<String>,
    /// The first job's user arguments (the second's differ only in `pass`).
    user_arguments: std::collections::BTreeMap<String, String>,
    /// The shards' keys, in manifest order.
    shards: Vec<String>,
}

fn run_key(work_prefix: &str) -> String {
    format!("{work_prefix}run.json")
}

/// `trailguard backtest-sessions s3://bucket/work/run/`: after the first job, joins every shard's issuing calls
/// into `<run>sessions.jsonl.gz` (gzip members concatenated: still one gzip stream to read), which the second
/// job's tasks read to build the registry; prints the second job's commands. Refuses while a shard's part is
/// missing: a registry without it could miss an agent session.
pub fn join_sessions(work: &str) -> anyhow::Result<ExitCode> {
    let work = folder(work)?;
    let archive = Archive::connect()?;
    let key = run_key(&work.prefix);
    let text =
        archive.fetch(&work.bucket, vec![key.clone()])?.pop().unwrap_or_else(|| Err("no answer".to_owned())).map_err(
            |e| anyhow::anyhow!("cannot read s3://{}/{key} (written by `trailguard backtest`): {e}", work.bucket),
        )?;
    let run: Run = serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("s3://{}/{key}: {e}", work.bucket))?;
    let parts: Vec<String> = run.shards.iter().map(|s| sessions_part_key(s)).collect();
    let fetched = archive.fetch(&run.work_bucket, parts.clone())?;
    let mut joined = Vec::new();
    let mut missing = Vec::new();
    for (part, bytes) in parts.iter().zip(fetched) {
        match bytes {
            Ok(bytes) => joined.extend(bytes),
            Err(e) => missing.push(format!("{part}: {e}")),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        anyhow::bail!(
            "{} of {} shard(s) have no issuing calls written (has the `pass=sessions` job finished, every task \
             succeeded?): {}{}",
            missing.len(),
            parts.len(),
            shown.join("; "),
            if missing.len() > shown.len() { "; ..." } else { "" }
        );
    }
    let run_prefix = run.shards.first().map(|s| run_prefix(s)).unwrap_or(&work.prefix);
    let sessions = sessions_key(run_prefix);
    let size = joined.len();
    archive.put(&run.work_bucket, vec![(sessions.clone(), joined)])?;
    crate::note(format_args!(
        "joined the issuing calls of {} shard(s) into s3://{}/{sessions} ({size} bytes gzipped)",
        parts.len(),
        run.work_bucket
    ))?;
    let mut out = crate::stdout();
    out.write_all(commands(&run, Pass::Findings).as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The commands that start a pass's job and follow it, with what is known filled in.
fn commands(run: &Run, pass: Pass) -> String {
    let function = run.function_arn.as_deref().unwrap_or("<BacktestFunctionArn output of infra/backtest.yaml>");
    // arn:aws:lambda:<region>:<account>:function:<name>
    let mut parts = function.split(':').skip(3);
    let (region, account) = match (parts.next(), parts.next()) {
        (Some(region), Some(account)) => (region, account),
        _ => ("<REGION>", "<ACCOUNT_ID>"),
    };
    let role = run.role_arn.as_deref().unwrap_or("<BatchOperationsRoleArn output of infra/backtest.yaml>");
    let mut arguments = run.user_arguments.clone();
    arguments.insert("pass".to_owned(), pass.as_str().to_owned());
    let operation = serde_json::json!({"LambdaInvoke": {
        "FunctionArn": function,
        "InvocationSchemaVersion": SCHEMA,
        "UserArguments": arguments,
    }});
    let manifest = serde_json::json!({
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{}/{}", run.work_bucket, run.manifest_key), "ETag": run.etag},
    });
    let work_prefix = run.manifest_key.trim_end_matches("manifest.csv");
    let report = serde_json::json!({
        "Bucket": format!("arn:aws:s3:::{}", run.work_bucket), "Prefix": format!("{work_prefix}report-{}", pass.as_str()),
        "Format": "Report_CSV_20180820", "Enabled": true, "ReportScope": "AllTasks",
    });
    let token: String = run.etag.chars().filter(char::is_ascii_alphanumeric).take(24).collect();
    let (what, job) = match pass {
        Pass::Sessions => ("the first job: each shard's issuing calls, for the agent-session registry", "SESSIONS_JOB"),
        Pass::Findings => ("the second job: every event judged with the registry; findings for Athena", "FINDINGS_JOB"),
    };
    format!(
        "# Start {what} (Batch Operations invokes the backtest function once per shard):\n\
         {job}=$(aws s3control create-job --region {region} --account-id {account} --no-confirmation-required \\\n  \
         --priority 10 --client-request-token trailguard-{}-{token} --role-arn '{role}' \\\n  \
         --operation '{operation}' \\\n  --manifest '{manifest}' \\\n  --report '{report}' \\\n  \
         --query JobId --output text)\n\
         # Follow it (Status, and tasks succeeded/failed of the total; the report lists each shard's result):\n\
         aws s3control describe-job --region {region} --account-id {account} --job-id \"${job}\" \\\n  \
         --query 'Job.{{Status:Status,Progress:ProgressSummary,Failures:FailureReasons}}'\n",
        pass.as_str()
    )
}
