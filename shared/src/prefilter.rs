//! A byte-level test that proves, without parsing, that no rule is triggered by a piece of JSON text.
//!
//! Most CloudTrail traffic triggers no rule, and parsing it is most of a scan's cost. [`Prefilter::may_trigger`]
//! looks at the raw text of a record (or of an EventBridge event, or of a JSON line) and answers `false` only
//! when the engine's trigger test ([`Engine::triggered_rules`]) is certain to be empty for every record in it.
//!
//! Why `false` is safe. A rule is triggered by the record's `eventSource` and `eventName` values, or by
//! `userIdentity.type` being `Root`; serde compares the *decoded* JSON strings. Every trigger name and source is
//! checked at construction to hold no `"`, `\`, `/` or control character (otherwise the filter is off). JSON's
//! escapes other than `\u` decode to exactly those characters, so when the text holds no `\u`, a string that
//! decodes to such a name, source or prefix is written literally: the key `"eventName"` appears as is, and so does
//! its value. The filter therefore passes any text that contains `\u`, contains `"Root"` (when a rule watches the
//! root user), lacks an `"eventName"` or `"eventSource"` key it can read, or has any pair of literal values under
//! those keys that the engine's trigger index matches. The real pair is always among the pairs it tries.
//!
//! Identity-keyed triggers need their own argument. [`Trigger::AgentReads`] is triggered by a read-only call whose
//! actor the signals the record shows recognise as an agent, or (offline) whose access key the registry knows.
//! Every value that recognition compares is a decoded string of the record: the source identity, the role and
//! session names (a session's ARN holds both; a role ARN glob is also tried on the role ARN a session ARN names,
//! whose role name the session ARN holds), the user name, the SDK application id in the user agent, the access
//! key (against the registry), and the MCP marker is read only where the raw text holds `ViaAWSMCP`. A value that
//! matches a glob (ignoring ASCII case) contains each literal run of the glob; take, for each glob, the longest
//! run of its last `/`-separated part that holds no wildcard and no character JSON may escape (`"`, `\`, `/`,
//! control characters). Such a run is written as is in any JSON text of the value without `\u`: every one of
//! its characters is written literally, side by side. So when the call test passes a text over, it is passed on
//! anyway if it holds, ignoring ASCII case, any glob's run, `ViaAWSMCP`, or an access key the registry knows; if
//! some glob has no such run; or if the text is not all ASCII (case-insensitive matching there compares Unicode
//! characters). The glob runs and `ViaAWSMCP` are searched, lowercased, in an ASCII-lowercased copy of the text,
//! one vectorised substring search each (the same matches as a case-insensitive search: both fold ASCII letters
//! only; a case-insensitive automaton over every byte cost about 40% of a scan); the registry's keys with one
//! automaton. What this costs on a trail with few agents is
//! measured, not argued (README, "Agents").
//!
//! A record the byte test passes on gets one more cheap look before it is parsed in full
//! ([`Prefilter::made_by_aws_service`]): the engine never judges what AWS itself did.
//!
//! What it cannot tell: a record it passes over is not type-checked, so a malformed record there is counted as
//! read rather than reported as unreadable (`scan --no-prefilter` checks every record).

use std::borrow::Cow;

use memchr::memmem::Finder;
use serde::Deserialize;

use crate::engine::Engine;
use crate::event::AgentMatchers;
use crate::rules::{Name, Trigger};
use crate::session::Registry;

/// The pre-filter for one engine's triggers.
pub struct Prefilter<'e> {
    engine: &'e Engine,
    /// The byte test for the identity-keyed agent trigger, when a rule has one.
    agents: Option<AgentSignals>,
    /// Off when some trigger name could be written with an escape other than `\u`.
    sound: bool,
    watches_root: bool,
    root: Finder<'static>,
    /// `"event`: the start of both keys the triggers compare, `"eventName"` and `"eventSource"`.
    event_key: Finder<'static>,
}

