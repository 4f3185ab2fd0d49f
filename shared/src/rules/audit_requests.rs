//! What an audit or detection call's request did: for `audit-tampering`, one reader per API.
//!
//! Each reader looks only at `requestParameters` as CloudTrail logs them and says what the call narrowed, with
//! the parameters that did it, or `None` when it narrowed nothing (turning data events or a GuardDuty feature
//! *on* is not tampering). Some calls replace a whole configuration or may leave out the field that decides
//! (`UpdateFilter` without `action`, `UpdateIPSet` without `activate`): the request alone cannot always tell,
//! and the reader says "unknown" in its note rather than looking the current state up (rules never call AWS).
//!
//! Spelling: most services log camelCase parameters, Security Hub logs PascalCase (`ControlStatus`), and
//! CloudTrail writes some booleans as strings. Keys are therefore looked up ignoring case, and booleans read
//! in either form.
//!
//! "Broad" suppression (a GuardDuty filter that archives, an Access Analyzer archive rule, a Security Hub
//! automation rule that suppresses or resolves): the filter would match findings of any resource or any
//! account. It is narrow only when an equality test names the resources it applies to (or, for GuardDuty, the
//! remote party; for Access Analyzer, the outside principal or account). A finding type, severity, product or
//! account alone leaves it broad.

use serde_json::{json, Value};

use crate::finding::Severity;
use Severity::{Critical, High, Low, Medium};

/// What one call narrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Narrowing {
    /// How urgent.
    pub severity: Severity,
    /// What was narrowed, one sentence each.
    pub notes: Vec<String>,
    /// The parameters that did it, as logged.
    pub evidence: Vec<Value>,
}

impl Narrowing {
    /// Nothing narrowed yet: each [`Narrowing::add`] raises the severity to its own.
    fn new() -> Narrowing {
        Narrowing { severity: Severity::Info, notes: Vec::new(), evidence: Vec::new() }
    }

    fn add(&mut self, severity: Severity, note: impl Into<String>, evidence: Value) {
        self.severity = self.severity.max(severity);
        self.notes.push(note.into());
        if !evidence.is_null() {
            self.evidence.push(evidence);
        }
    }

    fn found(self) -> Option<Narrowing> {
        (!self.notes.is_empty()).then_some(self)
    }
}

/// How a call is judged.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// The call stops, deletes or disconnects: always narrowing, at the table's severity.
    Always(&'static str),
    /// The call narrows only with some parameters: read by this function.
    Reads(fn(&Value, &Reading<'_>) -> Option<Narrowing>),
}

/// What a reader knows besides the parameters.
pub struct Reading<'a> {
    /// The account the event belongs to.
    pub account: Option<&'a str>,
}

/// A parameter, looked up ignoring case (Security Hub logs PascalCase, most services camelCase).
pub fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let map = value.as_object()?;
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A nested parameter, by path.
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| get(v, key))
}

