//! `guardrail-tampering`: changes to trailguard itself.

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
        let exact = |arn: &str| config.own_resource_arns.iter().any(|own| own.eq_ignore_ascii_case(arn));
        if let Some(arn) = ctx.record.resource_arns().find(|arn| exact(arn)) {
            return Some(("resources", arn.to_owned()));
        }
        let params = ctx.params?;
        NAME_KEYS.iter().find_map(|key| {
            let values: Vec<&str> = match params.get(*key)? {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            values
                .into_iter()
                .find(|v| exact(v) || v.split(['/', ':']).any(|part| config.is_own_resource(part)))
                .map(|v| (*key, v.to_owned()))
        })
    }
}
