//! The engine: from one record to its findings.
//!
//! Evaluation runs in two pure steps around an optional look-up, so that the library never calls AWS:
//! 1. [`Engine::prepare`] reads the actor, picks the rules whose triggers match (most events match none and
//!    stop here, at the cost of a hash look-up), and reads the grant or trust change the event makes.
//! 2. [`Engine::needs`] lists what must be looked up in IAM (a customer managed policy's document, the actor
//!    role's tags); the detector Lambda fetches them, the offline scanner does not.
//!    Once those are answered, [`Engine::later_needs`] lists the updates whose use depends on who the actor turned
//!    out to be (a behaviour count, an agent's region), answered the same way.
//! 3. [`Engine::evaluate`] runs the rules with whatever was resolved and turns verdicts into findings.
//!
//! Failed calls (`errorCode`, or a failed console sign-in): a rule judges them as if they had succeeded, and a
//! verdict becomes an *attempt* finding one severity lower only when the call was refused for authorization or
//! authentication ([`CloudTrailRecord::refused`]), or when an AI agent made it (whatever the error). A person's
//! call that failed for another reason is no finding; rules that report every failure (root) keep theirs.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::change::{self, DocumentSource, Grant, TrustChange};
use crate::config::{Config, Mode};
use crate::event::{Actor, CloudTrailRecord};
use crate::finding::{Evidence, Finding, Remediation, SCHEMA_VERSION};
use crate::policy::{analyze, analyze_trust, managed, PolicyDocument};
use crate::rules::{registry, Context, GrantView, Name, RequiredText, Rule, Trigger, TrustView};
use crate::session::{self, Session};

/// The behaviour rule, whose count the engine declares as a need.
const BEHAVIOUR: &str = "agent-behaviour";
/// The new-region rule, whose memory of regions the engine declares as a need.
const NEW_REGION: &str = "agent-new-region";

/// Something the rules need from IAM for one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Need {
    /// A managed policy's document: the given version, or the default version.
    Policy {
        /// The account to ask in.
        account: String,
        /// The policy.
        arn: String,
        /// The version, or `None` for the default.
        version: Option<String>,
    },
    /// The tags of the role that issued the actor's session.
    RoleTags {
        /// The role's account.
        account: String,
        /// The role's name.
        role_name: String,
    },
    /// The session registry's entry for the access key that signed the call (an agent session recorded when its
    /// credentials were issued), live at the event's time.
    Session {
        /// The temporary access key id.
        access_key_id: String,
        /// The event's time, epoch seconds: an entry that expired before it is absent.
        at: i64,
    },
    /// One atomic count of the actor's behaviour (an update, not only a look-up: answered once per event).
    Count(crate::behaviour::Count),
    /// One use of a region by an agent identity, remembered (an update: answered once per event).
    Region(crate::regions::RegionUse),
}

/// The answers to [`Need`]s. What is missing counts as "not available", never as harmless.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Policy documents by `(arn, version)`: the document text, or why it could not be read.
    pub policies: HashMap<(String, Option<String>), Result<String, String>>,
    /// The actor role's tags, or why they could not be read.
    pub role_tags: Option<Result<Vec<(String, String)>, String>>,
    /// The actor's session in the registry: `Ok(None)` when it is not an agent session (or has expired), `Err`
    /// when the registry could not be read.
    pub session: Option<Result<Option<Session>, String>>,
    /// The behaviour count taken, and its answer: the evidence when this event crossed its threshold, `Ok(None)`
    /// otherwise.
    pub crossing: Option<(crate::behaviour::Count, Result<crate::behaviour::Crossing, String>)>,
    /// The region use remembered: the page when it is an agent identity's first use of a region after learning.
    pub region: Option<Result<crate::regions::Novelty, String>>,
}

/// A record the engine has read and found worth evaluating.
#[derive(Debug)]
pub struct Prepared<'r> {
    /// The record.
    pub record: &'r CloudTrailRecord,
    /// The actor, recognised by what needs no look-up: its free signals and, offline, the session registry in
    /// memory. [`Engine::evaluate`] judges it so unless a look-up answered.
    pub actor: Actor<'r>,
    rules: RuleSet,
    params: Option<Value>,
    /// Why `requestParameters` could not be read, when it is there but unreadable.
    params_error: Option<String>,
    grant: Option<Grant>,
    trust: Option<TrustChange>,
}

/// The result of evaluating one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// The findings, in rule order.
    pub findings: Vec<Finding>,
    /// Things a person should know that are not findings (a policy that could not be read, unknown actions).
    pub warnings: Vec<String>,
}