/// A boolean written as JSON or as a string.
fn boolean(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

fn is(value: Option<&Value>, wanted: &str) -> bool {
    text(value).is_some_and(|t| t.eq_ignore_ascii_case(wanted))
}

fn list(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn pinned(values: &[&str]) -> bool {
    !values.is_empty() && values.iter().all(|v| !v.trim().is_empty() && !v.contains('*'))
}

// CloudTrail

/// `UpdateTrail`: scope turned off, validation off, CloudWatch Logs delivery removed, logs or key sent elsewhere.
/// Adding KMS, SNS or CloudWatch Logs delivery narrows nothing.
pub fn update_trail(p: &Value, r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    let off = |key: &str| boolean(get(p, key)) == Some(false);
    if off("isMultiRegionTrail") {
        n.add(
            High,
            "the trail no longer records other regions (`isMultiRegionTrail` false)",
            json!({"isMultiRegionTrail": false}),
        );
    }
    if off("includeGlobalServiceEvents") {
        n.add(
            High,
            "the trail no longer records global service events: IAM, STS and sign-in (`includeGlobalServiceEvents` false)",
            json!({"includeGlobalServiceEvents": false}),
        );
    }
    if off("isOrganizationTrail") {
        n.add(
            High,
            "the trail no longer records the organisation's accounts (`isOrganizationTrail` false)",
            json!({"isOrganizationTrail": false}),
        );
    }
    if off("enableLogFileValidation") {
        n.add(
            Medium,
            "log file validation is off: changes to delivered logs can no longer be proved (`enableLogFileValidation` false)",
            json!({"enableLogFileValidation": false}),
        );
    }
    for key in ["cloudWatchLogsLogGroupArn", "cloudWatchLogsRoleArn"] {
        if text(get(p, key)).is_some_and(|v| v.trim().is_empty()) {
            n.add(
                High,
                format!("CloudWatch Logs delivery is removed (`{key}` empty): metric filters and CIS alarms go quiet"),
                json!({ key: "" }),
            );
            break;
        }
    }
    if let Some(bucket) = text(get(p, "s3BucketName")) {
        n.add(
            High,
            format!(
                "log files now go to bucket `{bucket}`; the request alone cannot tell whether that bucket is another \
                 one or whose it is (unknown): confirm it is yours"
            ),
            json!({"s3BucketName": bucket}),
        );
    }
    if let Some(key) = text(get(p, "kmsKeyId")) {
        if let Some(owner) = arn_account(key).filter(|owner| Some(*owner) != r.account) {
            n.add(High, format!("log files are now encrypted with a key of account {owner}"), json!({"kmsKeyId": key}));
        }
    }
    n.found()
}

fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.strip_prefix("arn:")?.split(':').nth(3)?;
    (!account.is_empty()).then_some(account)
}

/// What a set of event selectors records of management events.
#[derive(Debug, Default)]
struct Management {
    included: bool,
    reads: bool,
    writes: bool,
    /// Sources excluded by every management selector (or the only sources included).
    excluded: Vec<String>,
    only: Vec<String>,
}

/// `PutEventSelectors` (and `UpdateEventDataStore`): the new selectors replace all of the old ones, so the request
/// says exactly what will be recorded of management events. Data events added or removed narrow nothing here.
pub fn put_event_selectors(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let management = if let Some(advanced) = get(p, "advancedEventSelectors").filter(|v| v.is_array()) {
        advanced_management(list(Some(advanced)))
    } else if let Some(basic) = get(p, "eventSelectors").filter(|v| v.is_array()) {
        basic_management(list(Some(basic)))
    } else {
        return None;
    };
    let selectors = get(p, "advancedEventSelectors").or_else(|| get(p, "eventSelectors")).cloned().unwrap_or_default();
    let mut n = Narrowing::new();
    if !management.included {
        n.add(High, "management events are no longer recorded: no selector includes them", selectors);
        return n.found();
    }
    if !management.writes {
        n.add(High, "only read-only management events are recorded: every change goes unrecorded", selectors.clone());
    } else if !management.reads {
        n.add(
            Medium,
            "only write management events are recorded: reads (reconnaissance) go unrecorded",
            selectors.clone(),
        );
    }
    if !management.excluded.is_empty() {
        let sources = management.excluded.join(", ");
        n.add(Medium, format!("management events of {sources} are excluded"), json!({"excluded": management.excluded}));
    }
    if !management.only.is_empty() {
        let sources = management.only.join(", ");
        n.add(High, format!("management events are recorded only for {sources}"), json!({"only": management.only}));
    }
    n.found()
}

fn basic_management(selectors: &[Value]) -> Management {
    let mut m = Management::default();
    let mut excluded: Option<Vec<String>> = None;
    for selector in selectors {
        // Both default to recording: `IncludeManagementEvents` true, `ReadWriteType` All.
        if boolean(get(selector, "includeManagementEvents")) == Some(false) {
            continue;
        }
        m.included = true;
        match text(get(selector, "readWriteType")) {
            Some(t) if t.eq_ignore_ascii_case("ReadOnly") => m.reads = true,
            Some(t) if t.eq_ignore_ascii_case("WriteOnly") => m.writes = true,
            _ => (m.reads, m.writes) = (true, true),
        }
        let these: Vec<String> =
            strings(get(selector, "excludeManagementEventSources")).into_iter().map(str::to_owned).collect();
        excluded = Some(match excluded {
            None => these,
            Some(before) => before.into_iter().filter(|s| these.contains(s)).collect(),
        });
    }
    m.excluded = excluded.unwrap_or_default();
    m
}

fn advanced_management(selectors: &[Value]) -> Management {
    let mut m = Management::default();
    let mut excluded: Option<Vec<String>> = None;
    let mut only: Option<Vec<String>> = Some(Vec::new());
    for selector in selectors {
        let fields = list(get(selector, "fieldSelectors"));
        let field = |name: &str| fields.iter().find(|f| is(get(f, "field"), name));
        let management = field("eventCategory")
            .is_some_and(|f| strings(get(f, "equals")).iter().any(|v| v.eq_ignore_ascii_case("Management")));
        if !management {
            continue;
        }
        m.included = true;
        match field("readOnly").map(|f| strings(get(f, "equals"))) {
            Some(v) if v == ["true"] => m.reads = true,
            Some(v) if v == ["false"] => m.writes = true,
            _ => (m.reads, m.writes) = (true, true),
        }
        let source = field("eventSource");
        let these: Vec<String> =
            source.map(|f| strings(get(f, "notEquals"))).unwrap_or_default().into_iter().map(str::to_owned).collect();
        excluded = Some(match excluded {
            None => these,
            Some(before) => before.into_iter().filter(|s| these.contains(s)).collect(),
        });
        let equals = source.map(|f| strings(get(f, "equals"))).unwrap_or_default();
        only = match (only, equals.is_empty()) {
            // One selector without a source limit records every source.
            (_, true) | (None, _) => None,
            (Some(mut before), false) => {
                before.extend(equals.into_iter().map(str::to_owned));
                Some(before)
            }
        };
    }
    m.excluded = excluded.unwrap_or_default();
    m.only = if m.included { only.unwrap_or_default() } else { Vec::new() };
    m
}

/// `PutInsightSelectors`: an empty list turns CloudTrail Insights off.
pub fn put_insight_selectors(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let selectors = get(p, "insightSelectors")?;
    let mut n = Narrowing::new();
    if list(Some(selectors)).is_empty() {
        n.add(Low, "CloudTrail Insights is turned off (no insight selectors)", json!({"insightSelectors": []}));
    }
    n.found()
}

/// `UpdateEventDataStore`: multi-region or organisation recording off, or management events narrowed.
pub fn update_event_data_store(p: &Value, r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    for (key, what) in [("multiRegionEnabled", "other regions"), ("organizationEnabled", "the organisation's accounts")]
    {
        if boolean(get(p, key)) == Some(false) {
            n.add(
                High,
                format!("the event data store no longer records {what} (`{key}` false)"),
                json!({ key: false }),
            );
        }
    }
    if let Some(selectors) = put_event_selectors(p, r) {
        n.add(
            selectors.severity,
            selectors.notes.join("; "),
            selectors.evidence.into_iter().next().unwrap_or_default(),
        );
    }
    n.found()
}

// GuardDuty

/// Features and data sources turned off, in `UpdateDetector` and `UpdateMemberDetectors`.
fn features_off(p: &Value, n: &mut Narrowing) {
    for feature in list(get(p, "features")) {
        let name = text(get(feature, "name")).unwrap_or("a feature");
        if is(get(feature, "status"), "DISABLED") {
            n.add(High, format!("GuardDuty feature {name} is turned off"), feature.clone());
            continue;
        }
        for extra in list(get(feature, "additionalConfiguration")) {
            if is(get(extra, "status"), "DISABLED") {
                let extra_name = text(get(extra, "name")).unwrap_or("a setting");
                n.add(High, format!("GuardDuty {name} setting {extra_name} is turned off"), feature.clone());
            }
        }
    }
    let Some(sources) = get(p, "dataSources") else { return };
    for (path, what) in [
        (&["s3Logs", "enable"][..], "S3 protection (S3 data events)"),
        (&["kubernetes", "auditLogs", "enable"][..], "EKS audit log monitoring"),
        (&["malwareProtection", "scanEc2InstanceWithFindings", "ebsVolumes"][..], "malware protection (EBS scans)"),
    ] {
        if boolean(at(sources, path)) == Some(false) {
            n.add(High, format!("GuardDuty data source {what} is turned off"), json!({"dataSources": sources}));
        }
    }
}

/// `UpdateDetector`: the detector disabled (critical) or a feature or data source turned off. A publishing
/// frequency change narrows nothing.
pub fn update_detector(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    if boolean(get(p, "enable")) == Some(false) {
        n.add(
            Critical,
            "the GuardDuty detector is disabled (`enable` false): no findings are produced",
            json!({"enable": false}),
        );
    }
    features_off(p, &mut n);
    n.found()
}

/// `UpdateMemberDetectors`: features or data sources turned off in member accounts.
pub fn update_member_detectors(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    features_off(p, &mut n);
    let accounts = strings(get(p, "accountIds"));
    if !accounts.is_empty() && !n.notes.is_empty() {
        n.notes.push(format!("in member accounts {}", accounts.join(", ")));
    }
    n.found()
}

/// `UpdateOrganizationConfiguration` (GuardDuty): new member accounts no longer get GuardDuty or a feature.
pub fn update_organization_configuration(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    if boolean(get(p, "autoEnable")) == Some(false) {
        n.add(
            High,
            "GuardDuty is no longer enabled for new member accounts (`autoEnable` false)",
            json!({"autoEnable": false}),
        );
    }
    if is(get(p, "autoEnableOrganizationMembers"), "NONE") {
        n.add(
            High,
            "GuardDuty is no longer enabled for member accounts (`autoEnableOrganizationMembers` NONE)",
            json!({"autoEnableOrganizationMembers": "NONE"}),
        );
    }
    for feature in list(get(p, "features")) {
        let name = text(get(feature, "name")).unwrap_or("a feature");
        if is(get(feature, "autoEnable"), "NONE") {
            n.add(High, format!("GuardDuty feature {name} is no longer enabled for member accounts"), feature.clone());
        }
    }
    if let Some(sources) = get(p, "dataSources") {
        for (path, what) in [
            (&["s3Logs", "autoEnable"][..], "S3 protection"),
            (&["kubernetes", "auditLogs", "autoEnable"][..], "EKS audit log monitoring"),
            (
                &["malwareProtection", "scanEc2InstanceWithFindings", "ebsVolumes", "autoEnable"][..],
                "malware protection",
            ),
        ] {
            if boolean(at(sources, path)) == Some(false) {
                n.add(
                    High,
                    format!("GuardDuty {what} is no longer enabled for new member accounts"),
                    json!({"dataSources": sources}),
                );
            }
        }
    }
    n.found()
}

/// Whether a GuardDuty filter's criteria name the resources (or the remote party) they apply to.
fn guardduty_criteria_narrow(criteria: &Value) -> bool {
    let Some(criterion) = get(criteria, "criterion").and_then(Value::as_object) else { return false };
    criterion.iter().any(|(field, condition)| {
        let subject = (field.starts_with("resource.") && !field.eq_ignore_ascii_case("resource.resourceType"))
            || field.contains("remoteIpDetails.ipAddress")
            || field.contains("remoteAccountDetails.accountId");
        let values: Vec<&str> = ["eq", "equals"].iter().flat_map(|k| strings(get(condition, k))).collect();
        subject && pinned(&values)
    })
}

/// `CreateFilter`: a filter that archives broadly suppresses findings (the default action is `NOOP`).
pub fn create_filter(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    guardduty_filter(p, false)
}

/// `UpdateFilter`: as `CreateFilter`, but the request may leave out the action or the criteria, which then stay
/// as they were: the request alone cannot tell (unknown).
pub fn update_filter(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    guardduty_filter(p, true)
}

fn guardduty_filter(p: &Value, update: bool) -> Option<Narrowing> {
    let criteria = get(p, "findingCriteria");
    let broad = criteria.map(|c| !guardduty_criteria_narrow(c));
    let mut n = Narrowing::new();
    match (text(get(p, "action")), broad) {
        (Some(action), _) if !action.eq_ignore_ascii_case("ARCHIVE") => {}
        (Some(_), Some(true)) => n.add(
            High,
            "the filter archives findings of any resource or account (suppression): they no longer alert",
            json!({"action": "ARCHIVE", "findingCriteria": criteria}),
        ),
        (Some(_), Some(false)) => {}
        (Some(_), None) if update => n.add(
            Medium,
            "the filter now archives what it matches; its criteria are not in the request (unknown)",
            json!({"action": "ARCHIVE"}),
        ),
        (None, Some(true)) if update => n.add(
            Medium,
            "the filter now matches findings of any resource; the request does not say whether it archives them \
             (unknown)",
            json!({"findingCriteria": criteria}),
        ),
        _ => {}
    }
    n.found()
}

/// `CreateIPSet` / `UpdateIPSet`: an active trusted IP list silences findings about those addresses.
pub fn ip_set(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    match boolean(get(p, "activate")) {
        Some(true) => n.add(
            High,
            "a trusted IP list is activated: GuardDuty produces no findings for traffic from its addresses",
            json!({"activate": true, "location": get(p, "location")}),
        ),
        Some(false) => {}
        None => {
            if let Some(location) = get(p, "location") {
                n.add(
                    Medium,
                    "the trusted IP list's addresses are replaced; the request does not say whether the list is \
                     active (unknown): an active list silences findings",
                    json!({"location": location}),
                );
            }
        }
    }
    n.found()
}

// AWS Config

/// `PutConfigurationRecorder`: a recording group that leaves resource types out. Recording global IAM types in
/// one region only (`includeGlobalResourceTypes` false) is AWS's own advice, not narrowing.
pub fn put_configuration_recorder(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let group = at(p, &["configurationRecorder", "recordingGroup"])?;
    let mut n = Narrowing::new();
    let strategy = text(at(group, &["recordingStrategy", "useOnly"]));
    let exclusions = strings(at(group, &["exclusionByResourceTypes", "resourceTypes"]));
    if strategy.is_some_and(|s| s.eq_ignore_ascii_case("EXCLUSION_BY_RESOURCE_TYPES")) || !exclusions.is_empty() {
        n.add(
            Medium,
            format!("the recorder excludes resource types: {}", exclusions.join(", ")),
            json!({"exclusionByResourceTypes": {"resourceTypes": exclusions}}),
        );
    } else if boolean(get(group, "allSupported")) == Some(false)
        || strategy.is_some_and(|s| s.eq_ignore_ascii_case("INCLUSION_BY_RESOURCE_TYPES"))
    {
        let types = strings(get(group, "resourceTypes"));
        n.add(
            Medium,
            format!("the recorder records only {} listed resource types, not all supported ones", types.len()),
            json!({"allSupported": false, "resourceTypes": types}),
        );
    }
    n.found()
}

// Security Hub (PascalCase parameters)

/// `UpdateStandardsControl`: a control disabled.
pub fn update_standards_control(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    if is(get(p, "ControlStatus"), "DISABLED") {
        let control = text(get(p, "StandardsControlArn")).unwrap_or("a control");
        n.add(High, format!("Security Hub control {control} is disabled"), json!({"ControlStatus": "DISABLED"}));
    }
    n.found()
}

/// `BatchUpdateStandardsControlAssociations`: controls disabled in standards.
pub fn batch_update_control_associations(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    for update in list(get(p, "StandardsControlAssociationUpdates")) {
        if is(get(update, "AssociationStatus"), "DISABLED") {
            let control = text(get(update, "SecurityControlId")).unwrap_or("a control");
            n.add(High, format!("Security Hub control {control} is disabled"), update.clone());
        }
    }
    n.found()
}

/// Whether automation rule actions suppress or resolve findings.
fn suppresses(actions: &[Value]) -> Option<&'static str> {
    actions.iter().find_map(|action| {
        let status = text(at(action, &["FindingFieldsUpdate", "Workflow", "Status"]))?;
        ["SUPPRESSED", "RESOLVED"].into_iter().find(|s| status.eq_ignore_ascii_case(s))
    })
}