impl<'e> Prefilter<'e> {
    /// The pre-filter for `engine`'s triggers.
    pub fn new(engine: &'e Engine) -> Prefilter<'e> {
        let triggers = calls(engine);
        let watches_root = engine.rules().iter().any(|r| r.triggers(engine.config()).contains(&Trigger::RootActor));
        let plain = |text: &str| !text.bytes().any(|b| b == b'"' || b == b'\\' || b == b'/' || b < 0x20);
        let sound = triggers.iter().all(|(source, name)| source.as_deref().is_none_or(plain) && plain(name));
        let agents = engine.reads_agents().then(|| AgentSignals::new(&engine.config().agents, &[]));
        Prefilter {
            engine,
            agents,
            sound,
            watches_root,
            root: Finder::new(br#""Root""#).into_owned(),
            event_key: Finder::new(br#""event"#).into_owned(),
        }
    }

    /// The pre-filter for [`Engine::prepare_registered`] with `registry`: the registry's agent sessions' access
    /// keys pass too.
    pub fn with_registry(mut self, registry: &Registry) -> Prefilter<'e> {
        if self.agents.is_some() {
            let keys: Vec<&str> = registry.sessions().map(|s| s.access_key_id.as_str()).collect();
            self.agents = Some(AgentSignals::new(&self.engine.config().agents, &keys));
        }
        self
    }

    /// `false` only when no record in `json` can trigger a rule (see the module's documentation).
    pub fn may_trigger(&self, json: &[u8]) -> bool {
        self.must_parse(json) || self.call_may_trigger(json) || self.agent_may_trigger(json)
    }

    /// Whether `json` may hold an agent's call, for the identity-keyed trigger.
    fn agent_may_trigger(&self, json: &[u8]) -> bool {
        self.agents.as_ref().is_some_and(|agents| agents.may_show(json))
    }

    /// A second look at one record the byte test passed on: whether an AWS service made it (`userIdentity.type`
    /// `AWSService`), which the engine never judges ([`Engine::prepare`]). Only the actor's type is read, not
    /// the record: service traffic such as `sts:AssumeRole` for Lambda is common and matches a trigger.
    pub fn made_by_aws_service(&self, record: &str) -> bool {
        made_by_aws_service(record)
    }

    /// Whether `text` holds what sends every record in it to the parser: a `\u` escape, or the root user's type.
    fn must_parse(&self, text: &[u8]) -> bool {
        // Backslashes are rare in CloudTrail text: looking for them alone is the fastest search there is.
        let unicode_escape = memchr::memchr_iter(b'\\', text).any(|at| text.get(at + 1) == Some(&b'u'));
        !self.sound || unicode_escape || self.watches_root && self.root.find(text).is_some()
    }

    /// The event names and sources in `json`, judged against the triggers.
    fn call_may_trigger(&self, json: &[u8]) -> bool {
        let mut calls = Calls::default();
        for at in self.event_key.find_iter(json) {
            calls.see(json, at + self.event_key.needle().len());
        }
        calls.may_trigger(self.engine)
    }

    /// Calls `visit` with each line of `text` (split at `\n`) and [`Prefilter::may_trigger`] for it. The same
    /// answers, found faster: each needle is searched once over the whole text rather than line by line. A line
    /// passed over holds at most one record (one `eventName`), so that counting lines counts records.
    pub fn for_each_line<'t>(&self, text: &'t [u8], mut visit: impl FnMut(&'t [u8], bool)) {
        let search_lines = self.must_parse(text);
        let mut keys = self.event_key.find_iter(text).peekable();
        // The agent signals too are searched once over the whole text (a needle holds no line end either).
        let mut signals =
            self.agents.as_ref().map(|agents| agents.found(text)).unwrap_or_default().into_iter().peekable();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
            let line = text.get(start..end).unwrap_or_default();
            let mut calls = Calls::default();
            // A match never spans lines: the needle holds no line end.
            while let Some(at) = keys.next_if(|at| *at < end) {
                calls.see(line, at - start + self.event_key.needle().len());
            }
            let pass = search_lines && self.must_parse(line) || calls.may_trigger(self.engine);
            let mut signal = false;
            while signals.next_if(|at| *at < end).is_some() {
                signal = true;
            }
            visit(line, pass || signal || self.agents.as_ref().is_some_and(|agents| agents.always(line)));
            start = end + 1;
        }
    }
}

/// The agent signals a text may show, for [`Trigger::AgentReads`] (see the module's documentation), ignoring ASCII
/// case.
struct AgentSignals {
    /// What to search for; `None` when some glob has no literal piece (then every text may show an agent).
    needles: Option<Needles>,
}

struct Needles {
    /// Each glob's required piece and the MCP marker, lowercased: searched in a lowercased copy of the text.
    pieces: Vec<memchr::memmem::Finder<'static>>,
    /// The registry's access keys (offline), ignoring case; `None` without a registry.
    keys: Option<aho_corasick::AhoCorasick>,
}

impl AgentSignals {
    fn new(matchers: &AgentMatchers, keys: &[&str]) -> AgentSignals {
        let globs = [&matchers.source_identity, &matchers.session_name, &matchers.role, &matchers.user_name];
        let pieces: Option<Vec<String>> =
            globs.into_iter().flatten().chain(&matchers.app_id).map(|glob| required_piece(glob)).collect();
        let needles = pieces.map(|mut pieces| {
            if matchers.mcp {
                pieces.push("ViaAWSMCP".to_owned());
            }
            pieces.sort_unstable();
            pieces.dedup();
            let pieces = pieces
                .iter()
                .map(|piece| memchr::memmem::Finder::new(piece.to_ascii_lowercase().as_bytes()).into_owned())
                .collect();
            let keys = (!keys.is_empty())
                .then(|| aho_corasick::AhoCorasick::builder().ascii_case_insensitive(true).build(keys).ok())
                .flatten();
            Needles { pieces, keys }
        });
        AgentSignals { needles }
    }

