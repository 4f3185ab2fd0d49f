//! The CloudTrail record, as CloudTrail writes it.
//!
//! Only the fields trailguard reads are typed; every other field is ignored. Almost everything is optional,
//! because CloudTrail leaves fields out (no `sessionContext` for long-term keys, no `errorCode` on success, no
//! `userIdentity.arn` for some AWS services). `requestParameters` and `responseElements` are kept as raw JSON and
//! read only when a rule needs them, since most events never need them.
//! Field reference: <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html>.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// One CloudTrail event record.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailRecord {
    /// Who made the call; absent only in malformed or very unusual records.
    #[serde(default, deserialize_with = "object")]
    pub user_identity: Option<UserIdentity>,
    /// When the call completed, in UTC (`2026-11-27T10:00:00Z`).
    #[serde(default)]
    pub event_time: Option<String>,
    /// The service endpoint, such as `iam.amazonaws.com`.
    pub event_source: String,
    /// The API action, such as `AttachRolePolicy`.
    pub event_name: String,
    /// The region the call was made to (IAM, STS global endpoint and sign-in record `us-east-1`).
    #[serde(default)]
    pub aws_region: Option<String>,
    /// The caller's address, or the service name when an AWS service called.
    #[serde(default, rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    /// The caller's user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Present when the call failed: the call changed nothing.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The error's message, when there is one.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The request's parameters, raw.
    #[serde(default)]
    pub request_parameters: Option<Box<RawValue>>,
    /// The response's elements, raw.
    #[serde(default)]
    pub response_elements: Option<Box<RawValue>>,
    /// Extra data some events carry (console sign-in: `MFAUsed`, `LoginTo`).
    #[serde(default)]
    pub additional_event_data: Option<Box<RawValue>>,
    /// CloudTrail's id for the event; the same event delivered twice has the same id.
    #[serde(default, rename = "eventID")]
    pub event_id: Option<String>,
    /// `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleAction`, `AwsConsoleSignIn`, ...
    #[serde(default)]
    pub event_type: Option<String>,
    /// Whether the call only read.
    #[serde(default, deserialize_with = "loose_bool")]
    pub read_only: Option<bool>,
    /// The account that received the event.
    #[serde(default)]
    pub recipient_account_id: Option<String>,
    /// The resources CloudTrail says the call touched (`{"ARN": ..., "accountId": ..., "type": ...}`); KMS, for
    /// one, names the key here by ARN whatever alias or id the request used.
    #[serde(default)]
    pub resources: Option<Vec<ResourceRef>>,
    /// The connection's TLS details, raw (read only for STS's endpoint: [`CloudTrailRecord::host_header`]).
    #[serde(default)]
    pub tls_details: Option<Box<RawValue>>,
    /// Whether the object holds a key of the wrappings a JSON line may be instead of a record (`Records` of a log
    /// file, `detail`/`detail-type` of an EventBridge event), however spelt (serde compares keys unescaped): such
    /// a line is read again as a possible wrapping. Never written out.
    #[serde(
        default,
        rename = "Records",
        alias = "detail",
        alias = "detail-type",
        deserialize_with = "seen",
        skip_serializing
    )]
    pub(crate) wrapping_key: bool,
}

/// A key that is present, whatever its value (`null` included).
fn seen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// One entry of a record's `resources`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ResourceRef {
    /// The resource's ARN.
    #[serde(default, rename = "ARN", alias = "arn")]
    pub arn: Option<String>,
}

/// The `userIdentity` block.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, `FederatedUser`, `AWSService`, `AWSAccount`, `IdentityCenterUser`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For an assumed role, `<role id>:<session name>`: the value IAM compares with `aws:userid`.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The principal's ARN.
    #[serde(default)]
    pub arn: Option<String>,
    /// The principal's account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The access key used to sign the call.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// For IAM users and root sign-ins, the name.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The AWS service that made the call on the principal's behalf, such as `cloudformation.amazonaws.com`.
    #[serde(default)]
    pub invoked_by: Option<String>,
    /// Temporary-credential details.
    #[serde(default, deserialize_with = "object")]
    pub session_context: Option<SessionContext>,
}

/// The `userIdentity.sessionContext` block.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The role or user that issued the session.
    #[serde(default, deserialize_with = "object")]
    pub session_issuer: Option<SessionIssuer>,
    /// Creation time and MFA.
    #[serde(default, deserialize_with = "object")]
    pub attributes: Option<SessionAttributes>,
    /// Set by the first `AssumeRole` of a chain; survives chaining and cannot be changed by the session.
    #[serde(default)]
    pub source_identity: Option<String>,
    /// Present (`"1.0"`, `"2.0"`) when the credentials were delivered to an EC2 instance through its instance
    /// metadata service: an instance profile, whose credentials rotate under the same session name.
    #[serde(default)]
    pub ec2_role_delivery: Option<String>,
}

/// The `sessionContext.sessionIssuer` block.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// `Role`, `IAMUser` or `Root`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The role's unique id (`AROA...`).
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The issuing role's ARN, with its path.
    #[serde(default)]
    pub arn: Option<String>,
    /// The issuing role's account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The issuing role's name.
    #[serde(default)]
    pub user_name: Option<String>,
}

