//! EventBridge patterns derived from the rules' triggers: the single source of what trailguard subscribes to.
//!
//! Each group of triggers (one per event source, one for "any source", one for root) becomes one EventBridge
//! rule on the default bus. A group that includes read-only calls needs its rule in state
//! `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`, since read-only management events reach only such rules.
//! IAM's events arrive in us-east-1 only; every other group also happens in other regions and is forwarded
//! from there.
//!
//! **Invariant:** every pattern requires `"source": [{"prefix": "aws."}]`. Anyone with `events:PutEvents` can send
//! any other source with CloudTrail's detail-type and a made-up record; AWS refuses `aws.*` sources in
//! `PutEvents`, so only AWS's own deliveries match. Events that imitate CloudTrail under another source match the
//! `Tripwire` pattern instead, which hands them to the detector's forgery path (one page per sending account and
//! hour, never a remediation).
//!
//! **Invariant:** no event matches two patterns. EventBridge invokes the target once per matching rule, so an
//! overlap would page twice for one event: names the any-source prefixes cover are left out of the per-source
//! groups, and every group but `Root` excludes root's events (keeping events that carry no identity type). <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html>

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Engine;
use crate::rules::{Name, Trigger};
use crate::session;

/// EventBridge's default limit on the size of one pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 2048;

/// What the patterns name, beside rule ids, as the consumer of the credential-issuing calls.
pub const REGISTRY: &str = "session-registry";
/// What the patterns name, beside rule ids, as the consumer of the canaries' calls.
pub const HEARTBEAT: &str = "heartbeat";
/// The name of the pattern that brings known agents' read-only calls, for behaviour over time.
pub const AGENTS: &str = "Agents";

/// The detail-type of CloudTrail API calls on EventBridge.
pub const API_CALL: &str = "AWS API Call via CloudTrail";
/// The detail-type of console sign-ins.
pub const CONSOLE_SIGN_IN: &str = "AWS Console Sign In via CloudTrail";

/// One EventBridge rule to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulePattern {
    /// A name for the rule, unique among the patterns: `Iam`, `Ec2`, `AnySource`, `Root`.
    pub name: String,
    /// The event pattern.
    pub pattern: Value,
    /// Whether the rule must receive read-only management events.
    pub read_only: bool,
    /// Whether the events also happen outside us-east-1 (and must be forwarded from other regions).
    pub regional: bool,
    /// The rules that need it.
    pub rules: Vec<String>,
}

/// A group's names, each with the rule that needs it.
#[derive(Default)]
struct Group {
    exact: Vec<(String, String)>,
    prefixes: Vec<(String, String)>,
    read_only: bool,
}

impl Group {
    fn rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = self.exact.iter().chain(&self.prefixes).map(|(_, rule)| rule.clone()).collect();
        rules.sort();
        rules.dedup();
        rules
    }
}

