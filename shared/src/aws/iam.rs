//! IAM through the AWS SDK: the read-only look-ups of the detector and the calls remediation makes.

use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::Client;

use super::error::classify;
use crate::finding::PrincipalKind;
use crate::iam::{IamActions, IamError, IamErrorKind, PolicyVersion, RoleInfo};

/// An IAM client of one account.
#[derive(Clone, Debug)]
pub struct SdkIam {
    client: Client,
}

impl SdkIam {
    /// Wraps a client.
    pub fn new(client: Client) -> SdkIam {
        SdkIam { client }
    }

    /// A managed policy's document: the given version, or the default (`GetPolicy` then `GetPolicyVersion`).
    pub async fn policy_document(&self, arn: &str, version: Option<&str>) -> Result<String, IamError> {
        let version = match version {
            Some(v) => v.to_owned(),
            None => {
                let out =
                    self.client.get_policy().policy_arn(arn).send().await.map_err(|e| classify("iam:GetPolicy", &e))?;
                out.policy().and_then(|p| p.default_version_id()).map(str::to_owned).ok_or_else(|| IamError {
                    kind: IamErrorKind::NotFound,
                    action: "iam:GetPolicy".to_owned(),
                    message: format!("{arn} has no default version"),
                })?
            }
        };
        self.policy_version_document(arn, &version).await
    }