/// Why one event gave the findings it gave: for `trailguard explain`.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The actor, with agent recognition done (offline: without role tags).
    pub actor: Actor<'static>,
    /// Why no rule judged the event at all, when none did.
    pub skipped: Option<String>,
    /// What the event's policy grants, when it grants one (sentences, as `check-policy` prints them).
    pub grant: Option<(String, Vec<String>)>,
    /// Each rule: its id, and its verdict in words.
    pub verdicts: Vec<(&'static str, String)>,
    /// The findings.
    pub evaluation: Evaluation,
}

/// Where each trigger points, so that picking the rules for an event is a hash look-up.
#[derive(Default)]
struct TriggerIndex {
    /// By event source (`""` for any source), then by event name.
    exact: HashMap<String, HashMap<String, RuleSet, Fnv>, Fnv>,
    prefixes: Vec<(Option<String>, String, usize)>,
    root: RuleSet,
    agent_reads: RuleSet,
}

/// Rules by their position in the engine, as bits (there are twelve, at most 64): a record's triggered rules are
/// gathered, deduplicated and walked in rule order without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RuleSet(u64);

impl RuleSet {
    /// The most rules a set holds.
    const CAPACITY: usize = 64;

    fn insert(&mut self, rule: usize) {
        self.0 |= u32::try_from(rule).ok().and_then(|at| 1u64.checked_shl(at)).unwrap_or(0);
    }

    fn union(self, other: RuleSet) -> RuleSet {
        RuleSet(self.0 | other.0)
    }

    fn overlaps(self, other: RuleSet) -> bool {
        self.0 & other.0 != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules, in rule order.
    fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let rule = (bits != 0).then(|| bits.trailing_zeros() as usize)?;
            bits &= bits - 1;
            Some(rule)
        })
    }
}

/// FNV-1a for the trigger index: it is looked up for every record a scan reads, with short keys, where the
/// default hasher's resistance to crafted keys buys nothing (a crafted key only finds no rule) and costs most of
/// the look-up.
type Fnv = std::hash::BuildHasherDefault<FnvHasher>;

#[derive(Default)]
struct FnvHasher(Option<u64>);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0.unwrap_or(0xcbf2_9ce4_8422_2325);
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = Some(hash);
    }

    fn finish(&self) -> u64 {
        self.0.unwrap_or(0)
    }
}

/// The rules with their configuration.
pub struct Engine {
    config: Config,
    rules: Vec<&'static dyn Rule>,
    index: TriggerIndex,
    /// Each rule's required text, searchable (by the rule's position).
    required: Vec<Option<RequiredText>>,
    /// The behaviour and new-region rules, whose counts and memory the engine declares as needs.
    behaviour: RuleSet,
    new_region: RuleSet,
}

