//! CloudTrail records in their real format, wrapped in EventBridge events as the default bus delivers them.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::moto::HOME_ACCOUNT;

/// A time `ago` before now, as CloudTrail writes it. Events are made recent: remediation treats a finding older
/// than its freshness window as stale.
pub fn ago(ago: Duration) -> String {
    (OffsetDateTime::now_utc() - ago).replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

/// An AI agent's session of a role (recognised by its session name `agent-*`).
pub fn session(account: &str, role: &str, role_id: &str, session: &str) -> Value {
    json!({
        "type": "AssumedRole",
        "principalId": format!("{role_id}:{session}"),
        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
        "accountId": account,
        "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": format!("arn:aws:iam::{account}:role/{role}"),
                              "accountId": account, "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": ago(Duration::minutes(10)), "mfaAuthenticated": "false"}
        }
    })
}

/// An IAM user's call signed with its long-term key `key`.
pub fn iam_user(name: &str, key: &str) -> Value {
    json!({"type": "IAMUser", "principalId": "AIDAQNZGKWTB5EXAMPLE", "arn": format!("arn:aws:iam::{HOME_ACCOUNT}:user/{name}"),
           "accountId": HOME_ACCOUNT, "accessKeyId": key, "userName": name})
}

/// The root user signing in.
pub fn root(account: &str) -> Value {
    json!({"type": "Root", "principalId": account, "arn": format!("arn:aws:iam::{account}:root"), "accountId": account})
}

/// An API call recorded by CloudTrail, inside the EventBridge event that carries it.
pub fn api_call(
    identity: Value,
    source: &str,
    name: &str,
    params: Value,
    response: Value,
    account: &str,
    event_id: &str,
) -> Value {
    let detail = json!({
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": ago(Duration::minutes(1)),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0",
        "requestParameters": params,
        "responseElements": response,
        "requestID": format!("req-{event_id}"),
        "eventID": event_id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    });
    json!({
        "version": "0", "id": format!("eb-{event_id}"), "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", source.split('.').next().unwrap_or("iam")), "account": account,
        "time": ago(Duration::minutes(1)), "region": "us-east-1", "resources": [], "detail": detail
    })
}

/// An inline policy put on a role in the home region (`PutRolePolicy`: the document arrives as a JSON string).
pub fn put_role_policy(
    identity: Value,
    account: &str,
    role: &str,
    name: &str,
    document: &Value,
    event_id: &str,
) -> Value {
    let params = json!({"roleName": role, "policyName": name, "policyDocument": document.to_string()});
    api_call(identity, "iam.amazonaws.com", "PutRolePolicy", params, Value::Null, account, event_id)
}

/// A console sign-in.
pub fn console_login(identity: Value, account: &str, event_id: &str, mfa: bool) -> Value {
    let mut event = api_call(
        identity,
        "signin.amazonaws.com",
        "ConsoleLogin",
        Value::Null,
        json!({"ConsoleLogin": "Success"}),
        account,
        event_id,
    );
    event["detail-type"] = json!("AWS Console Sign In via CloudTrail");
    event["source"] = json!("aws.signin");
    event["detail"]["eventType"] = json!("AwsConsoleSignIn");
    event["detail"]["additionalEventData"] = json!({"LoginTo": "https://console.aws.amazon.com/console/home",
        "MobileVersion": "No", "MFAUsed": if mfa { "Yes" } else { "No" }});
    event
}

/// The identity of a session issued by [`assume`] (not recognisable by any name: only the registry knows it).
pub fn issued_identity(role: &str, role_id: &str, name: &str, key: &str) -> Value {
    let mut identity = session(HOME_ACCOUNT, role, role_id, name);
    identity["accessKeyId"] = json!(key);
    identity
}

/// `AssumeRole` by `caller` into `role`, issuing `key`, with session `tags` (transitive ones too), expiring at
/// `expires` (STS's own form).
#[allow(clippy::too_many_arguments)] // A CloudTrail record has that many parts.
pub fn assume(
    caller: Value,
    role: &str,
    role_id: &str,
    name: &str,
    key: &str,
    tags: &[(&str, &str)],
    expires: &str,
    id: &str,
) -> Value {
    let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
    let keys: Vec<&Value> = tags.iter().map(|t| &t["key"]).collect();
    let mut event = api_call(
        caller,
        "sts.amazonaws.com",
        "AssumeRole",
        json!({"roleArn": format!("arn:aws:iam::{HOME_ACCOUNT}:role/{role}"), "roleSessionName": name,
               "tags": tags, "transitiveTagKeys": keys}),
        json!({"credentials": {"accessKeyId": key, "sessionToken": "x", "expiration": expires},
               "assumedRoleUser": {"assumedRoleId": format!("{role_id}:{name}"),
                                   "arn": format!("arn:aws:sts::{HOME_ACCOUNT}:assumed-role/{role}/{name}")}}),
        HOME_ACCOUNT,
        id,
    );
    event["detail"]["readOnly"] = json!(true);
    event
}

/// An hour from now, as STS writes `expiration` in CloudTrail (`Nov 29, 2026, 5:16:19 PM`).
pub fn sts_time(offset: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + offset;
    let format = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    at.format(&format).unwrap()
}
