//! Setting up and reading the emulated AWS side: the alert topic and the findings bus, each drained through
//! an SQS queue (moto cannot deliver a rule to SNS), and IAM state.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{json, Value};

/// The alert topic and the findings bus, with a queue behind each; the state table and the findings' MAC key.
pub struct Outputs {
    pub topic_arn: String,
    pub bus_name: String,
    pub table_name: String,
    pub mac_key_id: String,
    alert_queue: String,
    bus_queue: String,
    sqs: aws_sdk_sqs::Client,
}

/// A message from the alert topic: subject, body and attributes.
#[derive(Debug, Clone)]
pub struct Alert {
    pub subject: String,
    pub message: String,
    pub attributes: Value,
}

impl Outputs {
    pub async fn create(sdk: &SdkConfig) -> Outputs {
        let sns = aws_sdk_sns::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let topic_arn = sns.create_topic().name("trailguard-alerts").send().await.unwrap().topic_arn.unwrap();
        let alert_queue = sqs.create_queue().queue_name("alerts").send().await.unwrap().queue_url.unwrap();
        let bus_queue = sqs.create_queue().queue_name("findings").send().await.unwrap().queue_url.unwrap();
        let arn_of = |url: &str| format!("arn:aws:sqs:us-east-1:123456789012:{}", url.rsplit('/').next().unwrap());
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(arn_of(&alert_queue)).send().await.unwrap();
        let bus_name = "trailguard-findings".to_owned();
        events.create_event_bus().name(&bus_name).send().await.unwrap();
        events
            .put_rule()
            .name("all-trailguard-events")
            .event_bus_name(&bus_name)
            .event_pattern(json!({"source": ["trailguard"]}).to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule("all-trailguard-events")
            .event_bus_name(&bus_name)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn_of(&bus_queue)).build().unwrap())
            .send()
            .await
            .unwrap();
        let (table_name, mac_key_id) = state(sdk).await;
        Outputs { topic_arn, bus_name, table_name, mac_key_id, alert_queue, bus_queue, sqs }
    }

    /// The environment the Lambdas need for these destinations.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("ALERT_TOPIC_ARN".to_owned(), self.topic_arn.clone()),
            ("FINDINGS_BUS_NAME".to_owned(), self.bus_name.clone()),
            ("STATE_TABLE_NAME".to_owned(), self.table_name.clone()),
            ("FINDINGS_MAC_KEY_ID".to_owned(), self.mac_key_id.clone()),
        ]
    }

    /// Every alert published so far (drains the queue).
    pub async fn alerts(&self) -> Vec<Alert> {
        self.drain(&self.alert_queue)
            .await
            .into_iter()
            .map(|envelope| Alert {
                subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                message: envelope["Message"].as_str().unwrap_or_default().to_owned(),
                attributes: envelope["MessageAttributes"].clone(),
            })
            .collect()
    }

    /// Every event put on the findings bus so far, as EventBridge delivered it (drains the queue).
    pub async fn bus_events(&self) -> Vec<Value> {
        self.drain(&self.bus_queue).await
    }

    async fn drain(&self, queue: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for _ in 0..20 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

/// The state table (as the template creates it) and the HMAC key that signs findings.
pub async fn state(sdk: &SdkConfig) -> (String, String) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table = "trailguard-state".to_owned();
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .unwrap();
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms
        .create_key()
        .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
        .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
        .send()
        .await
        .unwrap();
    (table, key.key_metadata.unwrap().arn.unwrap())
}

/// A role with a trust policy for the account, returning its unique id (`AROA...`).
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str, path: &str) -> String {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    let out = iam
        .create_role()
        .role_name(name)
        .path(path)
        .assume_role_policy_document(trust.to_string())
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    out.role.unwrap().role_id
}

/// A customer managed policy, returning its ARN.
pub async fn create_policy(iam: &aws_sdk_iam::Client, name: &str, document: &Value) -> String {
    let out = iam.create_policy().policy_name(name).policy_document(document.to_string()).send().await.unwrap();
    out.policy.unwrap().arn.unwrap()
}

/// A new version of a managed policy, made its default.
pub async fn create_default_version(iam: &aws_sdk_iam::Client, arn: &str, document: &Value) {
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(document.to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
}

/// An IAM user `name` with one long-term key (returned) and `padding` characters of other inline policy.
pub async fn create_user_with_key(iam: &aws_sdk_iam::Client, name: &str, padding: usize) -> String {
    iam.create_user().user_name(name).send().await.unwrap();
    if padding > 0 {
        let sid = "x".repeat(padding.saturating_sub(90));
        let document = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
        iam.put_user_policy()
            .user_name(name)
            .policy_name("team")
            .policy_document(document.to_string())
            .send()
            .await
            .unwrap();
    }
    let key = iam.create_access_key().user_name(name).send().await.unwrap();
    key.access_key.unwrap().access_key_id
}

pub async fn attached(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    let out = iam.list_attached_role_policies().role_name(role).send().await.unwrap();
    out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect()
}

pub async fn inline_policy(iam: &aws_sdk_iam::Client, role: &str, name: &str) -> Option<Value> {
    let out = iam.get_role_policy().role_name(role).policy_name(name).send().await.ok()?;
    trailguard_core::policy::document::decode_json_text(out.policy_document()).ok()
}

/// Waits a moment for moto's asynchronous deliveries (SNS to SQS is immediate; this is a safety margin).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}
