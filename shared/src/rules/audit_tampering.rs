//! `audit-tampering`: stopping, deleting or narrowing CloudTrail, GuardDuty, Config, Security Hub or IAM
//! Access Analyzer; deleting other audit logs (VPC flow logs, DNS query logs, Bedrock invocation logs); leaving the
//! organisation.
//!
//! The rule judges what a call changed, not its name: calls that stop, delete or disconnect always narrow;
//! the others narrow only with some parameters, read per API in [`super::audit_requests`]. Calls whose request
//! alone cannot tell narrowing from widening are judged from the request, with "unknown" in the notes; the
//! rule never looks the current state up (rules never call AWS).

use serde_json::Value;

use super::audit_requests::{self as read, Check, Narrowing, Reading};
use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

use Check::{Always, Reads};
use Severity::{Critical, High, Medium};

const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";
const GUARDDUTY: &str = "guardduty.amazonaws.com";
const CONFIG: &str = "config.amazonaws.com";
const SECURITYHUB: &str = "securityhub.amazonaws.com";
const ANALYZER: &str = "access-analyzer.amazonaws.com";

/// `(event source, event name, severity, target kind, how it is judged)`, grouped by source.
const CALLS: &[(&str, &str, Severity, &str, Check)] = &[
    (
        CLOUDTRAIL,
        "StopLogging",
        Critical,
        "trail",
        Always("logging is stopped: nothing is recorded until it starts again"),
    ),
    (CLOUDTRAIL, "DeleteTrail", Critical, "trail", Always("the trail is deleted")),
    (CLOUDTRAIL, "UpdateTrail", High, "trail", Reads(read::update_trail)),
    (CLOUDTRAIL, "PutEventSelectors", High, "trail", Reads(read::put_event_selectors)),
    (CLOUDTRAIL, "PutInsightSelectors", Medium, "trail", Reads(read::put_insight_selectors)),
    (CLOUDTRAIL, "DeleteEventDataStore", Critical, "event-data-store", Always("the event data store is deleted")),
    (
        CLOUDTRAIL,
        "StopEventDataStoreIngestion",
        Critical,
        "event-data-store",
        Always("the event data store stops ingesting events"),
    ),
    (CLOUDTRAIL, "UpdateEventDataStore", High, "event-data-store", Reads(read::update_event_data_store)),
    (GUARDDUTY, "DeleteDetector", Critical, "detector", Always("the GuardDuty detector is deleted")),
    (GUARDDUTY, "UpdateDetector", High, "detector", Reads(read::update_detector)),
    (
        GUARDDUTY,
        "DisassociateFromMasterAccount",
        Critical,
        "detector",
        Always("the account leaves its GuardDuty administrator: findings no longer reach it"),
    ),
    (
        GUARDDUTY,
        "DisassociateFromAdministratorAccount",
        Critical,
        "detector",
        Always("the account leaves its GuardDuty administrator: findings no longer reach it"),
    ),
    (GUARDDUTY, "DeleteMembers", High, "detector", Always("member accounts are removed from GuardDuty")),
    (GUARDDUTY, "DisassociateMembers", High, "detector", Always("member accounts are disassociated from GuardDuty")),
    (GUARDDUTY, "StopMonitoringMembers", High, "detector", Always("GuardDuty stops monitoring member accounts")),
    (GUARDDUTY, "UpdateMemberDetectors", High, "detector", Reads(read::update_member_detectors)),
    (GUARDDUTY, "CreateFilter", High, "detector", Reads(read::create_filter)),
    (GUARDDUTY, "UpdateFilter", High, "detector", Reads(read::update_filter)),
    (GUARDDUTY, "CreateIPSet", High, "detector", Reads(read::ip_set)),
    (GUARDDUTY, "UpdateIPSet", High, "detector", Reads(read::ip_set)),
    (GUARDDUTY, "DeleteThreatIntelSet", High, "detector", Always("a threat intelligence list is deleted")),
    (GUARDDUTY, "UpdateOrganizationConfiguration", High, "detector", Reads(read::update_organization_configuration)),
    (
        GUARDDUTY,
        "DeletePublishingDestination",
        High,
        "detector",
        Always("findings are no longer exported to their publishing destination"),
    ),
    (CONFIG, "StopConfigurationRecorder", Critical, "config-recorder", Always("the configuration recorder is stopped")),
    (
        CONFIG,
        "DeleteConfigurationRecorder",
        Critical,
        "config-recorder",
        Always("the configuration recorder is deleted"),
    ),
    (CONFIG, "DeleteDeliveryChannel", Critical, "config-recorder", Always("the delivery channel is deleted")),
    (CONFIG, "PutConfigurationRecorder", Medium, "config-recorder", Reads(read::put_configuration_recorder)),
    (CONFIG, "DeleteConfigRule", High, "config-rule", Always("a Config rule is deleted")),
    (CONFIG, "DeleteConformancePack", High, "config-rule", Always("a conformance pack and its rules are deleted")),
    (CONFIG, "DeleteOrganizationConfigRule", High, "config-rule", Always("an organisation Config rule is deleted")),
    (
        CONFIG,
        "DeleteConfigurationAggregator",
        Medium,
        "config-aggregator",
        Always("a configuration aggregator is deleted"),
    ),
    (SECURITYHUB, "DisableSecurityHub", Critical, "security-hub", Always("Security Hub is disabled")),
    (SECURITYHUB, "BatchDisableStandards", High, "security-hub", Always("security standards are disabled")),
    (
        SECURITYHUB,
        "DisableImportFindingsForProduct",
        High,
        "security-hub",
        Always("findings of an integrated product are no longer imported"),
    ),
    (SECURITYHUB, "UpdateStandardsControl", High, "security-hub", Reads(read::update_standards_control)),
    (
        SECURITYHUB,
        "BatchUpdateStandardsControlAssociations",
        High,
        "security-hub",
        Reads(read::batch_update_control_associations),
    ),
    (SECURITYHUB, "CreateAutomationRule", High, "security-hub", Reads(read::create_automation_rule)),
    (SECURITYHUB, "BatchUpdateAutomationRules", High, "security-hub", Reads(read::batch_update_automation_rules)),
    (
        SECURITYHUB,
        "DisassociateFromAdministratorAccount",
        High,
        "security-hub",
        Always("the account leaves its Security Hub administrator"),
    ),
    (
        SECURITYHUB,
        "DisassociateFromMasterAccount",
        High,
        "security-hub",
        Always("the account leaves its Security Hub administrator"),
    ),
    (SECURITYHUB, "DeleteMembers", High, "security-hub", Always("member accounts are removed from Security Hub")),
    (SECURITYHUB, "DisassociateMembers", High, "security-hub", Always("member accounts are disassociated")),
    (ANALYZER, "DeleteAnalyzer", Critical, "analyzer", Always("the IAM Access Analyzer analyzer is deleted")),
    (ANALYZER, "CreateArchiveRule", High, "analyzer", Reads(read::archive_rule)),
    (ANALYZER, "UpdateArchiveRule", High, "analyzer", Reads(read::archive_rule)),
    // Other audit logs and the organisation's own controls (Stratus Red Team's defense-evasion techniques).
    (
        "organizations.amazonaws.com",
        "LeaveOrganization",
        Critical,
        "organization",
        Always("the account leaves its organisation: organisation trails, delegated GuardDuty and Security Hub, and SCPs stop applying"),
    ),
    ("ec2.amazonaws.com", "DeleteFlowLogs", High, "flow-logs", Always("VPC flow logs are deleted")),
    (
        "route53resolver.amazonaws.com",
        "DeleteResolverQueryLogConfig",
        High,
        "dns-query-logs",
        Always("a DNS query logging configuration is deleted"),
    ),
    (
        "route53resolver.amazonaws.com",
        "DisassociateResolverQueryLogConfig",
        High,
        "dns-query-logs",
        Always("DNS query logging is detached from a VPC"),
    ),
    (
        "bedrock.amazonaws.com",
        "DeleteModelInvocationLoggingConfiguration",
        Medium,
        "bedrock-logging",
        Always("Bedrock model invocation logging is deleted"),
    ),
];