impl Engine {
    /// An engine with every rule that the configuration does not switch off.
    pub fn new(config: Config) -> Engine {
        let rules: Vec<&'static dyn Rule> =
            registry().into_iter().filter(|r| config.rule(r.id()).mode != Some(Mode::Off)).collect();
        debug_assert!(rules.len() <= RuleSet::CAPACITY, "a rule set holds {} rules", RuleSet::CAPACITY);
        let mut index = TriggerIndex::default();
        let (mut behaviour, mut new_region) = (RuleSet::default(), RuleSet::default());
        for (i, rule) in rules.iter().enumerate() {
            match rule.id() {
                BEHAVIOUR => behaviour.insert(i),
                NEW_REGION => new_region.insert(i),
                _ => {}
            }
            for trigger in rule.triggers(&config) {
                match trigger {
                    Trigger::RootActor => index.root.insert(i),
                    Trigger::AgentReads => index.agent_reads.insert(i),
                    Trigger::Calls { source, names, .. } => {
                        for name in names {
                            match name {
                                Name::Exact(n) => index
                                    .exact
                                    .entry(source.clone().unwrap_or_default())
                                    .or_default()
                                    .entry(n)
                                    .or_default()
                                    .insert(i),
                                Name::Prefix(p) => index.prefixes.push((source.clone(), p, i)),
                            }
                        }
                    }
                }
            }
        }
        let required = rules.iter().map(|r| r.required_text(&config).and_then(|t| RequiredText::new(&t))).collect();
        Engine { config, rules, index, required, behaviour, new_region }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The rules in force.
    pub fn rules(&self) -> &[&'static dyn Rule] {
        &self.rules
    }

    /// Reads what the rules need from a record, or `None` when no rule applies (the common, cheap case):
    /// no rule is triggered, AWS itself acted, or trailguard's own role made the call.
    pub fn prepare<'r>(&self, record: &'r CloudTrailRecord) -> Option<Prepared<'r>> {
        self.prepare_known(record, None)
    }

    /// [`Engine::prepare`] offline, where the session registry is in memory: a read-only call of a session the
    /// registry knows as an agent's triggers the identity-keyed rules too (the detector recognises only the
    /// signals the record shows at this step: no look-up before a rule is triggered).
    pub fn prepare_registered<'r>(
        &self,
        record: &'r CloudTrailRecord,
        registry: &session::Registry,
    ) -> Option<Prepared<'r>> {
        self.prepare_known(record, Some(registry))
    }

    fn prepare_known<'r>(
        &self,
        record: &'r CloudTrailRecord,
        registry: Option<&session::Registry>,
    ) -> Option<Prepared<'r>> {
        let (rules, read) = self.triggered(record, registry);
        if rules.is_empty() {
            return None;
        }
        // The actor and its recognition, read once: the identity-keyed trigger may have read them already.
        let actor = read.unwrap_or_else(|| self.read_actor(record, registry));
        if actor.aws_service || self.config.is_own_actor(&actor) {
            return None;
        }
        // A canary's exact call is a heartbeat, not a change to judge (a look-alike is judged).
        if crate::canary::recognise(&self.config, record).is_some() {
            return None;
        }
        // IAM events' grants and trust changes are read from the tree; other events need it only for a rule that
        // reads it.
        let wants_params = record.event_source == "iam.amazonaws.com"
            || rules.iter().any(|i| self.rules.get(i).is_some_and(|r| r.reads_params()));
        // (A guard in a `match` on `record.params()` would parse the request before the guard is tested.)
        let (params, params_error) = match wants_params.then(|| record.params()) {
            None => (None, None),
            Some(Ok(params)) => (params, None),
            Some(Err(e)) => (None, Some(e.to_string())),
        };
        let (grant, trust) = match (&params, record.event_source.as_str()) {
            (Some(p), "iam.amazonaws.com") => (
                change::grant(&record.event_name, p, record.response().as_ref()),
                change::trust_change(&record.event_name, p),
            ),
            _ => (None, None),
        };
        Some(Prepared { record, actor, rules, params, params_error, grant, trust })
    }

    /// The ids of the rules whose triggers the record matches (before any other check).
    pub fn triggered_rules(&self, record: &CloudTrailRecord) -> Vec<&'static str> {
        let (hits, _) = self.triggered(record, None);
        hits.iter().filter_map(|i| self.rules.get(i).map(|r| r.id())).collect()
    }

    /// The rules the record triggers, and the actor ([`Engine::read_actor`]) when deciding that read it.
    fn triggered<'r>(
        &self,
        record: &'r CloudTrailRecord,
        registry: Option<&session::Registry>,
    ) -> (RuleSet, Option<Actor<'r>>) {
        let mut hits = RuleSet::default();
        self.call_hits(&record.event_source, &record.event_name, |rule| hits.insert(rule));
        if !self.index.root.is_empty() && record.identity().kind.as_deref() == Some("Root") {
            hits = hits.union(self.index.root);
        }
        let missing = hits.union(self.index.agent_reads) != hits;
        let mut read = None;
        if missing {
            let (agent_reads, actor) = self.agent_reads(record, registry);
            if agent_reads {
                hits = hits.union(self.index.agent_reads);
            }
            read = actor;
        }
        (hits, read)
    }

    /// Whether the record is an agent's read-only call, for the identity-keyed [`Trigger::AgentReads`]: cheap
    /// tests first (read-only, not root), then the signals the record shows, then (offline) the registry in
    /// memory. Never a look-up: a session known only through the registry or role tags is not an agent here in
    /// the detector (its read calls do not arrive there either, see [`crate::patterns`]).
    /// Also returns the actor once read, so that it is not read twice.
    fn agent_reads<'r>(
        &self,
        record: &'r CloudTrailRecord,
        registry: Option<&session::Registry>,
    ) -> (bool, Option<Actor<'r>>) {
        if !crate::behaviour::reads(record) || record.identity().kind.as_deref() == Some("Root") {
            return (false, None);
        }
        let actor = Actor::from_record(record);
        if actor.aws_service {
            return (false, None);
        }
        let actor = self.recognised(actor, record, registry);
        (actor.agent.is_some(), Some(actor))
    }

    /// The record's actor, recognised by what needs no look-up: its free signals and, offline, the registry.
    fn read_actor<'r>(&self, record: &'r CloudTrailRecord, registry: Option<&session::Registry>) -> Actor<'r> {
        self.recognised(Actor::from_record(record), record, registry)
    }

    /// `actor` with its agency by the free signals, or else by its session's entry in the offline `registry`.
    fn recognised<'r>(
        &self,
        mut actor: Actor<'r>,
        record: &CloudTrailRecord,
        registry: Option<&session::Registry>,
    ) -> Actor<'r> {
        actor.agent = self.config.agents.recognise(&actor, None, None);
        if actor.agent.is_none() {
            // The free signals found nothing, so the registry's entry is all that recognition with it can add.
            let session = registry.and_then(|r| r.get(self.session_key(&actor)?, event_seconds(record)));
            actor.agent = session.and_then(|s| s.agent.clone());
        }
        actor
    }

    /// Whether some rule is keyed by the actor's identity on read-only calls ([`Trigger::AgentReads`]).
    pub fn reads_agents(&self) -> bool {
        !self.index.agent_reads.is_empty()
    }

    /// Calls `hit` with every rule a call to `source` named `name` triggers.
    pub(crate) fn call_hits(&self, source: &str, name: &str, mut hit: impl FnMut(usize)) {
        for source in [source, ""] {
            if let Some(rules) = self.index.exact.get(source).and_then(|names| names.get(name)) {
                rules.iter().for_each(&mut hit);
            }
        }
        // Most names share no first letter with any prefix: compared first, that spares the full comparisons.
        let first = name.as_bytes().first();
        for (prefix_source, prefix, rule) in &self.index.prefixes {
            if prefix.as_bytes().first().is_none_or(|b| Some(b) == first)
                && name.starts_with(prefix.as_str())
                && prefix_source.as_deref().is_none_or(|s| s == source)
            {
                hit(*rule);
            }
        }
    }

    /// Whether a call to `source` named `name` triggers some rule, whoever made it.
    pub fn call_triggers(&self, source: &str, name: &str) -> bool {
        let mut any = false;
        self.call_hits(source, name, |_| any = true);
        any
    }

    /// What must be looked up in IAM before [`Engine::evaluate`] can judge the event fully.
    pub fn needs(&self, prepared: &Prepared) -> Vec<Need> {
        let mut needs = Vec::new();
        if let Some(Grant { source: DocumentSource::Managed { arn, version }, .. }) = &prepared.grant {
            if managed::summary(arn).is_none() {
                let account = prepared.record.account().unwrap_or_default().to_owned();
                needs.push(Need::Policy { account, arn: arn.clone(), version: version.clone() });
            }
        }
        needs.extend(self.actor_needs(prepared.record, &prepared.actor));
        needs
    }

    /// The updates to make for the event once [`Engine::needs`] are resolved: the behaviour count, and an agent's
    /// use of a region. Whether a read-only call counts (`services`) and whether a region is remembered depend on
    /// the actor being an agent, which a look-up may have decided.
    pub fn later_needs(&self, prepared: &Prepared, resolved: &Resolved) -> Vec<Need> {
        let (counts, regions) = (prepared.rules.overlaps(self.behaviour), prepared.rules.overlaps(self.new_region));
        if !counts && !regions {
            return Vec::new();
        }
        let is_agent = self.agent_of(prepared, resolved).is_some();
        let settings = &self.config.behaviour;
        let mut needs = Vec::new();
        if counts {
            let count = crate::behaviour::observe(prepared.record, &prepared.actor, is_agent, settings);
            needs.extend(count.map(Need::Count));
        }
        if regions && is_agent {
            let used = crate::regions::observe(prepared.record, &prepared.actor, settings.region_learning_days);
            needs.extend(used.map(Need::Region));
        }
        needs
    }

    /// What agent recognition of `actor` needs looked up: the registry entry of its access key, the role's tags.
    /// Nothing when it is already recognised.
    fn actor_needs(&self, record: &CloudTrailRecord, actor: &Actor) -> Vec<Need> {
        let mut needs = Vec::new();
        if actor.agent.is_some() {
            return needs;
        }
        if let Some(key) = self.session_key(actor) {
            needs.push(Need::Session { access_key_id: key.to_owned(), at: event_seconds(record) });
        }
        if self.config.agents.needs_role_tags(actor) {
            if let (Some(role_name), Some(account)) = (&actor.role_name, &actor.account) {
                needs.push(Need::RoleTags { account: account.to_string(), role_name: role_name.to_string() });
            }
        }
        needs
    }

    /// The access key whose registry entry agent recognition of `actor` needs ([`Need::Session`]), if any.
    fn session_key<'a>(&self, actor: &'a Actor) -> Option<&'a str> {
        let needed = self.config.agents.needs_session(actor);
        actor.access_key_id.as_deref().filter(|_| needed)
    }

    /// The actor's agency: without a look-up's answer, as prepared (recognised once, without copying it).
    fn agent_of<'p>(
        &self,
        prepared: &'p Prepared,
        resolved: &Resolved,
    ) -> std::borrow::Cow<'p, Option<crate::event::AgentMatch>> {
        let looked_up = matches!(resolved.role_tags, Some(Ok(_))) || matches!(resolved.session, Some(Ok(Some(_))));
        if looked_up {
            std::borrow::Cow::Owned(self.recognise(&prepared.actor, resolved))
        } else {
            std::borrow::Cow::Borrowed(&prepared.actor.agent)
        }
    }

    /// The agent recognition of a record's actor with what was looked up.
    fn recognise(&self, actor: &Actor, resolved: &Resolved) -> Option<crate::event::AgentMatch> {
        let tags = resolved.role_tags.as_ref().and_then(|t| t.as_ref().ok());
        let session = resolved.session.as_ref().and_then(|s| s.as_ref().ok()).and_then(Option::as_ref);
        self.config.agents.recognise(actor, tags.map(Vec::as_slice), session)
    }

    /// Reads a call that issues temporary credentials (`AssumeRole*`, `GetFederationToken`): the session it
    /// created, and what must be looked up to decide whether it is an agent's (the caller's registry entry and
    /// role tags). `None` for any other record, and for AWS's own or trailguard's own calls.
    pub fn issuing(&self, record: &CloudTrailRecord) -> Option<(session::Issued, Vec<Need>)> {
        let (mut actor, issued) = self.issuing_offline(record)?;
        actor.agent = self.config.agents.recognise(&actor, None, None);
        let mut needs = self.actor_needs(record, &actor);
        // The caller's own entry, even when free signals already say it is an agent: the lineage needs its key.
        if let Some(key) = actor.access_key_id.as_ref().filter(|k| k.starts_with("ASIA")) {
            if !needs.iter().any(|n| matches!(n, Need::Session { .. })) {
                needs.push(Need::Session { access_key_id: key.to_string(), at: event_seconds(record) });
            }
        }
        Some((issued, needs))
    }

    /// [`Engine::issuing`] for the offline registry: the caller and the session, nothing to look up.
    /// The caller is owned: the registry is built once every issuing call of an archive is read.
    pub fn issuing_offline(&self, record: &CloudTrailRecord) -> Option<(Actor<'static>, session::Issued)> {
        let issued = session::issued(record)?;
        let actor = Actor::from_record(record);
        if actor.aws_service || self.config.is_own_actor(&actor) {
            return None;
        }
        Some((actor.into_owned(), issued))
    }

    /// The offline registry from every issuing call of an archive, in any order: they are taken in the order
    /// they were issued (a parent is always issued before its child), so the result does not depend on the order
    /// of files or records. Role tags are not looked up offline.
    pub fn build_registry(&self, calls: &[(Actor, session::Issued)]) -> session::Registry {
        // The calls are large: their order is sorted, not the calls themselves, and only agents' sessions are
        // copied into the registry.
        let mut order: Vec<usize> = (0..calls.len()).collect();
        let key = |at: &usize| calls.get(*at).map(|(_, issued)| (issued.session.issued, &issued.session.access_key_id));
        order.sort_by(|a, b| key(a).cmp(&key(b)));
        let agents = &self.config.agents;
        let mut registry = session::Registry::new();
        for (actor, issued) in order.into_iter().filter_map(|at| calls.get(at)) {
            let parent = actor.access_key_id.as_deref().and_then(|k| registry.get(k, issued.session.issued));
            let caller = agents.recognise(actor, None, parent);
            // Whether it is an agent's does not depend on its parent's key, only the match's value does.
            if agents.recognise_session(&issued.session, caller.as_ref()).is_none() {
                continue;
            }
            let mut session = issued.session.clone();
            session.parent = caller.as_ref().and(actor.access_key_id.as_deref().map(str::to_owned));
            session.agent = agents.recognise_session(&session, caller.as_ref());
            registry.insert(session);
        }
        registry
    }

    /// Prepares and evaluates offline: the registry answers the session look-up and `counters` the behaviour
    /// counts (nothing else is looked up).
    pub fn evaluate_registered(
        &self,
        record: &CloudTrailRecord,
        registry: &session::Registry,
        counters: &crate::behaviour::Counters,
    ) -> Evaluation {
        self.evaluate_answering(record, registry, |count| counters.count(count), |used| counters.regions.see(used))
    }

    /// [`Engine::evaluate_registered`] with the behaviour count (at most one per event) answered by `count` and
    /// the use of a region (at most one) by `region`: `scan` takes both in input order, apart from the evaluation;
    /// the backtest's shards record both for Athena (a window or an identity's history may span shards) and answer
    /// "no crossing", "not new".
    pub fn evaluate_answering(
        &self,
        record: &CloudTrailRecord,
        registry: &session::Registry,
        mut count: impl FnMut(&crate::behaviour::Count) -> crate::behaviour::Crossing,
        mut region: impl FnMut(&crate::regions::RegionUse) -> crate::regions::Novelty,
    ) -> Evaluation {
        // Of [`Engine::needs`], offline answers only the session's, from memory while preparing: policies and role
        // tags are not looked up.
        let Some(prepared) = self.prepare_registered(record, registry) else { return Evaluation::default() };
        let mut resolved = Resolved::default();
        for need in self.later_needs(&prepared, &resolved) {
            match need {
                Need::Count(counted) => {
                    let crossing = count(&counted);
                    resolved.crossing = Some((counted, Ok(crossing)));
                }
                Need::Region(used) => resolved.region = Some(Ok(region(&used))),
                Need::Session { .. } | Need::Policy { .. } | Need::RoleTags { .. } => {}
            }
        }
        self.evaluate(&prepared, &resolved)
    }

    /// The session an issuing call created, when it is an agent's (to be recorded in the registry): its own tags
    /// or source identity say so, or its caller was an agent (with `resolved` answering [`Engine::issuing`]'s
    /// needs). `None` when the session is no agent's: only agent sessions are recorded.
    pub fn agent_session(
        &self,
        record: &CloudTrailRecord,
        issued: session::Issued,
        resolved: &Resolved,
    ) -> Option<Session> {
        let actor = Actor::from_record(record);
        let caller = self.recognise(&actor, resolved);
        let mut session = issued.session;
        if caller.is_none() {
            session.parent = None;
        }
        session.agent = self.config.agents.recognise_session(&session, caller.as_ref());
        session.agent.is_some().then_some(session)
    }

    /// Runs the triggered rules. Anything in `resolved` is used; anything missing is reported as unavailable.
    pub fn evaluate(&self, prepared: &Prepared, resolved: &Resolved) -> Evaluation {
        let record = prepared.record;
        // Copied only when a look-up changed its recognition: most actors are judged as prepared.
        let actor = match self.agent_of(prepared, resolved) {
            std::borrow::Cow::Owned(agent) if agent != prepared.actor.agent => {
                std::borrow::Cow::Owned(Actor { agent, ..prepared.actor.clone() })
            }
            _ => std::borrow::Cow::Borrowed(&prepared.actor),
        };
        let mut warnings = Vec::new();
        if let Some(e) = &prepared.params_error {
            warnings.push(format!("`requestParameters` could not be read, rules judged the event without them: {e}"));
        }
        if let Some(Err(e)) = &resolved.role_tags {
            warnings.push(format!("role tags could not be read, agent recognition used other signals only: {e}"));
        }
        if let Some((_, Err(e))) = &resolved.crossing {
            warnings.push(format!("behaviour counters could not be updated, this event was not counted: {e}"));
        }
        if let Some(Err(e)) = &resolved.region {
            warnings.push(format!("the agent's regions could not be updated, this call's region was not judged: {e}"));
        }
        if let Some(Err(e)) = &resolved.session {
            warnings
                .push(format!("session registry could not be read, agent recognition used other signals only: {e}"));
        }
        let grant = prepared.grant.as_ref().map(|g| self.view_grant(g, resolved));
        if let Some(view) = &grant {
            if let Some(reason) = &view.unavailable {
                warnings.push(format!("{}: {reason}", view.subject()));
            }
            if let Some(g) = view.grants.as_ref().filter(|g| !g.unknown_actions.is_empty()) {
                warnings.push(format!("unknown actions in {}: {}", view.subject(), g.unknown_actions.join(", ")));
            }
        }
        let trust = prepared.trust.as_ref().map(|change| TrustView {
            change: change.clone(),
            issues: match &change.document {
                Ok(doc) => Ok(analyze_trust(doc, &self.config.known(record.account()))),
                Err(e) => Err(e.to_string()),
            },
        });
        if let Some(TrustView { issues: Err(e), change }) = &trust {
            warnings.push(format!("trust policy of role {} could not be read: {e}", change.role_name));
        }
        let ctx = Context {
            record,
            actor: &actor,
            params: prepared.params.as_ref(),
            grant: grant.as_ref(),
            trust: trust.as_ref(),
            config: &self.config,
            crossing: match &resolved.crossing {
                Some((counted, Ok(Some(evidence)))) => Some((counted.kind, evidence.as_slice())),
                _ => None,
            },
            new_region: match &resolved.region {
                Some(Ok(Some(new))) => Some(new),
                _ => None,
            },
            required: None,
        };
        let account = record.account();
        let mut verdicts = Vec::new();
        for i in prepared.rules.iter() {
            let Some(rule) = self.rules.get(i) else { continue };
            if self.config.allows(rule.id(), &actor, account) {
                continue;
            }
            let ctx = Context { required: self.required.get(i).and_then(Option::as_ref), ..ctx };
            verdicts.extend(rule.evaluate(&ctx).into_iter().map(|v| (*rule, v)));
        }
        // Failed calls: only a call refused for authorization or authentication is an attempt (or any failed call
        // by an AI agent, which probes). A person's call that failed otherwise (not found, validation, conflict)
        // tried nothing the rules fear: no finding, except from rules that report every failure (root).
        if record.failed() && !record.refused() && actor.agent.is_none() {
            verdicts.retain(|(r, _)| r.reports_every_failure());
        }
        // A refused call counts toward `agent-behaviour` once, rather than paging one by one from the general rule.
        let counted = record.error_code.is_some() && record.refused() && prepared.rules.overlaps(self.behaviour);
        if counted {
            verdicts.retain(|(r, _)| !r.yields_to_others());
        }
        if verdicts.iter().any(|(r, _)| !r.yields_to_others()) {
            verdicts.retain(|(r, _)| !r.yields_to_others());
        }
        // A crossing is one finding per counter, whichever event reached it (offline, that may depend on the order
        // records are read): its id comes from the counter.
        let crossed = match &resolved.crossing {
            Some((counted, Ok(Some(_)))) => Some(counted.key.as_str()),
            _ => None,
        };
        let findings = verdicts
            .into_iter()
            .map(|(rule, verdict)| {
                let mut finding = self.finding(record, &actor, rule, verdict);
                if let Some(key) = crossed.filter(|_| rule.id() == BEHAVIOUR) {
                    finding.id = crossing_id(key);
                }
                finding
            })
            .collect();
        Evaluation { findings, warnings }
    }

    /// Says, rule by rule, why the event gave the findings it gave (offline: nothing is looked up).
    pub fn explain(&self, record: &CloudTrailRecord) -> Explanation {
        let mut actor = Actor::from_record(record);
        actor.agent = self.config.agents.recognise(&actor, None, None);
        let triggered = self.triggered_rules(record);
        let skipped = if actor.aws_service {
            Some("AWS itself acted (an AWS service event or an AWSService identity)".to_owned())
        } else if self.config.is_own_actor(&actor) {
            Some("the call was made by one of trailguard's own roles".to_owned())
        } else if crate::canary::recognise(&self.config, record).is_some() {
            Some("the call is trailguard's canary (its exact role and call): a heartbeat".to_owned())
        } else if triggered.is_empty() {
            Some(format!("no rule needs {} {}", record.event_source, record.event_name))
        } else {
            None
        };
        let prepared = self.prepare(record);
        let grant = prepared.as_ref().and_then(|p| p.grant.as_ref()).map(|g| {
            let view = self.view_grant(g, &Resolved::default());
            let said = match (&view.grants, &view.unavailable) {
                (Some(grants), _) => grants.describe(),
                (None, Some(reason)) => vec![reason.clone()],
                (None, None) => Vec::new(),
            };
            (view.subject(), said)
        });
        let evaluation = match &prepared {
            Some(p) => self.evaluate(p, &Resolved::default()),
            None => Evaluation::default(),
        };
        let verdicts = registry()
            .into_iter()
            .map(|rule| {
                let id = rule.id();
                let findings: Vec<&Finding> = evaluation.findings.iter().filter(|f| f.rule == id).collect();
                let verdict = if !self.rules.iter().any(|r| r.id() == id) {
                    "off by configuration".to_owned()
                } else if !triggered.contains(&id) {
                    "not its event".to_owned()
                } else if skipped.is_some() {
                    "not judged (see above)".to_owned()
                } else if self.config.allows(id, &actor, record.account()) {
                    "actor or account allow-listed for this rule".to_owned()
                } else if findings.is_empty()
                    && record.failed()
                    && !record.refused()
                    && actor.agent.is_none()
                    && !rule.reports_every_failure()
                {
                    format!(
                        "the call failed ({}) for a reason other than authorization: a person's such failure is no attempt",
                        record.error_code.as_deref().unwrap_or("error")
                    )
                } else if findings.is_empty() && rule.yields_to_others() && !evaluation.findings.is_empty() {
                    "left to the more specific rule that flagged the event".to_owned()
                } else if findings.is_empty() && !evaluation.findings.is_empty() {
                    "judged: nothing beyond what the findings above say".to_owned()
                } else if findings.is_empty() {
                    "judged: nothing to flag".to_owned()
                } else {
                    findings
                        .iter()
                        .map(|f| format!("FINDING {}: {}", f.severity, f.title))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                (id, verdict)
            })
            .collect();
        Explanation { actor: actor.into_owned(), skipped, grant, verdicts, evaluation }
    }

    /// Prepares and evaluates with nothing looked up: what the offline scanner sees.
    pub fn evaluate_offline(&self, record: &CloudTrailRecord) -> Evaluation {
        match self.prepare(record) {
            Some(prepared) => self.evaluate(&prepared, &Resolved::default()),
            None => Evaluation::default(),
        }
    }

    fn view_grant(&self, grant: &Grant, resolved: &Resolved) -> GrantView {
        let (parsed, raw, unavailable) = match &grant.source {
            DocumentSource::Request(Ok(doc), raw) => (Some(doc.clone()), Some(raw.clone()), None),
            DocumentSource::Request(Err(e), raw) => {
                (None, Some(raw.clone()), Some(format!("document could not be read: {e}")))
            }
            DocumentSource::Managed { arn, version } => {
                let text = managed::summary(arn)
                    .map(|s| Ok(s.to_owned()))
                    .or_else(|| resolved.policies.get(&(arn.clone(), version.clone())).cloned());
                match text {
                    Some(Ok(text)) => match crate::policy::document::decode_json_text(&text) {
                        Ok(json) => match PolicyDocument::from_value(&json) {
                            Ok(doc) => (Some(doc), Some(json), None),
                            Err(e) => (None, Some(json), Some(format!("document could not be read: {e}"))),
                        },
                        Err(e) => (None, None, Some(format!("document could not be read: {e}"))),
                    },
                    Some(Err(e)) => (None, None, Some(format!("document not available: {e}"))),
                    None => (None, None, Some("document not available (not looked up)".to_owned())),
                }
            }
            DocumentSource::None => (None, None, None),
        };
        GrantView { grant: grant.clone(), grants: parsed.as_ref().map(analyze), document: parsed, raw, unavailable }
    }

    fn finding(
        &self,
        record: &CloudTrailRecord,
        actor: &Actor,
        rule: &dyn Rule,
        verdict: crate::rules::Verdict,
    ) -> Finding {
        let attempt = record.failed() && !rule.judges_failures_itself();
        let mut remediation = verdict.remediation;
        let mut title = verdict.title;
        let mut severity = verdict.severity;
        if attempt {
            // A failed call changed nothing: there is nothing to undo, only an actor to stop.
            remediation.retain(|r| {
                matches!(
                    r,
                    Remediation::RevokeSession { .. }
                        | Remediation::DenySsoUserInPermissionSet { .. }
                        | Remediation::DeactivateAccessKey { .. }
                        | Remediation::RevokeUserSessions { .. }
                )
            });
            severity = severity.lowered();
            title = format!("Attempt: {title}");
        }
        let mut notes = verdict.notes;
        if let Some(agent) = actor.agent.as_ref().filter(|a| a.rests_on_role_tag()) {
            if !remediation.is_empty() && !self.config.remediation.trust_role_tags {
                notes.push(format!(
                    "Not remediated as an agent: recognised only by role tag `{}`, which anyone with iam:TagRole on \
                     the role can set. It is handled as a person's session (remediation.humans); set \
                     remediation.trust_role_tags once the tag keys are protected (infra/scp.json).",
                    agent.value
                ));
            }
        }
        Finding {
            schema_version: SCHEMA_VERSION,
            id: finding_id(record, rule.id(), &verdict.target),
            rule: rule.id().to_owned(),
            severity,
            title,
            description: rule.description().to_owned(),
            attempt,
            account: record.account().map(str::to_owned),
            region: record.aws_region.clone(),
            time: record.event_time.clone(),
            event_id: record.event_id.clone(),
            event_source: record.event_source.clone(),
            event_name: record.event_name.clone(),
            error_code: record.error_code.clone(),
            actor: actor.clone().into_owned(),
            target: verdict.target,
            evidence: Evidence { notes, statements: verdict.statements, document: verdict.document },
            remediable: !remediation.is_empty(),
            remediation,
        }
    }
}