/// Whether automation rule criteria name the resources (or findings) they apply to.
fn securityhub_criteria_narrow(criteria: &Value) -> bool {
    let Some(map) = criteria.as_object() else { return false };
    map.iter().any(|(field, filters)| {
        let subject = ["ResourceId", "ResourceApplicationArn", "Id"].iter().any(|f| field.eq_ignore_ascii_case(f));
        let values: Vec<&str> = list(Some(filters))
            .iter()
            .filter(|f| is(get(f, "Comparison"), "EQUALS"))
            .filter_map(|f| text(get(f, "Value")))
            .collect();
        subject && !values.is_empty() && values.len() == list(Some(filters)).len() && pinned(&values)
    })
}

fn automation_rule(item: &Value, n: &mut Narrowing) {
    if is(get(item, "RuleStatus"), "DISABLED") {
        return;
    }
    let Some(status) = suppresses(list(get(item, "Actions"))) else { return };
    let name = text(get(item, "RuleName")).or_else(|| text(get(item, "RuleArn"))).unwrap_or("an automation rule");
    match get(item, "Criteria") {
        Some(c) if securityhub_criteria_narrow(c) => {}
        Some(c) => n.add(
            High,
            format!("{name} sets findings of any resource to {status}: they no longer alert"),
            json!({"Criteria": c, "Actions": get(item, "Actions")}),
        ),
        None => n.add(
            Medium,
            format!("{name} now sets findings to {status}; its criteria are not in the request (unknown)"),
            json!({"Actions": get(item, "Actions")}),
        ),
    }
}

