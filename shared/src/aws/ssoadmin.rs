//! IAM Identity Center through the SDK: the few `sso-admin` calls the permission-set step makes.

use aws_sdk_ssoadmin::types::{PermissionSetProvisioningStatus, ProvisionTargetType};
use aws_sdk_ssoadmin::Client;

use super::error::classify;
use crate::iam::IamError;
use crate::remediation::sso::{PermissionSet, Provisioning, SsoAdminActions};

/// [`SsoAdminActions`] with the SDK client of the sso-admin role.
pub struct SdkSsoAdmin {
    client: Client,
}

impl SdkSsoAdmin {
    /// Wraps a client.
    pub fn new(client: Client) -> SdkSsoAdmin {
        SdkSsoAdmin { client }
    }
}

fn provisioning(status: Option<&PermissionSetProvisioningStatus>) -> Provisioning {
    Provisioning {
        // A response without a status says nothing was confirmed: treated like a failure, never like success.
        status: status.and_then(|s| s.status()).map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        request_id: status.and_then(|s| s.request_id()).map(str::to_owned),
        failure: status.and_then(|s| s.failure_reason()).map(str::to_owned),
    }
}

impl SsoAdminActions for SdkSsoAdmin {
    async fn instances(&self) -> Result<Vec<String>, IamError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_instances()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("sso:ListInstances", &e))?;
            arns.extend(out.instances().iter().filter_map(|i| i.instance_arn()).map(str::to_owned));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn permission_set_named(&self, instance: &str, name: &str) -> Result<Option<PermissionSet>, IamError> {
        let mut token = None;
        loop {
            let out = self
                .client
                .list_permission_sets()
                .instance_arn(instance)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("sso:ListPermissionSets", &e))?;
            for arn in out.permission_sets() {
                let described = self
                    .client
                    .describe_permission_set()
                    .instance_arn(instance)
                    .permission_set_arn(arn)
                    .send()
                    .await
                    .map_err(|e| classify("sso:DescribePermissionSet", &e))?;
                if let Some(set) = described.permission_set().filter(|s| s.name() == Some(name)) {
                    return Ok(Some(PermissionSet {
                        arn: arn.clone(),
                        session_duration: set.session_duration().map(str::to_owned),
                    }));
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(None);
            }
        }
    }

    async fn inline_policy(&self, instance: &str, set: &str) -> Result<String, IamError> {
        let out = self
            .client
            .get_inline_policy_for_permission_set()
            .instance_arn(instance)
            .permission_set_arn(set)
            .send()
            .await
            .map_err(|e| classify("sso:GetInlinePolicyForPermissionSet", &e))?;
        Ok(out.inline_policy().unwrap_or_default().to_owned())
    }

    async fn put_inline_policy(&self, instance: &str, set: &str, policy: &str) -> Result<(), IamError> {
        self.client
            .put_inline_policy_to_permission_set()
            .instance_arn(instance)
            .permission_set_arn(set)
            .inline_policy(policy)
            .send()
            .await
            .map_err(|e| classify("sso:PutInlinePolicyToPermissionSet", &e))?;
        Ok(())
    }

    async fn provision(&self, instance: &str, set: &str, account: &str) -> Result<Provisioning, IamError> {
        let out = self
            .client
            .provision_permission_set()
            .instance_arn(instance)
            .permission_set_arn(set)
            .target_type(ProvisionTargetType::AwsAccount)
            .target_id(account)
            .send()
            .await
            .map_err(|e| classify("sso:ProvisionPermissionSet", &e))?;
        Ok(provisioning(out.permission_set_provisioning_status()))
    }

    async fn provisioning(&self, instance: &str, request_id: &str) -> Result<Provisioning, IamError> {
        let out = self
            .client
            .describe_permission_set_provisioning_status()
            .instance_arn(instance)
            .provision_permission_set_request_id(request_id)
            .send()
            .await
            .map_err(|e| classify("sso:DescribePermissionSetProvisioningStatus", &e))?;
        Ok(provisioning(out.permission_set_provisioning_status()))
    }
}