    /// A role's tags (`ListRoleTags`).
    pub async fn role_tags(&self, role: &str) -> Result<Vec<(String, String)>, IamError> {
        let out =
            self.client.list_role_tags().role_name(role).send().await.map_err(|e| classify("iam:ListRoleTags", &e))?;
        Ok(out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
    }
}

fn not_found_is_none<T>(result: Result<T, IamError>) -> Result<Option<T>, IamError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind == IamErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl IamActions for SdkIam {
    async fn get_role(&self, role: &str) -> Result<Option<RoleInfo>, IamError> {
        let result = self.client.get_role().role_name(role).send().await.map_err(|e| classify("iam:GetRole", &e));
        Ok(not_found_is_none(result)?.and_then(|out| {
            out.role().map(|r| RoleInfo {
                arn: r.arn().to_owned(),
                role_id: r.role_id().to_owned(),
                path: r.path().to_owned(),
                max_session_seconds: i64::from(r.max_session_duration().unwrap_or(3600)),
                trust_policy: r.assume_role_policy_document().map(str::to_owned),
            })
        }))
    }

    async fn get_inline_policy(
        &self,
        kind: PrincipalKind,
        principal: &str,
        name: &str,
    ) -> Result<Option<String>, IamError> {
        let c = &self.client;
        let result = match kind {
            PrincipalKind::Role => c
                .get_role_policy()
                .role_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|o| o.policy_document().to_owned())
                .map_err(|e| classify("iam:GetRolePolicy", &e)),
            PrincipalKind::User => c
                .get_user_policy()
                .user_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|o| o.policy_document().to_owned())
                .map_err(|e| classify("iam:GetUserPolicy", &e)),
            PrincipalKind::Group => c
                .get_group_policy()
                .group_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|o| o.policy_document().to_owned())
                .map_err(|e| classify("iam:GetGroupPolicy", &e)),
        };
        not_found_is_none(result)
    }

    async fn inline_policy_names(&self, kind: PrincipalKind, principal: &str) -> Result<Vec<String>, IamError> {
        let c = &self.client;
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (page, next) = match kind {
                PrincipalKind::Role => c
                    .list_role_policies()
                    .role_name(principal)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map(|o| (o.policy_names().to_vec(), o.marker().map(str::to_owned)))
                    .map_err(|e| classify("iam:ListRolePolicies", &e))?,
                PrincipalKind::User => c
                    .list_user_policies()
                    .user_name(principal)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map(|o| (o.policy_names().to_vec(), o.marker().map(str::to_owned)))
                    .map_err(|e| classify("iam:ListUserPolicies", &e))?,
                PrincipalKind::Group => c
                    .list_group_policies()
                    .group_name(principal)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map(|o| (o.policy_names().to_vec(), o.marker().map(str::to_owned)))
                    .map_err(|e| classify("iam:ListGroupPolicies", &e))?,
            };
            names.extend(page);
            match next {
                Some(m) => marker = Some(m),
                None => return Ok(names),
            }
        }
    }

    async fn policy_entities(&self, arn: &str) -> Result<Vec<(PrincipalKind, String)>, IamError> {
        let mut entities = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_entities_for_policy()
                .policy_arn(arn)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify("iam:ListEntitiesForPolicy", &e))?;
            let names = |list: Vec<Option<&str>>, kind: PrincipalKind| {
                list.into_iter().flatten().map(move |n| (kind, n.to_owned())).collect::<Vec<_>>()
            };
            entities.extend(names(out.policy_roles().iter().map(|r| r.role_name()).collect(), PrincipalKind::Role));
            entities.extend(names(out.policy_users().iter().map(|u| u.user_name()).collect(), PrincipalKind::User));
            entities.extend(names(out.policy_groups().iter().map(|g| g.group_name()).collect(), PrincipalKind::Group));
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(entities),
            }
        }
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), IamError> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:PutRolePolicy", &e))
    }

    async fn put_user_policy(&self, user: &str, name: &str, document: &str) -> Result<(), IamError> {
        self.client
            .put_user_policy()
            .user_name(user)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:PutUserPolicy", &e))
    }

    async fn delete_inline_policy(&self, kind: PrincipalKind, principal: &str, name: &str) -> Result<(), IamError> {
        let c = &self.client;
        let result = match kind {
            PrincipalKind::Role => c
                .delete_role_policy()
                .role_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DeleteRolePolicy", &e)),
            PrincipalKind::User => c
                .delete_user_policy()
                .user_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DeleteUserPolicy", &e)),
            PrincipalKind::Group => c
                .delete_group_policy()
                .group_name(principal)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DeleteGroupPolicy", &e)),
        };
        // Deleted by a retry or by someone else in the meantime: the goal is reached.
        not_found_is_none(result).map(|_| ())
    }

    async fn attached_policies(&self, kind: PrincipalKind, principal: &str) -> Result<Vec<String>, IamError> {
        let c = &self.client;
        let arns = |list: &[aws_sdk_iam::types::AttachedPolicy]| {
            list.iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect::<Vec<_>>()
        };
        let result = match kind {
            PrincipalKind::Role => c
                .list_attached_role_policies()
                .role_name(principal)
                .send()
                .await
                .map(|o| arns(o.attached_policies()))
                .map_err(|e| classify("iam:ListAttachedRolePolicies", &e)),
            PrincipalKind::User => c
                .list_attached_user_policies()
                .user_name(principal)
                .send()
                .await
                .map(|o| arns(o.attached_policies()))
                .map_err(|e| classify("iam:ListAttachedUserPolicies", &e)),
            PrincipalKind::Group => c
                .list_attached_group_policies()
                .group_name(principal)
                .send()
                .await
                .map(|o| arns(o.attached_policies()))
                .map_err(|e| classify("iam:ListAttachedGroupPolicies", &e)),
        };
        Ok(not_found_is_none(result)?.unwrap_or_default())
    }

    async fn detach_policy(&self, kind: PrincipalKind, principal: &str, arn: &str) -> Result<(), IamError> {
        let c = &self.client;
        let result = match kind {
            PrincipalKind::Role => c
                .detach_role_policy()
                .role_name(principal)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DetachRolePolicy", &e)),
            PrincipalKind::User => c
                .detach_user_policy()
                .user_name(principal)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DetachUserPolicy", &e)),
            PrincipalKind::Group => c
                .detach_group_policy()
                .group_name(principal)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("iam:DetachGroupPolicy", &e)),
        };
        not_found_is_none(result).map(|_| ())
    }

    async fn policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, IamError> {
        let result = self
            .client
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| classify("iam:ListPolicyVersions", &e));
        Ok(not_found_is_none(result)?
            .map(|o| {
                o.versions()
                    .iter()
                    .filter_map(|v| {
                        v.version_id().map(|id| PolicyVersion { id: id.to_owned(), is_default: v.is_default_version() })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn policy_version_document(&self, arn: &str, version: &str) -> Result<String, IamError> {
        let out = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| classify("iam:GetPolicyVersion", &e))?;
        out.policy_version().and_then(|v| v.document()).map(str::to_owned).ok_or_else(|| IamError {
            kind: IamErrorKind::NotFound,
            action: "iam:GetPolicyVersion".to_owned(),
            message: format!("{arn} {version} has no document"),
        })
    }

    async fn set_default_policy_version(&self, arn: &str, version: &str) -> Result<(), IamError> {
        self.client
            .set_default_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:SetDefaultPolicyVersion", &e))
    }

    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<(), IamError> {
        self.client
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:UpdateAssumeRolePolicy", &e))
    }

    async fn access_keys(&self, user: &str) -> Result<Vec<(String, bool)>, IamError> {
        let result =
            self.client.list_access_keys().user_name(user).send().await.map_err(|e| classify("iam:ListAccessKeys", &e));
        Ok(not_found_is_none(result)?
            .map(|o| {
                o.access_key_metadata()
                    .iter()
                    .filter_map(|k| {
                        k.access_key_id().map(|id| (id.to_owned(), k.status() == Some(&StatusType::Active)))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn deactivate_access_key(&self, user: &str, key: &str) -> Result<(), IamError> {
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(StatusType::Inactive)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:UpdateAccessKey", &e))
    }
}
