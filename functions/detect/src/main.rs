//! The detector Lambda: an EventBridge event carrying a CloudTrail record in, findings out to SNS and the
//! findings bus. `main` wires (environment: see `trailguard_core::aws::lambda::Settings`); the handler only
//! translates between Lambda and the library.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use trailguard_core::aws::lambda::{sdk_config, Settings};
use trailguard_core::aws::Detector;
use trailguard_core::config::DETECTOR_SESSION;
use trailguard_core::Engine;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(filter()).without_time().init();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let detector = Detector::new(
        Engine::new(settings.config.clone()),
        settings.accounts(&sdk, &settings.config.remediation.member_reader_role_name, DETECTOR_SESSION),
        settings.delivery(&sdk).signing_with(settings.mac_key(&sdk)),
        settings.state(&sdk),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(&detector, event))).await
}

async fn handle(detector: &Detector, event: LambdaEvent<Value>) -> Result<Value, Error> {
    match detector.handle(&event.payload.to_string()).await {
        Ok(outcome) => {
            if let Some(beat) = &outcome.heartbeat {
                write_metric(&beat.emf(now_ms()));
            }
            Ok(serde_json::to_value(outcome)?)
        }
        Err(e) => {
            tracing::error!(request_id = %event.context.request_id, error = %e, "event not handled");
            Err(e.into())
        }
    }
}

/// One Embedded Metric Format document on its own log line: CloudWatch Logs extracts the metric, no API call.
fn write_metric(document: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{document}").and_then(|()| out.flush());
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}