/// `CreateAutomationRule`: a rule that suppresses or resolves findings broadly.
pub fn create_automation_rule(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    automation_rule(p, &mut n);
    n.found()
}

/// `BatchUpdateAutomationRules`: rules changed to suppress or resolve findings broadly.
pub fn batch_update_automation_rules(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let mut n = Narrowing::new();
    for item in list(get(p, "UpdateAutomationRulesRequestItems")) {
        automation_rule(item, &mut n);
    }
    n.found()
}

// IAM Access Analyzer

/// `CreateArchiveRule` / `UpdateArchiveRule`: a rule that archives broadly, rather than the findings about one
/// named resource or outside principal.
pub fn archive_rule(p: &Value, _r: &Reading<'_>) -> Option<Narrowing> {
    let filter = get(p, "filter")?;
    let narrow = filter.as_object().is_some_and(|map| {
        map.iter().any(|(key, criterion)| {
            let subject = key == "resource" || key.starts_with("principal.");
            let values = strings(get(criterion, "eq"));
            subject && pinned(&values)
        })
    });
    let mut n = Narrowing::new();
    if !narrow {
        n.add(
            High,
            "the archive rule archives Access Analyzer findings of any resource or principal: external and public \
             access no longer surfaces",
            json!({"filter": filter}),
        );
    }
    n.found()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(f: fn(&Value, &Reading<'_>) -> Option<Narrowing>, p: Value) -> Option<Severity> {
        f(&p, &Reading { account: Some("123456789012") }).map(|n| n.severity)
    }

    #[test]
    fn trail_updates_that_add_delivery_narrow_nothing() {
        assert_eq!(read(update_trail, json!({"name": "t", "kmsKeyId": "alias/trail"})), None);
        assert_eq!(read(update_trail, json!({"name": "t", "snsTopicName": "x", "isMultiRegionTrail": true})), None);
        assert_eq!(read(update_trail, json!({"name": "t", "isMultiRegionTrail": "false"})), Some(High));
        assert_eq!(read(update_trail, json!({"name": "t", "cloudWatchLogsLogGroupArn": ""})), Some(High));
        assert_eq!(
            read(update_trail, json!({"name": "t", "kmsKeyId": "arn:aws:kms:us-east-1:444455556666:key/x"})),
            Some(High)
        );
    }

    #[test]
    fn event_selectors_basic_and_advanced() {
        let basic = |s: Value| read(put_event_selectors, json!({"trailName": "t", "eventSelectors": s}));
        assert_eq!(
            basic(
                json!([{"readWriteType": "All", "includeManagementEvents": true, "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}]}])
            ),
            None
        );
        assert_eq!(basic(json!([{"readWriteType": "All", "includeManagementEvents": false}])), Some(High));
        assert_eq!(basic(json!([{"readWriteType": "ReadOnly"}])), Some(High));
        assert_eq!(basic(json!([{"readWriteType": "WriteOnly"}])), Some(Medium));
        assert_eq!(basic(json!([{"excludeManagementEventSources": ["kms.amazonaws.com"]}])), Some(Medium));
        let advanced = |s: Value| read(put_event_selectors, json!({"trailName": "t", "advancedEventSelectors": s}));
        let mgmt = json!({"name": "m", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]});
        let data = json!({"name": "d", "fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]}, {"field": "resources.type", "equals": ["AWS::S3::Object"]}]});
        assert_eq!(advanced(json!([mgmt, data])), None);
        assert_eq!(advanced(json!([data])), Some(High));
        let read_only = json!({"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}, {"field": "readOnly", "equals": ["true"]}]});
        assert_eq!(advanced(json!([read_only])), Some(High));
        let excluding = json!({"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}, {"field": "eventSource", "notEquals": ["kms.amazonaws.com"]}]});
        assert_eq!(advanced(json!([excluding])), Some(Medium));
    }

    #[test]
    fn guardduty_reads() {
        assert_eq!(read(update_detector, json!({"detectorId": "d", "findingPublishingFrequency": "SIX_HOURS"})), None);
        assert_eq!(read(update_detector, json!({"detectorId": "d", "enable": false})), Some(Critical));
        assert_eq!(
            read(
                update_detector,
                json!({"detectorId": "d", "features": [{"name": "S3_DATA_EVENTS", "status": "ENABLED"}]})
            ),
            None
        );
        assert_eq!(
            read(
                update_detector,
                json!({"detectorId": "d", "features": [{"name": "S3_DATA_EVENTS", "status": "DISABLED"}]})
            ),
            Some(High)
        );
        assert_eq!(
            read(update_detector, json!({"detectorId": "d", "dataSources": {"s3Logs": {"enable": false}}})),
            Some(High)
        );
        let broad = json!({"criterion": {"severity": {"lt": 7}}});
        let narrow = json!({"criterion": {"type": {"eq": ["Recon:EC2/PortProbeUnprotectedPort"]}, "resource.instanceDetails.instanceId": {"eq": ["i-0abc"]}}});
        assert_eq!(
            read(create_filter, json!({"name": "f", "action": "ARCHIVE", "rank": 1, "findingCriteria": broad})),
            Some(High)
        );
        assert_eq!(
            read(create_filter, json!({"name": "f", "action": "ARCHIVE", "rank": 1, "findingCriteria": narrow})),
            None
        );
        assert_eq!(
            read(create_filter, json!({"name": "f", "action": "NOOP", "rank": 1, "findingCriteria": broad})),
            None
        );
        assert_eq!(read(ip_set, json!({"activate": true, "location": "s3://b/k"})), Some(High));
        assert_eq!(read(ip_set, json!({"activate": false, "location": "s3://b/k"})), None);
    }

    #[test]
    fn security_hub_reads_pascal_case() {
        assert_eq!(
            read(update_standards_control, json!({"StandardsControlArn": "c", "ControlStatus": "DISABLED"})),
            Some(High)
        );
        assert_eq!(
            read(update_standards_control, json!({"StandardsControlArn": "c", "ControlStatus": "ENABLED"})),
            None
        );
        let suppress =
            json!([{"Type": "FINDING_FIELDS_UPDATE", "FindingFieldsUpdate": {"Workflow": {"Status": "SUPPRESSED"}}}]);
        let broad = json!({"SeverityLabel": [{"Value": "LOW", "Comparison": "EQUALS"}]});
        let narrow = json!({"ResourceId": [{"Value": "arn:aws:s3:::test-bucket", "Comparison": "EQUALS"}]});
        assert_eq!(
            read(create_automation_rule, json!({"RuleName": "r", "Criteria": broad, "Actions": suppress})),
            Some(High)
        );
        assert_eq!(
            read(create_automation_rule, json!({"RuleName": "r", "Criteria": narrow, "Actions": suppress})),
            None
        );
    }

    #[test]
    fn archive_rules_for_one_partner_are_narrow() {
        assert_eq!(read(archive_rule, json!({"filter": {"principal.AWS": {"eq": ["444455556666"]}}})), None);
        assert_eq!(read(archive_rule, json!({"filter": {"isPublic": {"eq": ["true"]}}})), Some(High));
        assert_eq!(read(archive_rule, json!({"filter": {"resourceType": {"eq": ["AWS::S3::Bucket"]}}})), Some(High));
    }
}
