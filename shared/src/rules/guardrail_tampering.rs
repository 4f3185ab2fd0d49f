//! `guardrail-tampering`: changes to trailguard itself.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

/// Lambda's event names carry API-version suffixes (`UpdateFunctionCode20150331v2`), hence prefixes.
const LAMBDA_PREFIXES: &[&str] = &[
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "PutFunctionConcurrency",
    "DeleteFunctionConcurrency",
    "AddPermission",
    "RemovePermission",
    "PutFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
    "UpdateAlias",
    "DeleteAlias",
];

const CALLS: &[(&str, &[&str])] = &[
    (
        "events.amazonaws.com",
        &[
            "PutRule",
            "DeleteRule",
            "DisableRule",
            "PutTargets",
            "RemoveTargets",
            "DeleteEventBus",
            "PutPermission",
            "RemovePermission",
        ],
    ),
    (
        "sns.amazonaws.com",
        &[
            "DeleteTopic",
            "SetTopicAttributes",
            "Unsubscribe",
            "AddPermission",
            "RemovePermission",
            "SetSubscriptionAttributes",
        ],
    ),
    ("sqs.amazonaws.com", &["DeleteQueue", "PurgeQueue", "SetQueueAttributes", "RemovePermission"]),
    (
        "iam.amazonaws.com",
        &[
            "CreateRole",
            "DeleteRole",
            "UpdateRole",
            "UpdateAssumeRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "TagRole",
            "UntagRole",
            "CreatePolicy",
            "CreatePolicyVersion",
            "DeletePolicy",
            "DeletePolicyVersion",
            "SetDefaultPolicyVersion",
            "TagPolicy",
            "UntagPolicy",
        ],
    ),
    (
        "cloudformation.amazonaws.com",
        &[
            "UpdateStack",
            "DeleteStack",
            "ExecuteChangeSet",
            "UpdateStackSet",
            "DeleteStackSet",
            "DeleteStackInstances",
            "UpdateStackInstances",
        ],
    ),
    ("logs.amazonaws.com", &["DeleteLogGroup", "PutRetentionPolicy", "DeleteSubscriptionFilter"]),
    // Its keys: the alert topic's and environment's key, and the key that authenticates findings. A KMS record may
    // name the key by alias, id or ARN; its `resources` carry the key's ARN.
    (
        "kms.amazonaws.com",
        &["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation", "DeleteAlias", "UpdateAlias"],
    ),
    // Its state table (locks, once-an-hour pages) and the alarms that say it is failing.
    ("dynamodb.amazonaws.com", &["DeleteTable", "UpdateTimeToLive", "UpdateTable"]),
    ("monitoring.amazonaws.com", &["DeleteAlarms", "DisableAlarmActions", "PutMetricAlarm", "SetAlarmState"]),
    // The canaries' schedules: a stopped or retargeted canary leaves its path unproven (its alarm pages too).
    ("scheduler.amazonaws.com", &["UpdateSchedule", "DeleteSchedule", "DeleteScheduleGroup"]),
];

/// Parameters that name the touched resource.
const NAME_KEYS: &[&str] = &[
    "functionName",
    "name",
    "rule",
    "eventBusName",
    "topicArn",
    "subscriptionArn",
    "queueUrl",
    "roleName",
    "roleArn",
    "policyArn",
    "stackName",
    "changeSetName",
    "stackSetName",
    "logGroupName",
    // The revocation policy trailguard writes on roles: removing it would un-revoke sessions.
    "policyName",
    "keyId",
    "aliasName",
    "tableName",
    "alarmName",
    "alarmNames",
    // A statement in a resource policy trailguard owns (the default bus's organisation forwarding).
    "statementId",
];

/// An attacker who can quietly change or delete the guard, or take on its roles, has switched it off.
pub struct GuardrailTampering;

