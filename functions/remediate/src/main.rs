//! The remediator Lambda: a finding event in, a plan executed in the finding's account, a report out to SNS
//! and the findings bus. `main` wires (environment: see `trailguard_core::aws::lambda::Settings`); the handler
//! only translates between Lambda and the library.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use trailguard_core::aws::lambda::{sdk_config, Settings};
use trailguard_core::aws::Remediator;
use trailguard_core::config::REMEDIATOR_SESSION;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(filter()).without_time().init();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let accounts = settings.accounts(&sdk, &settings.config.remediation.member_role_name, REMEDIATOR_SESSION);
    let remediator = Remediator::new(
        settings.config.clone(),
        accounts,
        settings.delivery(&sdk),
        settings.state(&sdk),
        settings.mac_key(&sdk),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(&remediator, event))).await
}

async fn handle(remediator: &Remediator, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let now = time::OffsetDateTime::now_utc();
    match remediator.handle(&event.payload.to_string(), now).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            tracing::error!(request_id = %event.context.request_id, error = %e, "finding not handled");
            Err(e.into())
        }
    }
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}