/// The patterns for the engine's rules (those not switched off), sorted by name.
pub fn patterns(engine: &Engine) -> Vec<RulePattern> {
    let config: &Config = engine.config();
    let mut groups: BTreeMap<Option<String>, Group> = BTreeMap::new();
    let mut has_root = false;
    for rule in engine.rules() {
        for trigger in rule.triggers(config) {
            match trigger {
                Trigger::RootActor => has_root = true,
                // Brought by the `Agents` pattern, made below from the agent signals.
                Trigger::AgentReads => {}
                Trigger::Calls { source, names, read_only } => {
                    let group = groups.entry(source).or_default();
                    group.read_only |= read_only;
                    for name in names {
                        match name {
                            Name::Exact(n) => group.exact.push((n, rule.id().to_owned())),
                            Name::Prefix(p) => group.prefixes.push((p, rule.id().to_owned())),
                        }
                    }
                }
            }
        }
    }
    // The session registry records agent sessions where their credentials are issued: session tags are logged
    // only in those calls. Role-to-role `AssumeRole` already comes for `guardrail-tampering`; SAML, web identity
    // and federation tokens come for the registry alone (read-only management events).
    let sts = groups.entry(Some(session::STS.to_owned())).or_default();
    sts.read_only = true;
    sts.exact.extend(session::ISSUING_EVENTS.iter().map(|n| ((*n).to_owned(), REGISTRY.to_owned())));
    // Names an any-source prefix covers move to the any-source group, rules and all.
    let any_prefixes: Vec<String> =
        groups.get(&None).map(|g| g.prefixes.iter().map(|(p, _)| p.clone()).collect()).unwrap_or_default();
    let covered = |name: &str| any_prefixes.iter().any(|a| name.starts_with(a.as_str()));
    let mut absorbed = Vec::new();
    for group in groups.iter_mut().filter(|(s, _)| s.is_some()).map(|(_, g)| g) {
        absorbed.extend(group.exact.iter().chain(&group.prefixes).filter(|(n, _)| covered(n)).cloned());
        group.exact.retain(|(n, _)| !covered(n));
        group.prefixes.retain(|(n, _)| !covered(n));
    }
    if let Some(any) = groups.get_mut(&None) {
        // Kept as exact names only to say which rules the group serves; the prefix already matches them.
        any.exact.extend(absorbed);
    }
    let not_root = json!([{"userIdentity": {"type": [{"anything-but": "Root"}]}}, {"userIdentity": {"type": [{"exists": false}]}}]);
    let all_rules: Vec<String> = engine.rules().iter().map(|r| r.id().to_owned()).collect();
    let mut out: Vec<RulePattern> = groups
        .into_iter()
        .filter(|(_, group)| !group.exact.is_empty() || !group.prefixes.is_empty())
        .map(|(source, group)| {
            let rules = group.rules();
            let mut prefixes: Vec<&String> = group.prefixes.iter().map(|(p, _)| p).collect();
            prefixes.sort();
            prefixes.dedup();
            // An exact name that a prefix already covers adds nothing.
            let mut exact: Vec<&String> = group
                .exact
                .iter()
                .map(|(n, _)| n)
                .filter(|n| !prefixes.iter().any(|p| n.starts_with(p.as_str())))
                .collect();
            exact.sort();
            exact.dedup();
            let mut names: Vec<Value> = exact.iter().map(|n| json!(n)).collect();
            names.extend(prefixes.iter().map(|p| json!({"prefix": p})));
            let (detail, name) = match &source {
                Some(source) => (
                    json!({"eventSource": [source], "eventName": names, "$or": not_root}),
                    camel(source.trim_end_matches(".amazonaws.com")),
                ),
                None => (json!({"eventName": names, "$or": not_root}), "AnySource".to_owned()),
            };
            RulePattern {
                regional: source.as_deref() != Some("iam.amazonaws.com"),
                name,
                pattern: json!({"source": aws_sources(), "detail-type": [API_CALL], "detail": detail}),
                read_only: group.read_only,
                rules,
            }
        })
        .collect();
    if has_root {
        // Root may call anything, and every rule judges root's calls.
        out.push(RulePattern {
            name: "Root".to_owned(),
            pattern: json!({"source": aws_sources(), "detail-type": [API_CALL, CONSOLE_SIGN_IN],
                "detail": {"userIdentity": {"type": ["Root"]}}}),
            read_only: true,
            regional: true,
            rules: all_rules,
        });
    }
    // The regional canaries' calls, for heartbeats (the global canary's `TagRole` already comes with IAM's).
    out.push(RulePattern {
        name: "Canary".to_owned(),
        pattern: crate::canary::pattern(config),
        read_only: false,
        regional: true,
        rules: vec![HEARTBEAT.to_owned()],
    });
    if let Some(agents) = agents_pattern(engine, &out) {
        out.push(agents);
    }
    out.push(RulePattern {
        name: "Tripwire".to_owned(),
        pattern: tripwire_pattern(),
        read_only: false,
        regional: true,
        rules: vec!["guardrail-tampering".to_owned()],
    });
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Known agents' read-only management calls, which no rule subscribes to (an agent's `List*`/`Describe*`/`Get*`
/// calls across services), so that behaviour over time can count them. Selected by the signals each record
/// shows: the source identity, the role and session names (through the session's `assumed-role` ARN), the IAM
/// user name, and AWS's MCP server marker. Signals that need a look-up (session and role tags, a parent session)
/// cannot be selected by pattern.
///
/// Only read-only calls (`readOnly: true`): write calls would overlap the per-source groups, and an event matching
/// two rules invokes the detector twice. Read-only events reach only rules that receive all management events,
/// so the names the read-only groups already bring are left out here (also when another service has a call of the
/// same name, which then goes uncounted). Root has its own group and no agent signal.
///
/// Case: trailguard's globs ignore case. A glob with one `*` at either end, or none, becomes a `prefix`, `suffix`
/// or exact match with `equals-ignore-case` (the same set of values); any other glob becomes an EventBridge
/// `wildcard`, which is case-sensitive, and so are the names matched through the ARN: `Agent-Run-1` is not
/// selected by `agent-*` there (its calls that a rule subscribes to still arrive and are still recognised). A
/// `?` becomes `*`, which selects more; the detector recognises agents with the exact glob.
fn agents_pattern(engine: &Engine, others: &[RulePattern]) -> Option<RulePattern> {
    let config = engine.config();
    let rules: Vec<String> = engine
        .rules()
        .iter()
        .filter(|r| r.triggers(config).contains(&Trigger::AgentReads))
        .map(|r| r.id().to_owned())
        .collect();
    if rules.is_empty() {
        return None;
    }
    let agents = &config.agents;
    let mut signals = Vec::new();
    let filters = |globs: &[String]| -> Vec<Value> { globs.iter().map(|g| glob_filter(g)).collect() };
    if !agents.source_identity.is_empty() {
        signals.push(json!({"userIdentity": {"sessionContext": {"sourceIdentity": filters(&agents.source_identity)}}}));
    }
    // A session's ARN is `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`; neither name holds a `/`.
    let mut arns: Vec<Value> = Vec::new();
    let mut role_arns: Vec<Value> = Vec::new();
    for role in &agents.role {
        if role.starts_with("arn:") {
            role_arns.push(json!({"wildcard": wildcard_text(role)}));
        } else {
            arns.push(json!({"wildcard": format!("arn:*:sts::*:assumed-role/{}/*", wildcard_text(role))}));
        }
    }
    arns.extend(
        agents
            .session_name
            .iter()
            .map(|s| json!({"wildcard": format!("arn:*:sts::*:assumed-role/*/{}", wildcard_text(s))})),
    );
    if !arns.is_empty() {
        signals.push(json!({"userIdentity": {"type": ["AssumedRole"], "arn": arns}}));
    }
    if !role_arns.is_empty() {
        signals.push(json!({"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": role_arns}}}}));
    }
    if !agents.user_name.is_empty() {
        signals.push(json!({"userIdentity": {"type": ["IAMUser"], "userName": filters(&agents.user_name)}}));
    }
    if agents.mcp {
        signals.push(json!({"additionalEventData": {"CalledViaAWSMCP": [{"exists": true}]}}));
    }
    if signals.is_empty() {
        return None;
    }
    let mut brought: Vec<String> = Vec::new();
    let mut brought_prefixes: Vec<String> = Vec::new();
    for p in others.iter().filter(|p| p.read_only) {
        for name in p.pattern.pointer("/detail/eventName").and_then(Value::as_array).into_iter().flatten() {
            match (name.as_str(), name.get("prefix").and_then(Value::as_str)) {
                (Some(exact), _) => brought.push(exact.to_owned()),
                (_, Some(prefix)) => brought_prefixes.push(prefix.to_owned()),
                _ => {}
            }
        }
    }
    brought.sort();
    brought.dedup();
    let mut detail = serde_json::Map::new();
    detail.insert("readOnly".to_owned(), json!([true]));
    detail.insert("$or".to_owned(), json!(signals));
    if brought_prefixes.is_empty() {
        if !brought.is_empty() {
            detail.insert("eventName".to_owned(), json!([{"anything-but": brought}]));
        }
    } else {
        // `anything-but` takes one kind of value: exact names and prefixes together as wildcards.
        let mut all: Vec<String> = brought.iter().map(|n| wildcard_text(n)).collect();
        all.extend(brought_prefixes.iter().map(|p| format!("{}*", wildcard_text(p))));
        detail.insert("eventName".to_owned(), json!([{"anything-but": {"wildcard": all}}]));
    }
    Some(RulePattern {
        name: AGENTS.to_owned(),
        pattern: json!({"source": aws_sources(), "detail-type": [API_CALL], "detail": detail}),
        read_only: true,
        regional: true,
        rules,
    })
}