impl Rule for GuardrailTampering {
    fn id(&self) -> &'static str {
        "guardrail-tampering"
    }

    fn description(&self) -> &'static str {
        "Someone other than trailguard's deployment roles changed, disabled or deleted trailguard's own functions, \
         rules, topic, bus, queues, logs, keys, state table, alarms, stacks, roles or policies, created or tagged a \
         role or policy with one of its names, or assumed one of its roles."
    }

    fn response(&self) -> &'static str {
        "Verify the change was a planned deployment (allow-list the deploy role); otherwise revoke the actor's session and redeploy."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        let mut triggers = vec![
            Trigger::prefixed(Some("lambda.amazonaws.com"), LAMBDA_PREFIXES),
            // Assuming trailguard's role would make the caller's actions look like trailguard's own.
            Trigger::exact("sts.amazonaws.com", &["AssumeRole"]).reading(),
        ];
        triggers.extend(CALLS.iter().map(|(source, names)| Trigger::exact(source, names)));
        triggers
    }

    fn reads_params(&self) -> bool {
        false
    }

    /// Every verdict names one of trailguard's resources ([`GuardrailTampering::own_resource_touched`]): a value
    /// equal to one of its ARNs, or holding a part that one of its name patterns or role names matches. So the
    /// record holds that ARN, or the pattern's literal piece, or the role's name. Most `AssumeRole` calls (a hot
    /// trigger: CI and role chaining make many) name none of them.
    fn required_text(&self, config: &crate::config::Config) -> Option<Vec<String>> {
        let settings = &config.remediation;
        let own_roles = config.own_role_arns.iter().chain(&settings.sso_admin_role_arn);
        let role_names = own_roles.filter_map(|arn| crate::config::role_name_of_arn(arn));
        let member_roles = [settings.member_role_name.as_str(), settings.member_reader_role_name.as_str()];
        let arns = config.own_resource_arns.iter().map(String::as_str);
        let names = config.own_resources.iter().map(String::as_str).chain(role_names).chain(member_roles).chain(arns);
        names.map(crate::prefilter::required_piece).collect()
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        // The only exemption: the exact roles that deploy trailguard. Not `invokedBy` CloudFormation (anyone's
        // stack can touch anything) and not a name pattern (anyone who can create a role can choose its name).
        if ctx.config.is_deployer(ctx.actor) {
            return Vec::new();
        }
        let Some((key, value)) = self.own_resource_touched(ctx) else { return Vec::new() };
        let record = ctx.record;
        let title = format!(
            "{} on trailguard's {} {value}",
            record.action(),
            key.trim_end_matches("Arn").trim_end_matches("Name")
        );
        let kind = record.event_source.split('.').next().unwrap_or("resource");
        let target = Target { kind: kind.to_owned(), name: Some(value.to_owned()), ..Target::default() };
        let mut verdict = Verdict::new(Severity::Critical, title, target);
        verdict.notes.push(format!("`{key}` = `{value}` is one of trailguard's own resources"));
        verdict.remediation = ctx.contain_actor();
        vec![verdict]
    }
}

impl GuardrailTampering {
    /// The first of trailguard's resources the event touches, with where it was named: a record `resources` ARN
    /// or a parameter equal to one of the deployed resources' exact ARNs, or a name parameter (a string or a list
    /// of strings) matching trailguard's resource names.
    fn own_resource_touched(&self, ctx: &Context<'_>) -> Option<(&'static str, String)> {
        let config = ctx.config;
        // What is read below can name trailguard only where it holds the rule's required text: most calls
        // (`AssumeRole` of CI and chained roles) are told apart by one search of their request and resources.
        if let Some(required) = ctx.required {
            let request = ctx.record.request_parameters.as_deref().map(RawValue::get);
            if !request.into_iter().chain(ctx.record.resource_arns()).any(|text| required.may_be_in(text)) {
                return None;
            }
        }
        let exact = |arn: &str| config.own_resource_arns.iter().any(|own| own.eq_ignore_ascii_case(arn));
        if let Some(arn) = ctx.record.resource_arns().find(|arn| exact(arn)) {
            return Some(("resources", arn.to_owned()));
        }
        let raw = ctx.record.request_parameters.as_deref()?;
        let named = serde_json::from_str::<NamedParams>(raw.get()).ok()?;
        NAME_KEYS.iter().zip(&named.0).find_map(|(key, value)| {
            // Only a name parameter's own value is parsed, and only when the request has one and it may hold the
            // required text (an agent's session tag `trailguard:agent` puts it in the request, not in a name). A
            // name is almost always one string without escapes, read in place; anything else through the tree.
            let raw = value.as_ref()?.get();
            if ctx.required.is_some_and(|required| !required.may_be_in(raw)) {
                return None;
            }
            let tree: Value;
            let values: Vec<&str> = match serde_json::from_str::<&str>(raw) {
                Ok(name) => vec![name],
                Err(_) => {
                    tree = serde_json::from_str(raw).ok()?;
                    match &tree {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    }
                }
            };
            values
                .into_iter()
                .find(|v| exact(v) || parts(v).any(|part| config.is_own_resource(part)))
                .map(|v| (*key, v.to_owned()))
        })
    }
}

/// The `/`- and `:`-separated parts of a name or ARN, found many bytes at a time.
fn parts(name: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr2_iter(b'/', b':', name.as_bytes()).chain([name.len()]).map(move |end| {
        let part = name.get(start..end).unwrap_or_default();
        start = end + 1;
        part
    })
}

