//! SDK configuration per account: the function's own credentials at home, an assumed member role elsewhere.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::iam::{IamError, IamErrorKind};

/// Hands out an SDK configuration for any account of the organisation.
///
/// In the home account the function's own role is used. In any other account trailguard assumes the member
/// role (`arn:aws:iam::<account>:role/<member role>`) with the external id; the provider caches and refreshes
/// the credentials, and is itself cached for the life of the Lambda environment.
pub struct Accounts {
    base: SdkConfig,
    home_account: String,
    member_role: String,
    external_id: Option<String>,
    session_name: String,
    assumed: Mutex<HashMap<String, SdkConfig>>,
}

impl Accounts {
    /// `session_name` shows in the member account's CloudTrail as the session of trailguard's calls.
    pub fn new(
        base: SdkConfig,
        home_account: &str,
        member_role: &str,
        external_id: Option<String>,
        session_name: &str,
    ) -> Accounts {
        Accounts {
            base,
            home_account: home_account.to_owned(),
            member_role: member_role.to_owned(),
            external_id,
            session_name: session_name.to_owned(),
            assumed: Mutex::new(HashMap::new()),
        }
    }

    /// The function's own configuration, in its home account.
    pub fn home_config(&self) -> SdkConfig {
        self.base.clone()
    }

    /// The account the function runs in.
    pub fn home_account(&self) -> &str {
        &self.home_account
    }

    /// The configuration to act in `account` (the home one when the account is unknown or the home account).
    ///
    /// The member role is assumed here, not at the first call: a role that cannot be assumed (missing, or its
    /// trust refuses) is a [`IamErrorKind::Blind`] error, permanent until someone fixes that account, which the
    /// SDK would otherwise report at the first call as a dispatch failure that looks transient.
    pub async fn config_for(&self, account: &str) -> Result<SdkConfig, IamError> {
        if account.is_empty() || account == self.home_account {
            return Ok(self.base.clone());
        }
        self.config_for_role(account, &format!("arn:aws:iam::{account}:role/{}", self.member_role)).await
    }

    /// The configuration of one exact role (the optional sso-admin role), assumed with the same external id and
    /// cached like a member role.
    pub async fn config_for_role(&self, cache_key: &str, role_arn: &str) -> Result<SdkConfig, IamError> {
        if let Some(config) = self.assumed.lock().ok().and_then(|m| m.get(cache_key).cloned()) {
            return Ok(config);
        }
        let mut builder = AssumeRoleProvider::builder(role_arn).session_name(&self.session_name).configure(&self.base);
        if let Some(id) = &self.external_id {
            builder = builder.external_id(id);
        }
        let provider = builder.build().await;
        if let Err(e) = provider.provide_credentials().await {
            let message = one_line(&e);
            let permanent =
                ["AccessDenied", "NoSuchEntity", "not authorized", "InvalidClientTokenId", "ValidationError"]
                    .iter()
                    .any(|code| message.contains(code));
            let kind = if permanent { IamErrorKind::Blind } else { IamErrorKind::Transient };
            return Err(IamError {
                kind,
                action: "sts:AssumeRole".to_owned(),
                message: format!("{role_arn} cannot be assumed: {message}"),
            });
        }
        let config = self.base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
        if let Ok(mut map) = self.assumed.lock() {
            map.insert(cache_key.to_owned(), config.clone());
        }
        Ok(config)
    }
}

/// An error and its sources on one line, without the debug dump of the SDK's response: what on-call reads.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string().replace(['"', '\\'], "'");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