    /// Whether `text` may show an agent: `false` proves that no value in it recognises one.
    fn may_show(&self, text: &[u8]) -> bool {
        self.always(text) || !self.found(text).is_empty()
    }

    /// Whether `text` must be taken as showing an agent whatever it holds: some glob has no literal piece, or the
    /// text is not all ASCII (case-insensitive glob matching there compares characters: the Kelvin sign is a `k`).
    fn always(&self, text: &[u8]) -> bool {
        self.needles.is_none() || !text.is_ascii()
    }

    /// Where the needles start in `text`, in order.
    fn found(&self, text: &[u8]) -> Vec<usize> {
        let Some(needles) = &self.needles else { return Vec::new() };
        let lower = text.to_ascii_lowercase();
        let mut at: Vec<usize> = needles.pieces.iter().flat_map(|piece| piece.find_iter(&lower)).collect();
        if let Some(keys) = &needles.keys {
            at.extend(keys.find_iter(text).map(|m| m.start()));
        }
        at.sort_unstable();
        at
    }
}

/// The literal piece a value matching `glob` must contain, written as is in any JSON text of it without `\u`:
/// the longest run of the glob's last `/`-separated part (a role ARN glob's role name, which a session ARN holds
/// too) without a wildcard or a character JSON may escape. `None` when there is none.
fn required_piece(glob: &str) -> Option<String> {
    let tail = glob.rsplit('/').next().unwrap_or(glob);
    let escapable = |c: char| matches!(c, '*' | '?' | '"' | '\\' | '/') || c.is_control();
    tail.split(escapable).max_by_key(|piece| piece.len()).filter(|piece| !piece.is_empty()).map(str::to_owned)
}

/// Every (event source, event name or name prefix) the engine's rules are triggered by (`None`: any source), from
/// the rules themselves, as the engine's index is built.
fn calls(engine: &Engine) -> Vec<(Option<String>, String)> {
    let triggers = engine.rules().iter().flat_map(|rule| rule.triggers(engine.config()));
    triggers
        .flat_map(|trigger| match trigger {
            Trigger::Calls { source, names, .. } => names
                .into_iter()
                .map(|name| match name {
                    Name::Exact(name) | Name::Prefix(name) => (source.clone(), name),
                })
                .collect(),
            Trigger::RootActor | Trigger::AgentReads => Vec::new(),
        })
        .collect()
}

/// The `eventName` and `eventSource` values seen in one text. The needle `"event` cannot overlap itself (its `"`
/// is only at its start), so no key is hidden by an earlier match. A record has one of each key; text with more
/// than a few (an event about events) simply goes to the parser.
#[derive(Default)]
struct Calls<'t> {
    names: [&'t str; 4],
    sources: [&'t str; 4],
    name_count: usize,
    source_count: usize,
    /// A key whose value could not be read literally, or one too many: judge by parsing.
    opaque: bool,
}

impl<'t> Calls<'t> {
    /// Looks at the key starting just after a `"event` that ends at `after`.
    fn see(&mut self, json: &'t [u8], after: usize) {
        let rest = json.get(after..).unwrap_or_default();
        let (found, count, key) = if rest.starts_with(b"Name\"") {
            (&mut self.names, &mut self.name_count, "Name\"".len())
        } else if rest.starts_with(b"Source\"") {
            (&mut self.sources, &mut self.source_count, "Source\"".len())
        } else {
            return;
        };
        match (string_after(rest, key), found.get_mut(*count)) {
            (Some(value), Some(slot)) => {
                *slot = value;
                *count += 1;
            }
            _ => self.opaque = true,
        }
    }

    fn may_trigger(&self, engine: &Engine) -> bool {
        let (Some(names), Some(sources)) = (self.names.get(..self.name_count), self.sources.get(..self.source_count))
        else {
            return true;
        };
        // More than one name: several records (a log file on one line), parsed so that each is counted.
        if self.opaque || names.len() != 1 || sources.is_empty() {
            return true;
        }
        names.iter().any(|name| sources.iter().any(|source| engine.call_triggers(source, name)))
    }
}

/// [`Prefilter::made_by_aws_service`], which needs no pre-filter: whether one record's text says an AWS service
/// made it (`userIdentity.type` `AWSService`), read without parsing the record.
pub fn made_by_aws_service(record: &str) -> bool {
    if written_as_service_record(record.as_bytes()) {
        return true;
    }
    serde_json::from_str::<ActorType>(record)
        .ok()
        .and_then(|r| r.identity)
        .and_then(|i| i.kind)
        .is_some_and(|kind| kind == "AWSService")
}

/// Whether the record starts the way CloudTrail writes a service's record, `{"eventVersion":"1.08","userIdentity":
/// {"type":"AWSService",`: then its actor's type is `AWSService` without reading further (a second `userIdentity`
/// or `type` later would make the record unreadable, not someone else's).
fn written_as_service_record(json: &[u8]) -> bool {
    let rest = match json.strip_prefix(br#"{"eventVersion":""#) {
        Some(version) => {
            let end = memchr::memchr2(b'"', b'\\', version).filter(|at| version.get(*at) == Some(&b'"'));
            end.and_then(|at| version.get(at + 1..)).and_then(|rest| rest.strip_prefix(b","))
        }
        None => json.strip_prefix(b"{"),
    };
    rest.is_some_and(|rest| rest.starts_with(br#""userIdentity":{"type":"AWSService""#))
}

/// Just the actor's type of a record; everything else is skipped unread.
#[derive(Deserialize)]
struct ActorType<'a> {
    #[serde(rename = "userIdentity", borrow, default)]
    identity: Option<IdentityType<'a>>,
}

#[derive(Deserialize)]
struct IdentityType<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// The string value after a key that ends just before `at` (`: "value"`), when it is written without escapes.
fn string_after(json: &[u8], at: usize) -> Option<&str> {
    let rest = json.get(at..)?;
    let rest = skip_whitespace(rest).strip_prefix(b":")?;
    let rest = skip_whitespace(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest.get(end) != Some(&b'"') {
        return None;
    }
    std::str::from_utf8(rest.get(..end)?).ok()
}

fn skip_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::read_records;
    use crate::Config;
    use proptest::prelude::*;

    fn record(source: &str, name: &str, kind: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"{kind}","arn":"arn:aws:iam::123456789012:user/a"}},"eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1"}}"#
        )
    }

    fn triggers(engine: &Engine, json: &str) -> bool {
        read_records(json.as_bytes())
            .map(|records| records.iter().flatten().any(|r| !engine.triggered_rules(r).is_empty()))
            .unwrap_or(false)
    }

    /// Re-encodes a JSON text the way another writer might: whitespace around `:` and `,`, and any character
    /// inside strings written as `\u` escapes (as JSON allows). Decoding gives the same document.
    fn reencode(json: &str, escapes: &[bool], spaces: &[bool]) -> String {
        let mut out = String::new();
        let (mut in_string, mut escaped) = (false, false);
        for (i, c) in json.chars().enumerate() {
            let pick = |flags: &[bool]| flags.get(i % flags.len().max(1)).copied().unwrap_or(false);
            if in_string {
                if escaped {
                    escaped = false;
                    out.push(c);
                } else if c == '\\' {
                    escaped = true;
                    out.push(c);
                } else if c == '"' {
                    in_string = false;
                    out.push(c);
                } else if pick(escapes) {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push(c);
                }
            } else {
                if c == '"' {
                    in_string = true;
                }
                out.push(c);
                if (c == ':' || c == ',') && pick(spaces) {
                    out.push_str(" \n\t");
                }
            }
        }
        out
    }

    #[test]
    fn every_trigger_passes_in_every_writing() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        assert!(filter.sound, "trigger names must be plain for the filter to be on");
        let mut cases = vec![record("signin.amazonaws.com", "ConsoleLogin", "Root")];
        for (source, name) in calls(&engine) {
            cases.push(record(source.as_deref().unwrap_or("ec2.amazonaws.com"), &format!("{name}Suffix"), "IAMUser"));
            cases.push(record(source.as_deref().unwrap_or("s3.amazonaws.com"), &name, "AssumedRole"));
        }
        for case in &cases {
            for writing in [case.clone(), reencode(case, &[false], &[true]), reencode(case, &[true, false], &[false])] {
                if triggers(&engine, &writing) {
                    assert!(filter.may_trigger(writing.as_bytes()), "dropped {writing}");
                }
            }
        }
        // An escape anywhere is enough to be passed on: here only the actor's type is written with one.
        let root = cases[0].replace(r#""Root""#, r#""R\u006fot""#);
        assert!(triggers(&engine, &root) && filter.may_trigger(root.as_bytes()), "dropped {root}");
        let attach = record("iam.amazonaws.com", "AttachRolePolicy", "IAMUser");
        let event = format!(r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{attach}}}"#);
        assert!(triggers(&engine, &event) && filter.may_trigger(event.as_bytes()));
    }

    #[test]
    fn every_agent_signal_passes_in_every_writing_and_a_persons_reads_do_not() {
        let config = Config::from_json(r#"{"agents": {"app_id": ["triage-*"]}}"#).unwrap();
        let engine = Engine::new(config);
        let mut registry = Registry::new();
        let issued = r#"{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventTime":"2026-11-29T10:00:00Z",
            "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAPERSON","arn":"arn:aws:sts::123456789012:assumed-role/ci/b"},
            "requestParameters":{"roleArn":"arn:aws:iam::123456789012:role/builder","tags":[{"key":"trailguard:agent","value":"true"}]},
            "responseElements":{"credentials":{"accessKeyId":"ASIATAGGED","expiration":"Nov 29, 2026, 11:00:00 AM"},
            "assumedRoleUser":{"assumedRoleId":"AROAB:run-1","arn":"arn:aws:sts::123456789012:assumed-role/builder/run-1"}}}"#;
        let issued = crate::event::parse_record(issued).unwrap();
        let (actor, session) = engine.issuing_offline(&issued).unwrap();
        registry = engine.build_registry(vec![(actor, session)]).sessions().cloned().fold(registry, |mut r, s| {
            r.insert(s);
            r
        });
        let filter = Prefilter::new(&engine).with_registry(&registry);
        let read = |identity: &str, extra: &str| {
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{identity},"eventTime":"2026-11-29T10:05:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","readOnly":true,"userAgent":"aws-cli/2.17.0{extra}","awsRegion":"eu-west-1"}}"#
            )
        };
        let session = |role: &str, name: &str, key: &str| {
            format!(
                r#"{{"type":"AssumedRole","principalId":"AROAX:{name}","arn":"arn:aws:sts::123456789012:assumed-role/{role}/{name}","accessKeyId":"{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/{role}","userName":"{role}"}}}}}}"#
            )
        };
        let sourced = r#"{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/dev/x","accessKeyId":"ASIAX","sessionContext":{"sourceIdentity":"Claude-Code"}}"#;
        let agents = [
            read(sourced, ""),
            read(&session("dev", "agent-run-1", "ASIAX"), ""),
            read(&session("team-ai-agent", "run", "ASIAX"), ""),
            read(
                r#"{"type":"IAMUser","userName":"ai-agent-bot","arn":"arn:aws:iam::123456789012:user/ai-agent-bot"}"#,
                "",
            ),
            read(&session("dev", "x", "ASIAX"), " app/triage-bot"),
            read(&session("builder", "run-1", "ASIATAGGED"), ""),
            read(&session("dev", "x", "ASIAX"), "").replace(
                r#""awsRegion""#,
                r#""additionalEventData":{"CalledViaAWSMCP":"aws-mcp.amazonaws.com"},"awsRegion""#,
            ),
        ];
        let triggered = |json: &str| {
            read_records(json.as_bytes())
                .unwrap()
                .iter()
                .flatten()
                .any(|r| engine.prepare_registered(r, &registry).is_some())
        };
        for agent in &agents {
            assert!(triggered(agent), "not an agent's read: {agent}");
            for writing in
                [agent.clone(), reencode(agent, &[false], &[true]), reencode(agent, &[true, false], &[false])]
            {
                assert!(filter.may_trigger(writing.as_bytes()), "dropped {writing}");
            }
            // JSON may write `/` as `\/`: the value cannot be read literally, so the text passes.
            let slashed = agent.replace('/', "\\/");
            assert!(triggered(&slashed) && filter.may_trigger(slashed.as_bytes()), "dropped {slashed}");
        }
        // A person's read calls, and the registry's agent without the registry, are passed over.
        for person in [
            read(&session("developer", "alice", "ASIAALICE"), ""),
            read(&session("builder", "run-1", "ASIATAGGED"), ""),
        ] {
            let without = Prefilter::new(&engine);
            assert!(!without.may_trigger(person.as_bytes()), "{person}");
        }
        assert_eq!(required_piece("arn:aws:iam::*:role/agent-*").as_deref(), Some("agent-"), "the role's name");
        assert_eq!(required_piece("claude*").as_deref(), Some("claude"));
        assert_eq!(required_piece("a\"b?cde*").as_deref(), Some("cde"), "no escapable character");
        assert_eq!(required_piece("*"), None, "no piece: every text may show an agent");
        let any = Engine::new(Config::from_json(r#"{"agents": {"session_name": ["*"]}}"#).unwrap());
        assert!(Prefilter::new(&any).may_trigger(read(&session("developer", "alice", "ASIAALICE"), "").as_bytes()));
        let alice = read(&session("developer", "alice", "ASIAALICE"), "");
        assert!(!triggered(&alice) && !filter.may_trigger(alice.as_bytes()), "{alice}");
        let mut lines = Vec::new();
        filter.for_each_line(format!("{alice}\n{}\n{alice}", agents[1]).as_bytes(), |_, pass| lines.push(pass));
        assert_eq!(lines, [false, true, false]);
    }

    #[test]
    fn harmless_traffic_is_passed_over() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        for (source, name) in
            [("s3.amazonaws.com", "GetObject"), ("kms.amazonaws.com", "Decrypt"), ("iam.amazonaws.com", "GetRole")]
        {
            let json = record(source, name, "AssumedRole");
            assert!(!triggers(&engine, &json));
            assert!(!filter.may_trigger(json.as_bytes()), "{json}");
            // The same call, with a name that the engine does trigger on elsewhere in the text, is still passed
            // over only when no key holds it.
            let decoy = json.replace(r#""awsRegion""#, r#""note":"AttachRolePolicy","awsRegion""#);
            assert!(!filter.may_trigger(decoy.as_bytes()), "{decoy}");
        }
        // Text the filter cannot see through is passed on to the parser.
        for opaque in
            [r#"{"eventSource":"s3.amazonaws.com"}"#, r#"{"eventName":3,"eventSource":"s3.amazonaws.com"}"#, "[1,"]
        {
            assert!(filter.may_trigger(opaque.as_bytes()), "{opaque}");
        }
    }

    #[test]
    fn service_traffic_is_recognised_only_as_the_actor() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        let service = record("sts.amazonaws.com", "AssumeRole", "AWSService");
        assert!(filter.may_trigger(service.as_bytes()) && filter.made_by_aws_service(&service));
        assert!(
            triggers(&engine, &service)
                && engine
                    .evaluate_offline(&read_records(service.as_bytes()).unwrap()[0].as_ref().unwrap().clone())
                    .findings
                    .is_empty()
        );
        for not_service in [
            record("sts.amazonaws.com", "AssumeRole", "AssumedRole"),
            // The type elsewhere (the session issuer's, a request parameter) is not the actor's.
            record("sts.amazonaws.com", "AssumeRole", "IAMUser")
                .replace(r#""awsRegion""#, r#""requestParameters":{"type":"AWSService"},"awsRegion""#),
            format!(r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{service}}}"#),
            service.replace(r#""userIdentity":{"type""#, r#""userIdentity":{"type":"IAMUser","x""#),
        ] {
            assert!(!filter.made_by_aws_service(&not_service), "{not_service}");
        }
        // The way CloudTrail writes service records is recognised without parsing; other writings are parsed.
        assert!(written_as_service_record(
            br#"{"eventVersion":"1.08","userIdentity":{"type":"AWSService","invokedBy":"x"}}"#
        ));
        assert!(written_as_service_record(br#"{"userIdentity":{"type":"AWSService"}}"#));
        assert!(!written_as_service_record(
            br#"{"eventVersion":"1.08","detail":{"userIdentity":{"type":"AWSService"}}}"#
        ));
        assert!(!written_as_service_record(br#"{"requestParameters":{"userIdentity":{"type":"AWSService"}}}"#));
        assert!(!written_as_service_record(br#"{"eventVersion":"1.\"08","userIdentity":{"type":"AWSService"}}"#));
        assert!(!filter.made_by_aws_service(r#"{"eventVersion":"1.08","userIdentity":{"type":"AWSServiceX"}}"#));
        assert!(filter.made_by_aws_service(
            r#"{ "eventTime": "x", "userIdentity": { "invokedBy": "a", "type": "AWSService" } }"#
        ));
        // A second actor later in the text makes the record unreadable (serde refuses duplicate keys): passing it
        // over loses no finding, only the report that it is malformed (the documented cost).
        let twice = service.replace(r#""eventSource""#, r#""userIdentity":{"type":"IAMUser"},"eventSource""#);
        assert!(read_records(twice.as_bytes()).unwrap()[0].is_err());
    }

    #[test]
    fn a_configured_call_is_watched() {
        for call in ["s3:GetObject", "s3:Get*", "s3:*"] {
            let engine = Engine::new(Config::from_json(&format!(r#"{{"sensitive_calls":["{call}"]}}"#)).unwrap());
            let json = record("s3.amazonaws.com", "GetObject", "AssumedRole");
            assert!(triggers(&engine, &json) && Prefilter::new(&engine).may_trigger(json.as_bytes()), "{call}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The proof, tested: on the fixtures and a synthetic day of traffic, in any writing, the filter never
        /// passes over a record that the engine's triggers match.
        #[test]
        fn never_drops_a_triggered_record(
            seed in 0u64..1000,
            escapes in proptest::collection::vec(proptest::bool::weighted(0.05), 1..40),
            spaces in proptest::collection::vec(proptest::bool::weighted(0.2), 1..10),
        ) {
            let engine = Engine::new(Config::default());
            let filter = Prefilter::new(&engine);
            let mut triggered = 0;
            for synthetic in crate::synth::generate(seed, 300, "123456789012", "us-east-1", "2026-11-01") {
                let writing = reencode(&synthetic.record.to_string(), &escapes, &spaces);
                if triggers(&engine, &writing) {
                    triggered += 1;
                    prop_assert!(filter.may_trigger(writing.as_bytes()), "dropped {}", writing);
                }
            }
            prop_assert!(triggered > 0, "the day must hold records that trigger rules");
        }

        /// And end to end: a day of JSON lines read through the pre-filter gives exactly the findings that reading
        /// every record gives.
        #[test]
        fn reading_through_the_prefilter_finds_the_same(
            seed in 0u64..1000,
            escapes in proptest::collection::vec(proptest::bool::weighted(0.02), 1..40),
        ) {
            let engine = Engine::new(Config::default());
            let filter = Prefilter::new(&engine);
            let day: Vec<String> = crate::synth::generate(seed, 1000, "123456789012", "us-east-1", "2026-11-01")
                .map(|s| reencode(&s.record.to_string(), &escapes, &[false]))
                .collect();
            let text = day.join("\n");
            let findings = |reading: crate::event::Reading| -> Vec<String> {
                reading.records.iter().flatten().flat_map(|r| engine.evaluate_offline(r).findings).map(|f| f.id).collect()
            };
            let all = findings(crate::event::read_lines(text.as_bytes(), 1, None));
            let filtered = crate::event::read_lines(text.as_bytes(), 1, Some(&filter));
            prop_assert!(filtered.passed_over > 0);
            prop_assert_eq!(findings(filtered), all);
        }
    }
}
