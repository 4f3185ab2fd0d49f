//! One emulated account with trailguard's destinations, and the two Lambda binaries run against it.

use std::time::Duration;

use serde_json::{json, Value};

use super::aws::{settle, Outputs};
use super::events::api_call;
use super::moto::{Moto, HOME_ACCOUNT};
use super::runtime::{binary, run_lambda, Run};

pub const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
pub const REVOCATIONS: &str = "trailguard-revocations";

/// One emulated account with trailguard's destinations.
pub struct Stage {
    pub moto: Moto,
    pub out: Outputs,
    pub iam: aws_sdk_iam::Client,
    /// Where the Lambdas send their AWS calls (moto, or a fault proxy in front of it).
    pub endpoint: Option<String>,
}

impl Stage {
    pub async fn new() -> Stage {
        let moto = Moto::start();
        let sdk = moto.sdk();
        let out = Outputs::create(&sdk).await;
        Stage { iam: aws_sdk_iam::Client::new(&sdk), moto, out, endpoint: None }
    }

    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        if let Some(endpoint) = &self.endpoint {
            env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
            env.push(("AWS_ENDPOINT_URL".to_owned(), endpoint.clone()));
        }
        env.extend(self.out.env());
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    pub async fn run(&self, name: &'static str, events: Vec<Value>, extra: &[(&str, &str)]) -> Run {
        let env = self.env(extra);
        let run = tokio::task::spawn_blocking(move || run_lambda(&binary(name), &env, events, Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(run.init_error.is_none(), "{name} failed to start: {:?}\n{}", run.init_error, run.logs);
        settle().await;
        run
    }

    /// Runs the detector on events; returns the finding events it put on the bus.
    pub async fn detect(&self, events: Vec<Value>, extra: &[(&str, &str)]) -> (Run, Vec<Value>) {
        let run = self.run("detect", events, extra).await;
        let bus = self.out.bus_events().await;
        (run, bus.into_iter().filter(|e| e["detail-type"] == "Trailguard Finding").collect())
    }

    /// Runs the remediator on finding events; returns the reports it put on the bus.
    pub async fn remediate(&self, findings: Vec<Value>, extra: &[(&str, &str)]) -> (Run, Vec<Value>) {
        let run = self.run("remediate", findings, extra).await;
        let bus = self.out.bus_events().await;
        (
            run,
            bus.into_iter()
                .filter(|e| e["detail-type"] == "Trailguard Remediation")
                .map(|e| e["detail"].clone())
                .collect(),
        )
    }
}

impl Stage {
    /// Runs the remediator; returns every event it put on the bus (intents, reports, refusal findings).
    pub async fn remediate_all(&self, findings: Vec<Value>, extra: &[(&str, &str)]) -> (Run, Vec<Value>) {
        let run = self.run("remediate", findings, extra).await;
        (run, self.out.bus_events().await)
    }
}

pub fn ok(run: &Run) -> Vec<Value> {
    run.invocations
        .iter()
        .map(|i| i.result.clone().unwrap_or_else(|e| panic!("invocation failed: {e}\n{}", run.logs)))
        .collect()
}

pub fn attach_event(identity: Value, role: &str, policy: &str, event_id: &str) -> Value {
    api_call(
        identity,
        "iam.amazonaws.com",
        "AttachRolePolicy",
        json!({"roleName": role, "policyArn": policy}),
        Value::Null,
        HOME_ACCOUNT,
        event_id,
    )
}

pub fn step_statuses(report: &Value) -> Vec<String> {
    report["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect()
}
