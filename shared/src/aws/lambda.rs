//! What both Lambdas read at start-up: logging, configuration and destinations, failing fast on mistakes.

use aws_config::SdkConfig;

use super::accounts::Accounts;
use super::delivery::Delivery;
use crate::config::Config;

/// The settings a Lambda is started with, from its environment.
///
/// `TRAILGUARD_CONFIG` (JSON, optional), `HOME_ACCOUNT_ID`, `ALERT_TOPIC_ARN`, `FINDINGS_BUS_NAME`,
/// `STATE_TABLE_NAME` (the DynamoDB state table), `FINDINGS_MAC_KEY_ID` (the KMS HMAC key) (required),
/// `OWN_ROLE_ARNS` and `DEPLOYMENT_ROLE_ARNS` (comma-separated exact role ARNs, added to the configuration's),
/// `OWN_RESOURCE_ARNS` (trailguard's resources as deployed, comma-separated), `TRAILGUARD_FRESHNESS_MINUTES`
/// (overrides `remediation.freshness_minutes`),
/// `EXTERNAL_ID` (optional, for member accounts), `SSO_ADMIN_ROLE_ARN` (optional, the sso-admin role), `DRY_RUN` (`true` forces a dry run whatever the config says),
/// `TRAILGUARD_MODE` (the deployment's mode: `enforce` keeps the configuration, `alert-only` makes every
/// finding alert-only, `dry-run` plans and reports without changing anything).
pub struct Settings {
    /// The configuration.
    pub config: Config,
    /// The account the function runs in.
    pub home_account: String,
    /// The alert topic.
    pub topic_arn: String,
    /// The findings bus.
    pub bus_name: String,
    /// The external id for member roles.
    pub external_id: Option<String>,
    /// The state table.
    pub table_name: String,
    /// The KMS HMAC key that signs findings.
    pub mac_key_id: String,
}

impl Settings {
    /// Reads the environment; an error names the variable.
    pub fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &str| var(name).ok_or_else(|| format!("environment variable {name} is required"));
        let mut config = match var("TRAILGUARD_CONFIG") {
            Some(text) => Config::from_json(&text).map_err(|e| format!("TRAILGUARD_CONFIG: {e}"))?,
            None => Config::default(),
        };
        let arns = |name: &str| {
            var(name)
                .map(|v| v.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect::<Vec<_>>())
        };
        config.own_role_arns.extend(arns("OWN_ROLE_ARNS").unwrap_or_default());
        config.deployment_role_arns.extend(arns("DEPLOYMENT_ROLE_ARNS").unwrap_or_default());
        config.own_resource_arns.extend(arns("OWN_RESOURCE_ARNS").unwrap_or_default());
        config.validate().map_err(|e| format!("OWN_ROLE_ARNS / DEPLOYMENT_ROLE_ARNS: {e}"))?;
        if let Some(minutes) = var("TRAILGUARD_FRESHNESS_MINUTES") {
            config.remediation.freshness_minutes =
                minutes.parse().map_err(|_| format!("TRAILGUARD_FRESHNESS_MINUTES `{minutes}` is not a number"))?;
        }
        // The template's SsoAdminRoleArn: the role the remediator may assume, and so the one it uses.
        if let Some(arn) = var("SSO_ADMIN_ROLE_ARN") {
            config.remediation.sso_admin_role_arn = Some(arn);
        }
        if var("DRY_RUN").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            config.remediation.dry_run = true;
        }
        match var("TRAILGUARD_MODE").as_deref() {
            None | Some("enforce") => {}
            Some("dry-run") => config.remediation.dry_run = true,
            Some("alert-only") => {
                config.remediation.agents = crate::config::Mode::Alert;
                config.remediation.humans = crate::config::Mode::Alert;
                for settings in config.rules.values_mut() {
                    if settings.mode == Some(crate::config::Mode::Enforce) {
                        settings.mode = Some(crate::config::Mode::Alert);
                    }
                }
            }
            Some(other) => return Err(format!("TRAILGUARD_MODE `{other}` is not enforce, alert-only or dry-run")),
        }
        Ok(Settings {
            config,
            home_account: required("HOME_ACCOUNT_ID")?,
            topic_arn: required("ALERT_TOPIC_ARN")?,
            bus_name: required("FINDINGS_BUS_NAME")?,
            external_id: var("EXTERNAL_ID"),
            table_name: required("STATE_TABLE_NAME")?,
            mac_key_id: required("FINDINGS_MAC_KEY_ID")?,
        })
    }

    /// Account access for this function: `role` is the role it assumes in member accounts, `session_name`
    /// marks its calls in their CloudTrail.
    pub fn accounts(&self, sdk: &SdkConfig, role: &str, session_name: &str) -> Accounts {
        Accounts::new(sdk.clone(), &self.home_account, role, self.external_id.clone(), session_name)
    }

    /// The state table.
    pub fn state(&self, sdk: &SdkConfig) -> super::StateTable {
        super::StateTable::new(aws_sdk_dynamodb::Client::new(sdk), &self.table_name)
    }

    /// The findings' HMAC key.
    pub fn mac_key(&self, sdk: &SdkConfig) -> super::MacKey {
        super::MacKey::new(aws_sdk_kms::Client::new(sdk), &self.mac_key_id)
    }

    /// Delivery to the topic and bus.
    pub fn delivery(&self, sdk: &SdkConfig) -> Delivery {
        Delivery::new(
            aws_sdk_sns::Client::new(sdk),
            aws_sdk_eventbridge::Client::new(sdk),
            &self.topic_arn,
            &self.bus_name,
        )
    }
}

/// Loads the SDK configuration once, with retries on throttling and transient errors (standard mode,
/// exponential backoff with jitter).
pub async fn sdk_config() -> SdkConfig {
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(5);
    aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry).load().await
}