/// The `sessionContext.attributes` block.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the session's credentials were issued.
    #[serde(default)]
    pub creation_date: Option<String>,
    /// Whether the session was created with MFA (CloudTrail writes `"true"` / `"false"` as strings).
    #[serde(default, deserialize_with = "loose_bool")]
    pub mfa_authenticated: Option<bool>,
}

impl CloudTrailRecord {
    /// The identity block, or an empty one.
    pub fn identity(&self) -> &UserIdentity {
        static EMPTY: UserIdentity = UserIdentity {
            kind: None,
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            invoked_by: None,
            session_context: None,
        };
        self.user_identity.as_ref().unwrap_or(&EMPTY)
    }

    /// The account the event belongs to: the recipient account, else the caller's.
    pub fn account(&self) -> Option<&str> {
        self.recipient_account_id.as_deref().or(self.identity().account_id.as_deref())
    }

    /// Whether the call failed. API calls carry `errorCode`; console sign-ins record
    /// `responseElements.ConsoleLogin = "Failure"` instead.
    pub fn failed(&self) -> bool {
        self.error_code.is_some()
            || (self.event_name == "ConsoleLogin"
                && self.response().and_then(|r| r.get("ConsoleLogin").cloned()) == Some(Value::from("Failure")))
    }

    /// Whether a failed call was refused for authorization or authentication: `AccessDenied*`,
    /// `UnauthorizedOperation` (EC2, also as `Client.UnauthorizedOperation`), `AuthorizationError` (SNS), the
    /// signature and token errors, or a failed console sign-in (which carries no `errorCode`). A call that failed
    /// for another reason (not found, validation, conflict, throttling) is not refused.
    pub fn refused(&self) -> bool {
        const REFUSALS: &[&str] = &[
            "UnauthorizedOperation",
            "AuthorizationError",
            "AuthFailure",
            "UnauthorizedAccess",
            "UnauthorizedException",
            "NotAuthorized",
            "NotAuthorizedException",
            "Forbidden",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
            "IncompleteSignature",
            "MissingAuthenticationToken",
            "ExpiredToken",
            "ExpiredTokenException",
        ];
        match self.error_code.as_deref() {
            Some(code) => {
                let code = code.strip_prefix("Client.").unwrap_or(code);
                code.starts_with("AccessDenied") || REFUSALS.contains(&code)
            }
            None => self.failed(),
        }
    }

    /// Whether AWS itself generated the event (not a call by a principal).
    pub fn is_aws_service_event(&self) -> bool {
        self.event_type.as_deref() == Some("AwsServiceEvent")
    }

    /// The ARNs in the record's `resources`.
    pub fn resource_arns(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().flatten().filter_map(|r| r.arn.as_deref())
    }

    /// `requestParameters`, parsed: `Ok(None)` when absent or null, `Err` when present but unreadable (too
    /// deeply nested for the parser, for instance), so that the caller can say so.
    pub fn params(&self) -> Result<Option<Value>, serde_json::Error> {
        match self.request_parameters.as_deref() {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Value>(raw.get()).map(|v| (!v.is_null()).then_some(v)),
        }
    }

    /// `responseElements`, parsed.
    pub fn response(&self) -> Option<Value> {
        parse_raw(self.response_elements.as_deref())
    }

    /// `additionalEventData`, parsed.
    pub fn additional_data(&self) -> Option<Value> {
        parse_raw(self.additional_event_data.as_deref())
    }

    /// The host the client asked for (`tlsDetails.clientProvidedHostHeader`), when the record has it.
    pub fn host_header(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Tls {
            #[serde(rename = "clientProvidedHostHeader")]
            host: Option<String>,
        }
        serde_json::from_str::<Tls>(self.tls_details.as_ref()?.get()).ok()?.host
    }

    /// `service:EventName`, where the service is the first label of `eventSource` (`iam:AttachRolePolicy`).
    pub fn action(&self) -> String {
        let service = self.event_source.split('.').next().unwrap_or_default();
        [service, self.event_name.as_str()].join(":")
    }
}

fn parse_raw(raw: Option<&RawValue>) -> Option<Value> {
    let value: Value = serde_json::from_str(raw?.get()).ok()?;
    (!value.is_null()).then_some(value)
}

/// A block that must be a JSON object (or null). serde would otherwise also accept an array, read by position,
/// and a malformed `userIdentity: []` would pass as an empty identity instead of an error naming the field.
fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOnly<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object or null")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }

        fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    deserializer.deserialize_option(ObjectOnly(std::marker::PhantomData))
}

/// CloudTrail writes some booleans as strings (`"mfaAuthenticated": "false"`); accept both spellings. A visitor,
/// not an untagged enum: the enum buffers the value and formats an error for every string it meets (every
/// session's `mfaAuthenticated`).
fn loose_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    struct Loose;

    impl<'de> serde::de::Visitor<'de> for Loose {
        type Value = Option<bool>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean, or a string that spells one")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(self)
        }

        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok(Some(b))
        }

        fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Self::Value, E> {
            match t {
                _ if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("yes") => Ok(Some(true)),
                _ if t.eq_ignore_ascii_case("false") || t.eq_ignore_ascii_case("no") => Ok(Some(false)),
                _ => Err(E::custom(format!("expected a boolean, found `{t}`"))),
            }
        }
    }

    deserializer.deserialize_option(Loose)
}