/// An EventBridge filter for a trailguard glob (case-insensitive `*` and `?`): exact, prefix or suffix matching
/// ignoring case where the glob has that shape, a (case-sensitive) `wildcard` otherwise.
fn glob_filter(glob: &str) -> Value {
    let stars = glob.matches('*').count();
    let core = glob.trim_matches('*');
    let question = glob.contains('?');
    if !question && stars == 0 {
        json!({"equals-ignore-case": glob})
    } else if !question && stars == 1 && glob.ends_with('*') && !core.is_empty() {
        json!({"prefix": {"equals-ignore-case": core}})
    } else if !question && stars == 1 && glob.starts_with('*') && !core.is_empty() {
        json!({"suffix": {"equals-ignore-case": core}})
    } else {
        json!({"wildcard": wildcard_text(glob)})
    }
}

/// A glob as EventBridge `wildcard` text: `?` widened to `*`, runs of `*` collapsed, `\` escaped.
fn wildcard_text(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' | '?' if out.ends_with('*') => {}
            '*' | '?' => out.push('*'),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a record is one the `Agents` pattern is meant to bring: a read-only call whose actor the free signals
/// (those a pattern can see) recognise as an agent, and that no other pattern brings. Each such record triggers
/// the engine's [`Trigger::AgentReads`] rules (the engine's test is wider: it also takes the SDK application id,
/// and a record without `readOnly` by its name).
pub fn agent_traffic(engine: &Engine, record: &crate::event::CloudTrailRecord) -> bool {
    let actor = crate::event::Actor::from_record(record);
    // The SDK's application id is in the user agent, which the pattern does not read.
    let matchers = crate::event::AgentMatchers { app_id: Vec::new(), ..engine.config().agents.clone() };
    engine.reads_agents()
        && record.read_only == Some(true)
        && actor.kind != "Root"
        && matchers.recognise(&actor, None, None).is_some()
        && !engine.call_triggers(&record.event_source, &record.event_name)
        && !session::ISSUING_EVENTS.contains(&record.event_name.as_str())
}

/// The pattern of the findings-bus rule that hands findings to the remediator: trailguard's findings that carry
/// at least one remediation step.
pub fn remediation_pattern() -> Value {
    json!({"source": ["trailguard"], "detail-type": ["Trailguard Finding"], "detail": {"remediable": [true]}})
}

/// Only AWS may send `aws.*` sources: the one part of an event's envelope nobody else can choose.
fn aws_sources() -> Value {
    json!([{"prefix": "aws."}])
}

/// Events that imitate CloudTrail under a source AWS did not send: forgeries, for the detector's forgery path.
pub fn tripwire_pattern() -> Value {
    json!({"source": [{"anything-but": {"prefix": "aws."}}], "detail-type": [API_CALL, CONSOLE_SIGN_IN,
        "AWS Service Event via CloudTrail", "AWS Insight via CloudTrail"]})
}

/// `access-analyzer` gives `AccessAnalyzer`.
fn camel(text: &str) -> String {
    text.split(['-', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_subscribed_and_patterns_fit_eventbridge() {
        let engine = Engine::new(Config::default());
        let patterns = patterns(&engine);
        for rule in engine.rules() {
            assert!(patterns.iter().any(|p| p.rules.iter().any(|r| r == rule.id())), "{} has no pattern", rule.id());
        }
        for p in &patterns {
            assert!(p.pattern.to_string().len() <= MAX_PATTERN_CHARS, "{} is too long", p.name);
        }
        let iam = patterns.iter().find(|p| p.name == "Iam").unwrap();
        assert!(!iam.regional && !iam.read_only);
        let names = iam.pattern["detail"]["eventName"].as_array().unwrap();
        assert!(names.contains(&json!("AttachRolePolicy")) || names.contains(&json!({"prefix": "Attach"})));
        let sts = patterns.iter().find(|p| p.name == "Sts").unwrap();
        assert!(sts.read_only);
        for name in session::ISSUING_EVENTS {
            assert!(sts.pattern["detail"]["eventName"].as_array().unwrap().contains(&json!(name)), "{name}");
        }
        assert!(sts.rules.contains(&REGISTRY.to_owned()));
        let cloudtrail = patterns.iter().find(|p| p.name == "Cloudtrail").unwrap();
        assert!(!cloudtrail.pattern.to_string().contains("\"DeleteTrail\""), "the any-source rule covers it");
    }

    #[test]
    fn every_pattern_admits_only_aws_sources_but_the_tripwire() {
        for p in patterns(&Engine::new(Config::default())) {
            if p.name == "Tripwire" {
                assert_eq!(p.pattern["source"], json!([{"anything-but": {"prefix": "aws."}}]));
            } else {
                assert_eq!(p.pattern["source"], json!([{"prefix": "aws."}]), "{}", p.name);
            }
        }
    }

    #[test]
    fn configured_calls_extend_the_patterns() {
        let engine = Engine::new(Config::from_json(r#"{"sensitive_calls": ["ses:SendRawEmail"]}"#).unwrap());
        assert!(!patterns(&Engine::new(Config::default())).iter().any(|p| p.name == "Ses"));
        let ses = patterns(&engine).into_iter().find(|p| p.name == "Ses").unwrap();
        assert_eq!(ses.pattern["detail"]["eventName"], json!(["SendRawEmail"]));
        let patterns = patterns(&engine);
        let any = patterns.iter().find(|p| p.name == "AnySource").unwrap();
        assert!(
            !patterns
                .iter()
                .any(|p| p.name != "AnySource" && p.pattern["detail"]["eventName"].to_string().contains("Delete")),
            "{any:?}"
        );
    }

    #[test]
    fn globs_keep_their_case_insensitivity_where_eventbridge_allows_it() {
        assert_eq!(glob_filter("claude*"), json!({"prefix": {"equals-ignore-case": "claude"}}));
        assert_eq!(glob_filter("*-bot"), json!({"suffix": {"equals-ignore-case": "-bot"}}));
        assert_eq!(glob_filter("ci-runner"), json!({"equals-ignore-case": "ci-runner"}));
        assert_eq!(glob_filter("*-ai-agent*"), json!({"wildcard": "*-ai-agent*"}));
        assert_eq!(glob_filter("agent-?x**"), json!({"wildcard": "agent-*x*"}), "? widened, runs collapsed");
        let agents = patterns(&Engine::new(Config::default())).into_iter().find(|p| p.name == AGENTS).unwrap();
        assert!(agents.read_only && agents.regional);
        assert_eq!(agents.pattern["detail"]["readOnly"], json!([true]));
        let excluded = agents.pattern["detail"]["eventName"][0]["anything-but"].as_array().unwrap();
        assert!(excluded.contains(&json!("AssumeRole")) && excluded.contains(&json!("BatchGetSecretValue")));
        let none = Config::from_json(
            r#"{"agents": {"source_identity": [], "session_name": [], "role": [], "user_name": [], "mcp": false}}"#,
        )
        .unwrap();
        assert!(!patterns(&Engine::new(none)).iter().any(|p| p.name == AGENTS), "no signal, no pattern");
    }
}
