//! `audit-tampering`: stopping, deleting or narrowing CloudTrail, GuardDuty, Config, Security Hub or IAM
//! Access Analyzer.

use serde_json::Value;

use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

use Severity::{Critical, High, Medium};

/// `(event source, event name, severity, target kind)`. Calls that only sometimes blind (a GuardDuty filter
/// that may or may not archive) are refined in [`blinds`].
const CALLS: &[(&str, &str, Severity, &str)] = &[
    ("cloudtrail.amazonaws.com", "StopLogging", Critical, "trail"),
    ("cloudtrail.amazonaws.com", "DeleteTrail", Critical, "trail"),
    ("cloudtrail.amazonaws.com", "UpdateTrail", High, "trail"),
    ("cloudtrail.amazonaws.com", "PutEventSelectors", High, "trail"),
    ("cloudtrail.amazonaws.com", "PutInsightSelectors", Medium, "trail"),
    ("cloudtrail.amazonaws.com", "DeleteEventDataStore", Critical, "event-data-store"),
    ("cloudtrail.amazonaws.com", "StopEventDataStoreIngestion", Critical, "event-data-store"),
    ("cloudtrail.amazonaws.com", "UpdateEventDataStore", High, "event-data-store"),
    ("guardduty.amazonaws.com", "DeleteDetector", Critical, "detector"),
    ("guardduty.amazonaws.com", "UpdateDetector", Medium, "detector"),
    ("guardduty.amazonaws.com", "DisassociateFromMasterAccount", Critical, "detector"),
    ("guardduty.amazonaws.com", "DisassociateFromAdministratorAccount", Critical, "detector"),
    ("guardduty.amazonaws.com", "DeleteMembers", High, "detector"),
    ("guardduty.amazonaws.com", "DisassociateMembers", High, "detector"),
    ("guardduty.amazonaws.com", "StopMonitoringMembers", High, "detector"),
    ("guardduty.amazonaws.com", "CreateFilter", High, "detector"),
    ("guardduty.amazonaws.com", "UpdateFilter", High, "detector"),
    ("guardduty.amazonaws.com", "CreateIPSet", High, "detector"),
    ("guardduty.amazonaws.com", "UpdateIPSet", High, "detector"),
    ("guardduty.amazonaws.com", "DeletePublishingDestination", High, "detector"),
    ("config.amazonaws.com", "StopConfigurationRecorder", Critical, "config-recorder"),
    ("config.amazonaws.com", "DeleteConfigurationRecorder", Critical, "config-recorder"),
    ("config.amazonaws.com", "DeleteDeliveryChannel", Critical, "config-recorder"),
    ("config.amazonaws.com", "PutConfigurationRecorder", Medium, "config-recorder"),
    ("config.amazonaws.com", "DeleteConfigRule", High, "config-rule"),
    ("config.amazonaws.com", "DeleteConfigurationAggregator", Medium, "config-aggregator"),
    ("securityhub.amazonaws.com", "DisableSecurityHub", Critical, "security-hub"),
    ("securityhub.amazonaws.com", "BatchDisableStandards", High, "security-hub"),
    ("securityhub.amazonaws.com", "DisableImportFindingsForProduct", High, "security-hub"),
    ("securityhub.amazonaws.com", "UpdateStandardsControl", High, "security-hub"),
    ("securityhub.amazonaws.com", "DisassociateFromAdministratorAccount", High, "security-hub"),
    ("securityhub.amazonaws.com", "DisassociateFromMasterAccount", High, "security-hub"),
    ("securityhub.amazonaws.com", "DeleteMembers", High, "security-hub"),
    ("securityhub.amazonaws.com", "DisassociateMembers", High, "security-hub"),
    ("access-analyzer.amazonaws.com", "DeleteAnalyzer", Critical, "analyzer"),
    ("access-analyzer.amazonaws.com", "CreateArchiveRule", High, "analyzer"),
    ("access-analyzer.amazonaws.com", "UpdateArchiveRule", High, "analyzer"),
];

/// Parameters that name the touched resource, in the order they are tried.
const NAME_KEYS: &[&str] = &[
    "name",
    "trailName",
    "eventDataStore",
    "detectorId",
    "configurationRecorderName",
    "deliveryChannelName",
    "configRuleName",
    "configurationAggregatorName",
    "analyzerName",
    "standardsControlArn",
    "ruleName",
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
        "Restore the service (start logging, re-enable the detector or recorder) and revoke the actor's session."
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
        let Some(&(_, name, severity, kind)) =
            CALLS.iter().find(|c| c.0 == record.event_source && c.1 == record.event_name)
        else {
            return Vec::new();
        };
        let Some(severity) = blinds(name, ctx.params, severity) else { return Vec::new() };
        let resource = NAME_KEYS.iter().find_map(|k| ctx.param(k)).map(str::to_owned);
        let title = format!(
            "{} on {kind} {} in {}",
            record.action(),
            resource.as_deref().unwrap_or("(unnamed)"),
            record.aws_region.as_deref().unwrap_or("unknown region")
        );
        let target = Target { kind: kind.to_owned(), name: resource, ..Target::default() };
        let mut verdict = Verdict::new(severity, title, target);
        verdict.remediation = ctx.contain_actor();
        vec![verdict]
    }
}

/// Refines calls whose danger depends on their parameters; `None` when this call does not blind anything.
fn blinds(name: &str, params: Option<&Value>, severity: Severity) -> Option<Severity> {
    let param = |key: &str| params.and_then(|p| p.get(key));
    match name {
        // Disabling the detector is as bad as deleting it; other updates (publishing frequency) are minor.
        "UpdateDetector" => Some(if param("enable") == Some(&Value::Bool(false)) { Critical } else { severity }),
        // A filter blinds only when it archives findings automatically.
        "CreateFilter" | "UpdateFilter" => {
            (param("action").and_then(Value::as_str) == Some("ARCHIVE")).then_some(severity)
        }
        "UpdateStandardsControl" => {
            (param("controlStatus").and_then(Value::as_str) == Some("DISABLED")).then_some(severity)
        }
        _ => Some(severity),
    }
}