/// The event's time in seconds since the epoch (0 when it has none: then every registry entry is live).
fn event_seconds(record: &CloudTrailRecord) -> i64 {
    record.event_time.as_deref().and_then(session::parse_time).unwrap_or(0)
}

/// A behaviour finding's id: its counter's (session, kind, window).
fn crossing_id(key: &str) -> String {
    let hash =
        Sha256::new().chain_update(BEHAVIOUR.as_bytes()).chain_update([0]).chain_update(key.as_bytes()).finalize();
    crate::finding::hex(hash.get(..16).unwrap_or_default())
}

/// Same event, rule and target: same id. Without an event id, the event's own fields stand in for it.
fn finding_id(record: &CloudTrailRecord, rule: &str, target: &crate::finding::Target) -> String {
    let mut hash = Sha256::new();
    for part in [
        rule,
        record.event_id.as_deref().unwrap_or_default(),
        record.event_time.as_deref().unwrap_or_default(),
        &record.event_source,
        &record.event_name,
        record.identity().arn.as_deref().unwrap_or_default(),
        record.request_parameters.as_ref().map(|r| r.get()).unwrap_or_default(),
        &target.kind,
        target.name.as_deref().unwrap_or_default(),
        target.policy_arn.as_deref().unwrap_or_default(),
        target.policy_name.as_deref().unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    crate::finding::hex(hash.finalize().get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::RuleSet;

    #[test]
    fn a_rule_set_holds_each_rule_once_in_rule_order() {
        assert!(crate::rules::registry().len() <= RuleSet::CAPACITY, "every rule has a bit");
        let mut set = RuleSet::default();
        assert!(set.is_empty());
        for rule in [11, 0, 5, 11, 63] {
            set.insert(rule);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 5, 11, 63]);
        let mut other = RuleSet::default();
        other.insert(7);
        assert!(!set.overlaps(other));
        assert_eq!(set.union(other).iter().collect::<Vec<_>>(), [0, 5, 7, 11, 63]);
        assert!(set.union(other).overlaps(other));
    }
}
