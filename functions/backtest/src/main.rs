//! The backtest Lambda: S3 Batch Operations invokes it once per manifest row (a shard of a CloudTrail archive,
//! invocation schema 2.0); it reads the shard's logs and, by the job's `pass`, writes their issuing calls (for
//! the run's agent-session registry) or runs the same engine as `trailguard scan` with that registry (offline: no
//! IAM look-ups) and writes the findings to S3 as gzipped JSON lines partitioned for Athena. `main` wires
//! (environment: `TRAILGUARD_CONFIG`, optional); the handler only translates. See `trailguard_core::backtest`.

mod shard;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailguard_core::backtest::{TaskEvent, TaskReply};
use trailguard_core::{Config, Engine};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(filter()).without_time().init();
    let config = match std::env::var("TRAILGUARD_CONFIG").ok().filter(|c| !c.trim().is_empty()) {
        Some(text) => Config::from_json(&text).map_err(|e| format!("TRAILGUARD_CONFIG: {e}"))?,
        None => Config::default(),
    };
    // Standard retries (exponential backoff with jitter) on S3's throttling and 5xx, before a task gives up
    // with a temporary failure that Batch Operations retries.
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(6);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry).load().await;
    let backtest = shard::Backtest {
        engine: Engine::new(config),
        s3: aws_sdk_s3::Client::new(&sdk),
        registry: std::sync::Mutex::default(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<TaskEvent>| handle(&backtest, event))).await
}

async fn handle(backtest: &shard::Backtest, event: LambdaEvent<TaskEvent>) -> Result<TaskReply, Error> {
    Ok(backtest.run(event.payload).await)
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}
