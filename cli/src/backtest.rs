//! `trailguard backtest`: prepares a backtest of an archive in S3 on S3 Batch Operations and the `backtest`
//! Lambda (`infra/backtest.yaml`). It lists the archive as `scan s3://` does (layouts, digests left out, the
//! window's day folders), writes the shards (a few thousand log keys each) and the CSV manifest naming them, and
//! prints the two commands that start the job and follow it. See `trailguard_core::backtest` for the formats.

use std::io::Write as _;
use std::process::ExitCode;

use time::OffsetDateTime;
use trailguard_core::backtest::{manifest_csv, shard_key, shard_text, Arguments, SCHEMA};

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
    let keys: Vec<String> = archive
        .keys()
        .map(|(bucket, key)| {
            archive_bucket = bucket.to_owned();
            key.to_owned()
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
        archive_bucket,
        results_bucket: results.bucket.clone(),
        results_prefix: results.prefix.clone(),
        since: plan.since.as_ref().map(|s| s.0.clone()),
        until: plan.until.as_ref().map(|u| u.0.clone()),
    };
    let mut out = crate::stdout();
    out.write_all(commands(plan, &work, &manifest_key, &etag, &arguments).as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The commands that start the job and follow it, with what is known filled in.
fn commands(plan: &Plan, work: &Location, manifest_key: &str, etag: &str, arguments: &Arguments) -> String {
    let function = plan.function_arn.as_deref().unwrap_or("<BacktestFunctionArn output of infra/backtest.yaml>");
    // arn:aws:lambda:<region>:<account>:function:<name>
    let mut parts = function.split(':').skip(3);
    let (region, account) = match (parts.next(), parts.next()) {
        (Some(region), Some(account)) => (region, account),
        _ => ("<REGION>", "<ACCOUNT_ID>"),
    };
    let role = plan.role_arn.as_deref().unwrap_or("<BatchOperationsRoleArn output of infra/backtest.yaml>");
    let operation = serde_json::json!({"LambdaInvoke": {
        "FunctionArn": function,
        "InvocationSchemaVersion": SCHEMA,
        "UserArguments": arguments.to_user_arguments(),
    }});
    let manifest = serde_json::json!({
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{}/{manifest_key}", work.bucket), "ETag": etag},
    });
    let report = serde_json::json!({
        "Bucket": format!("arn:aws:s3:::{}", work.bucket), "Prefix": format!("{}report", work.prefix),
        "Format": "Report_CSV_20180820", "Enabled": true, "ReportScope": "AllTasks",
    });
    let token: String = etag.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
    format!(
        "# Start the job (Batch Operations invokes the backtest function once per shard):\n\
         JOB_ID=$(aws s3control create-job --region {region} --account-id {account} --no-confirmation-required \\\n  \
         --priority 10 --client-request-token trailguard-{token} --role-arn '{role}' \\\n  \
         --operation '{operation}' \\\n  --manifest '{manifest}' \\\n  --report '{report}' \\\n  \
         --query JobId --output text)\n\
         # Follow it (Status, and tasks succeeded/failed of the total; the report lists each shard's result):\n\
         aws s3control describe-job --region {region} --account-id {account} --job-id \"$JOB_ID\" \\\n  \
         --query 'Job.{{Status:Status,Progress:ProgressSummary,Failures:FailureReasons}}'\n"
    )
}