/// Parameters that name the touched resource, in the order they are tried (camelCase and PascalCase alike).
const NAME_KEYS: &[&str] = &[
    "name",
    "trailName",
    "eventDataStore",
    "detectorId",
    "configurationRecorderName",
    "deliveryChannelName",
    "configRuleName",
    "conformancePackName",
    "organizationConfigRuleName",
    "configurationAggregatorName",
    "analyzerName",
    "standardsControlArn",
    "ruleName",
    "threatIntelSetId",
    "destinationId",
    "resolverQueryLogConfigId",
];

/// Attackers blind detection before they act: every one of these calls reduces what is recorded or alerted.
pub struct AuditTampering;

impl Rule for AuditTampering {
    fn id(&self) -> &'static str {
        "audit-tampering"
    }

    fn description(&self) -> &'static str {
        "Audit or threat detection was stopped, deleted or narrowed (CloudTrail, GuardDuty, AWS Config, \
         Security Hub, IAM Access Analyzer): a common first step before an attack."
    }

    fn response(&self) -> &'static str {
        "Restore the service (start logging, re-enable the detector or recorder, undo the narrowing) and revoke \
         the actor's session."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        let mut sources: Vec<&str> = CALLS.iter().map(|c| c.0).collect();
        sources.dedup();
        sources
            .into_iter()
            .map(|source| {
                let names: Vec<&str> = CALLS.iter().filter(|c| c.0 == source).map(|c| c.1).collect();
                Trigger::exact(source, &names)
            })
            .collect()
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let record = ctx.record;
        let Some(&(_, _, severity, kind, check)) =
            CALLS.iter().find(|c| c.0 == record.event_source && c.1 == record.event_name)
        else {
            return Vec::new();
        };
        if service_linked(ctx) {
            return Vec::new();
        }
        let narrowing = match check {
            Always(what) => Narrowing { severity, notes: vec![what.to_owned()], evidence: Vec::new() },
            Reads(reader) => {
                let empty = Value::Null;
                let reading = Reading { account: record.account() };
                match reader(ctx.params.unwrap_or(&empty), &reading) {
                    Some(narrowing) => narrowing,
                    None => return Vec::new(),
                }
            }
        };
        let resource = NAME_KEYS
            .iter()
            .find_map(|k| ctx.params.and_then(|p| read::get(p, k)).and_then(Value::as_str))
            .map(str::to_owned);
        let title = format!(
            "{} on {kind} {} in {}",
            record.action(),
            resource.as_deref().unwrap_or("(unnamed)"),
            record.aws_region.as_deref().unwrap_or("unknown region")
        );
        let target = Target { kind: kind.to_owned(), name: resource, ..Target::default() };
        let mut verdict = Verdict::new(narrowing.severity, title, target);
        verdict.notes = narrowing.notes;
        verdict.statements = narrowing.evidence;
        if let Some(invoker) = &ctx.actor.invoked_by {
            verdict.notes.push(format!("made through {invoker} on behalf of the actor"));
        }
        verdict.remediation = ctx.contain_actor();
        vec![verdict]
    }
}

/// AWS's own housekeeping: a service-linked role (path `/aws-service-role/`) acting. `invokedBy` alone does not
/// exempt: CloudFormation, StackSets and Control Tower act for a principal, who answers for what they do.
fn service_linked(ctx: &Context<'_>) -> bool {
    let actor = ctx.actor;
    actor.role_arn.as_deref().is_some_and(|arn| arn.contains(":role/aws-service-role/"))
        || actor.role_name.as_deref().is_some_and(|name| name.starts_with("AWSServiceRoleFor"))
}