/// The raw values of a request's [`NAME_KEYS`], by position, borrowed from the record: the rule reads these few
/// keys, so the request is not built into a `Value` tree (`AssumeRole` alone reaches this rule often). As in the
/// tree, a repeated key's last value counts; a request that is not an object has none.
struct NamedParams<'a>([Option<&'a RawValue>; NAME_KEYS.len()]);

impl<'de: 'a, 'a> Deserialize<'de> for NamedParams<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for Keys<'a> {
            type Value = NamedParams<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut values = [None; NAME_KEYS.len()];
                while let Some(NameKey(at)) = map.next_key::<NameKey>()? {
                    match at.and_then(|at| values.get_mut(at)) {
                        Some(slot) => *slot = Some(map.next_value::<&'de RawValue>()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(NamedParams(values))
            }
        }

        deserializer.deserialize_map(Keys(std::marker::PhantomData))
    }
}

/// A request key, read as its position in [`NAME_KEYS`] (`None` for any other key) without copying it.
struct NameKey(Option<usize>);

impl<'de> Deserialize<'de> for NameKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Position;

        impl Visitor<'_> for Position {
            type Value = NameKey;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<NameKey, E> {
                Ok(NameKey(NAME_KEYS.iter().position(|k| *k == key)))
            }
        }

        deserializer.deserialize_str(Position)
    }
}

#[cfg(test)]
mod tests {
    use super::parts;
    use crate::event::input::parse_record;
    use crate::{Config, Engine};

    /// Whether `guardrail-tampering` flags a call by a CI session with this request and these resources.
    fn flags(config: &Config, call: (&str, &str), request: &str, resources: &str) -> bool {
        let (source, name) = call;
        let record = parse_record(&format!(
            r#"{{"eventSource":"{source}","eventName":"{name}","eventTime":"2026-11-30T10:00:00Z",
               "recipientAccountId":"123456789012","requestParameters":{request},"resources":{resources},
               "userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:build","accountId":"123456789012",
               "accessKeyId":"ASIAEXAMPLE","arn":"arn:aws:sts::123456789012:assumed-role/ci-runner/build"}}}}"#
        ))
        .unwrap();
        let findings = Engine::new(config.clone()).evaluate_offline(&record).findings;
        findings.iter().any(|f| f.rule == "guardrail-tampering")
    }

    #[test]
    fn the_required_text_search_hides_no_spelling_of_trailguards_names() {
        let mut config = Config::default();
        config.own_resources.push("kelvin-*".to_owned());
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        config.own_resource_arns.push(key.to_owned());
        let function = ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2");
        let resources = format!(r#"[{{"ARN":"{key}"}}]"#);
        // KMS names the key in `resources` by ARN, whatever alias the request used.
        assert!(flags(&config, ("kms.amazonaws.com", "DisableKey"), r#"{"keyId":"alias/orders"}"#, &resources));
        assert!(!flags(&config, ("kms.amazonaws.com", "DisableKey"), r#"{"keyId":"alias/orders"}"#, "[]"));
        for (request, resources) in [
            (r#"{"functionName":"trailguard-detect"}"#, "[]"),
            (r#"{"functionName":"TRAILGUARD-DETECT"}"#, "[]"),
            (r#"{"functionName":"arn:aws:lambda:us-east-1:123456789012:function:trailguard-detect"}"#, "[]"),
            // An escape spells the name: the raw text does not hold it, its value does.
            (r#"{"functionName":"\u0074railguard-detect"}"#, "[]"),
            (r#"{"functionName":"arn:aws:lambda:us-east-1:123456789012:function:trailguard\/x"}"#, "[]"),
            // The Kelvin sign folds to `k` when case is ignored.
            ("{\"functionName\":\"\u{212A}elvin-x\"}", "[]"),
            (r#"{"functionName":"orders-api","roleName":"trailguard-member"}"#, "[]"),
        ] {
            assert!(flags(&config, function, request, resources), "{request} {resources}");
        }
        for (request, resources) in [
            (r#"{"functionName":"orders-api"}"#, "[]"),
            (r#"{"functionName":"\u006frders-api"}"#, "[]"),
            (r#"{"description":"trailguard-detect","functionName":"orders-api"}"#, "[]"),
            ("{\"functionName\":\"\u{212A}ilo-x\"}", "[]"),
        ] {
            assert!(!flags(&config, function, request, resources), "{request} {resources}");
        }
    }

    #[test]
    fn parts_are_what_splitting_at_slashes_and_colons_gives() {
        for name in ["", "trailguard", "arn:aws:iam::123456789012:role/path/trailguard-x", "/a/", "::", "a:b/c", "é:ü/"]
        {
            let expected: Vec<&str> = name.split(['/', ':']).collect();
            assert_eq!(parts(name).collect::<Vec<_>>(), expected, "{name}");
        }
    }
}
