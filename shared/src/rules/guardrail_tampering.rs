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
        &["UpdateStack", "DeleteStack", "ExecuteChangeSet", "UpdateStackSet", "DeleteStackSet", "DeleteStackInstances"],
    ),
    ("logs.amazonaws.com", &["DeleteLogGroup", "PutRetentionPolicy", "DeleteSubscriptionFilter"]),
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
];

/// An attacker who can quietly change or delete the guard, or take on its roles, has switched it off.
pub struct GuardrailTampering;

impl Rule for GuardrailTampering {
    fn id(&self) -> &'static str {
        "guardrail-tampering"
    }

    fn description(&self) -> &'static str {
        "Someone other than trailguard's deployment roles changed, disabled or deleted trailguard's own functions, \
         rules, topic, bus, queues, logs, stacks, roles or policies, created or tagged a role or policy with one of \
         its names, or assumed one of its roles."
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
        let Some(params) = ctx.params else { return Vec::new() };
        let Some((key, value)) = NAME_KEYS
            .iter()
            .filter_map(|k| params.get(*k).and_then(Value::as_str).map(|v| (*k, v)))
            .find(|(_, v)| v.split(['/', ':']).any(|part| ctx.config.is_own_resource(part)))
        else {
            return Vec::new();
        };
        let record = ctx.record;
        let title = format!(
            "{} on trailguard's {} {value}",
            record.action(),
            key.trim_end_matches("Arn").trim_end_matches("Name")
        );
        let kind = record.event_source.split('.').next().unwrap_or("resource");
        let target = Target { kind: kind.to_owned(), name: Some(value.to_owned()), ..Target::default() };
        let mut verdict = Verdict::new(Severity::Critical, title, target);
        verdict.notes.push(format!("`{key}` = `{value}` matches trailguard's own resources"));
        verdict.remediation = ctx.contain_actor();
        vec![verdict]
    }
}
