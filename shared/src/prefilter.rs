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
//! those keys that the engine's trigger index matches. The real pair is always among the pairs it tries. A text
//! with one `"eventName"` key whose value no rule is triggered by under any source has no such pair, whatever
//! its sources: it is passed over once some `eventSource` is seen written literally, without reading the others.
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
//! its characters is written literally, side by side. The access key recognition compares is the value of
//! `userIdentity.accessKeyId`; without `\u` its key is written `"accessKeyId"` as is. So when the call test
//! passes a text over, it is passed on anyway if it holds, ignoring ASCII case, any glob's run or `ViaAWSMCP`;
//! if some value under an `"accessKeyId"` key is one the registry knows or cannot be read literally; if some glob
//! has no such run; or if the text is not all ASCII (case-insensitive matching there compares Unicode
//! characters). The access keys are looked up one value at a time, so the registry's size does not matter. What
//! this costs on a trail with few agents is measured, not argued (README, "Agents").
//!
//! Rules whose verdicts all require some text ([`crate::rules::Rule::required_text`]: `guardrail-tampering` needs
//! one of trailguard's names, and is triggered by every `AssumeRole`) are judged the same way: a call only such
//! rules are triggered by is passed on only when its text holds, ignoring ASCII case, a piece of theirs (searched
//! in the same lowercased copy), or is not all ASCII. Each piece is a literal run without a character JSON may
//! escape, so the argument above holds for it word for word.
//!
//! How it searches (`Search`). The keys it reads (`"eventName"`, `"accessKeyId"`, `"Root"`) and the pieces it
//! looks for (the agent globs' runs and `ViaAWSMCP`, the session-tag keys' runs, the rules' required text) are
//! found in one search over an ASCII-lowercased copy of the text (the same matches as a case-insensitive search:
//! both fold ASCII letters only), a chunk at a time, and each key is then checked as written, case and all. On
//! CloudTrail text every pass over the bytes costs about as much as the next; one search for all of them costs
//! about as much as a search for the pieces alone plus a tenth (a case-insensitive automaton over every byte cost
//! about 40% of a scan). Why a match never hides a key or a piece that matters is argued at `Search`.
//!
//! Two more answers for the calls that issue credentials ([`Verdict`]), which the scan's first pass reads for the
//! agent-session registry. `may_issue`: the argument above, for the issuing names instead of the triggers (one
//! name written literally, and not an issuing one, means the record is not an issuing call). `shows_agent`: a
//! session is an agent's when its issuing call's own values match an agent glob or a session-tag key that marks an
//! agent, or when its caller is an agent ([`crate::event::AgentMatchers::recognise_session`]); the glob runs and
//! the session-tag keys' runs are pieces like the others, so a call whose text holds none of them (and can be
//! searched) makes an agent's session only through its caller.
//!
//! A record the byte test passes on gets one more cheap look before it is parsed in full
//! ([`Prefilter::made_by_aws_service`]): the engine never judges what AWS itself did.
//!
//! What it cannot tell: a record it passes over is not type-checked, so a malformed record there is counted as
//! read rather than reported as unreadable (`scan --no-prefilter` checks every record).

use std::borrow::Cow;
use std::collections::HashSet;

use aho_corasick::{packed, AhoCorasick, Input, MatchKind, Span};
use memchr::memmem::{self, Finder};
use serde::Deserialize;

use crate::engine::Engine;
use crate::event::AgentMatchers;
use crate::rules::{Name, Trigger};
use crate::session::{Registry, ISSUING_EVENTS};

/// The pre-filter for one engine's triggers.
pub struct Prefilter<'e> {
    engine: &'e Engine,
    /// One search for everything the filter looks for in a text ([`Search`]); `None` when it could not be built
    /// (more needles than memory allows), and then every text is passed on.
    search: Option<Search>,
    /// Some rule reads agents' calls ([`Trigger::AgentReads`]).
    reads_agents: bool,
    /// Some agent glob has no literal piece, and a rule reads agents' calls: every text may show an agent.
    every_text_an_agent: bool,
    /// Some agent glob or session-tag key has no literal piece: every issuing call may make an agent's session.
    every_issuing_an_agent: bool,
    /// The registry's access keys (offline); empty without a registry.
    keys: HashSet<Vec<u8>, foldhash::fast::FixedState>,
    /// The rules (one bit each, by index) whose calls are judged by their text: those with required text (at most
    /// the first 64 rules).
    gated: u64,
    /// Off when some trigger name could be written with an escape other than `\u`.
    sound: bool,
    /// `"event`: the start of both keys the triggers compare, `"eventName"` and `"eventSource"`.
    event_key: Finder<'static>,
    /// `"eventSource"`, for a text whose one name is known.
    source_key: Finder<'static>,
    /// Every name some rule is triggered by, under any source.
    names: TriggerNames,
}

/// How one text (a line, or a whole input) is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Some record in it may trigger a rule: it goes to the parser.
    pub may_trigger: bool,
    /// Some record in it may be a call that issues credentials ([`ISSUING_EVENTS`]): its one event name is one,
    /// or its name cannot be told without parsing (no single name written literally, or a `\u` escape).
    pub may_issue: bool,
    /// Some value in it may be an agent signal or a session tag that marks an agent ([`AgentMatchers`]): it holds,
    /// ignoring ASCII case, the literal piece of an agent glob, of a session-tag key or the MCP marker, or it
    /// cannot be searched (a `\u` escape, not all ASCII). Without one, a call that issues credentials makes an
    /// agent's session only by inheriting its caller's agency ([`AgentMatchers::recognise_session`]): the
    /// registry needs it only when its caller's access key is an agent's.
    pub shows_agent: bool,
}

impl<'e> Prefilter<'e> {
    /// The pre-filter for `engine`'s triggers.
    pub fn new(engine: &'e Engine) -> Prefilter<'e> {
        let triggers = calls(engine);
        let watches_root = engine.rules().iter().any(|r| r.triggers(engine.config()).contains(&Trigger::RootActor));
        let plain = |text: &str| !text.bytes().any(|b| b == b'"' || b == b'\\' || b == b'/' || b < 0x20);
        let sound = triggers.iter().all(|(source, name)| source.as_deref().is_none_or(plain) && plain(name.text()));
        let reads_agents = engine.reads_agents();
        let matchers = &engine.config().agents;
        let (signals, tags) = (signal_pieces(matchers), tag_pieces(matchers));
        let mut mentions = Vec::new();
        for (index, rule) in engine.rules().iter().enumerate().take(64) {
            let text = rule.required_text(engine.config()).filter(|text| !text.is_empty());
            mentions.extend(text.map(|pieces| (1u64 << index, pieces)));
        }
        let mut keys = vec![Field::EventName];
        keys.extend(watches_root.then_some(Field::RootType));
        // Access keys are read only where a registry can pass a text on: agents' calls are read, by their signals.
        keys.extend((reads_agents && signals.is_some()).then_some(Field::AccessKeyId));
        let pieces = Pieces {
            signals: signals.as_deref().unwrap_or_default(),
            tags: tags.as_deref().unwrap_or_default(),
            mentions: &mentions,
        };
        // Failing to build (more needles than memory allows) leaves the filter passing every text.
        let (search, sound) = match Search::new(&keys, &pieces) {
            Some(search) => (Some(search), sound),
            None => (None, false),
        };
        Prefilter {
            engine,
            search,
            reads_agents,
            every_text_an_agent: reads_agents && signals.is_none(),
            every_issuing_an_agent: signals.is_none() || tags.is_none(),
            keys: HashSet::default(),
            gated: mentions.iter().fold(0, |gated, (rule, _)| gated | rule),
            sound,
            event_key: Finder::new(br#""event"#).into_owned(),
            source_key: Finder::new(br#""eventSource""#).into_owned(),
            names: TriggerNames::new(&triggers),
        }
    }

    /// The pre-filter for [`Engine::prepare_registered`] with `registry`: the registry's agent sessions' access
    /// keys pass too.
    pub fn with_registry(mut self, registry: &Registry) -> Prefilter<'e> {
        if self.reads_access_keys() {
            self.keys = registry.sessions().map(|s| s.access_key_id.as_bytes().to_vec()).collect();
        }
        self
    }

    /// Whether a registry can change this filter's verdicts: then [`Line::access_keys`] are read, and they are all
    /// that a registry looks up ([`Prefilter::with_registry`]). Not when no rule reads agents' calls, or every
    /// text is passed on already.
    pub fn reads_access_keys(&self) -> bool {
        self.search.as_ref().is_some_and(|search| search.reads(Field::AccessKeyId))
    }

    /// `false` only when no record in `json` can trigger a rule (see the module's documentation).
    pub fn may_trigger(&self, json: &[u8]) -> bool {
        let scanned = self.scan(json);
        self.judge_text(json, 0, &scanned.hits, !scanned.escapes.is_empty(), || scanned.ascii).may_trigger
    }

    /// A second look at one record the byte test passed on: whether an AWS service made it (`userIdentity.type`
    /// `AWSService`), which the engine never judges ([`Engine::prepare`]). Only the actor's type is read, not
    /// the record: service traffic such as `sts:AssumeRole` for Lambda is common and matches a trigger.
    pub fn made_by_aws_service(&self, record: &str) -> bool {
        made_by_aws_service(record)
    }

    /// [`Search::find`], or no needle found when there is no search.
    fn scan(&self, text: &[u8]) -> Scanned {
        match &self.search {
            Some(search) => search.find(text),
            None => {
                let mut scanned = Scanned { ascii: text.is_ascii(), ..Scanned::default() };
                scanned.see_ends(text, 0, text);
                scanned
            }
        }
    }

    /// Calls `visit` with each line of `text` (split at `\n`) and [`Prefilter::may_trigger`] for it.
    pub fn for_each_line<'t>(&self, text: &'t [u8], mut visit: impl FnMut(&'t [u8], bool)) {
        self.lines(text, |line| visit(line.text, line.verdict.may_trigger));
    }

    /// Calls `visit` with each line of `text` (split at `\n`) judged. The same answers as line by line, found
    /// faster: the needles are searched once over the whole text (none holds a line end, so no match spans
    /// lines). A line passed over holds at most one record (one `eventName`), so that counting lines counts
    /// records.
    pub fn lines<'t>(&self, text: &'t [u8], mut visit: impl FnMut(Line<'_, 't>)) {
        let scanned = self.scan(text);
        let ascii = scanned.ascii;
        let mut escapes = scanned.escapes.iter().peekable();
        let mut hits = scanned.hits.as_slice();
        let mut start = 0;
        for end in scanned.ends.iter().copied().chain([text.len()]) {
            let line = text.get(start..end).unwrap_or_default();
            let count = hits.iter().take_while(|(at, _)| *at < end).count();
            let (here, rest) = hits.split_at(count);
            hits = rest;
            let mut escaped = false;
            while escapes.next_if(|at| **at < end).is_some() {
                escaped = true;
            }
            let verdict = self.judge_text(line, start, here, escaped, || ascii || line.is_ascii());
            visit(Line { text: line, verdict, at: start, hits: here });
            start = end + 1;
        }
    }

    /// Judges `text`, which starts at `at` of the text searched; `hits` are the needles found in it, `escaped`
    /// whether it holds a `\u` escape and `ascii` whether it is all ASCII.
    fn judge_text(
        &self,
        text: &[u8],
        at: usize,
        hits: &[(usize, Hit)],
        escaped: bool,
        ascii: impl Fn() -> bool,
    ) -> Verdict {
        let must_parse = !self.sound || escaped || hits.iter().any(|(_, hit)| hit.key == Some(Field::RootType));
        let (mut names, mut only, mut rules, mut signal, mut shown) = (0, None, 0, false, false);
        for (found, hit) in hits {
            signal |= hit.kinds.signal && self.reads_agents;
            shown |= hit.kinds.signal || hit.kinds.tag;
            rules |= hit.kinds.rules;
            match hit.key {
                Some(Field::EventName) => {
                    names += 1;
                    only = Some(found - at);
                }
                Some(Field::AccessKeyId) if !self.keys.is_empty() => {
                    let value = ascii_after(text, found - at + Field::AccessKeyId.written().len());
                    signal |= value.is_none_or(|key| self.keys.contains(key));
                }
                _ => {}
            }
        }
        let only = only.filter(|_| names == 1);
        let name = only.map(|at| ascii_after(text, at + Field::EventName.written().len()));
        let may_issue =
            must_parse || !matches!(name, Some(Some(name)) if !ISSUING_EVENTS.iter().any(|e| e.as_bytes() == name));
        // The one name is read first: when no rule is triggered by it under any source, no pair in the text can
        // trigger one (the text's sources are then only looked for, not read). Otherwise every `eventName` and
        // `eventSource` value in the text is read and each pair judged.
        let quiet = matches!(name, Some(Some(name)) if !self.names.may_trigger(name))
            && only.is_some_and(|at| has_source(text, at));
        let judged = match name {
            _ if quiet => Judged::PassOver,
            // The search found every `"eventName"` key written as is, and there is one: only the sources are read.
            Some(Some(name)) => self.sources_with(text, name),
            _ => self.pairs(text),
        };
        let called = judged.passes(rules, || !ascii());
        let always = self.every_text_an_agent || self.reads_agents && !ascii();
        let shows_agent = must_parse || shown || self.every_issuing_an_agent || !ascii();
        Verdict { may_trigger: must_parse || called || signal || always, may_issue, shows_agent }
    }

    /// Every `eventSource` value in `json`, each judged with `name`, the text's one `eventName` value. The same
    /// answer as [`Prefilter::pairs`] when that is the only name: each `"eventSource"` key is looked for from the
    /// byte after the last (a key may start at the quote that ends another), as `"event` finds them.
    fn sources_with(&self, json: &[u8], name: &[u8]) -> Judged {
        let Ok(name) = std::str::from_utf8(name) else { return self.pairs(json) };
        let mut calls = Calls::default();
        calls.add(Key::Name, Some(name));
        let mut from = 0;
        while let Some(found) = json.get(from..).and_then(|rest| self.source_key.find(rest)) {
            let after = from + found + self.source_key.needle().len();
            calls.add(Key::Source, string_after(json, after));
            from += found + 1;
        }
        calls.judge(self.engine, self.gated)
    }

    /// Every `eventName` and `eventSource` value in `json`, each pair judged against the triggers.
    fn pairs(&self, json: &[u8]) -> Judged {
        let mut calls = Calls::default();
        for at in self.event_key.find_iter(json) {
            calls.see(json, at + self.event_key.needle().len());
        }
        calls.judge(self.engine, self.gated)
    }
}

/// One line, judged.
pub struct Line<'h, 't> {
    /// The line, without its end.
    pub text: &'t [u8],
    /// How it is judged.
    pub verdict: Verdict,
    /// Where the line starts in the text searched, and the needles found in it.
    at: usize,
    hits: &'h [(usize, Hit)],
}

impl<'t> Line<'_, 't> {
    /// The value under each `"accessKeyId"` key in the line (`None` for one not written literally in ASCII), when
    /// the filter reads them ([`Prefilter::reads_access_keys`]).
    pub fn access_keys(&self) -> impl Iterator<Item = Option<&'t [u8]>> + '_ {
        let keys = self.hits.iter().filter(|(_, hit)| hit.key == Some(Field::AccessKeyId));
        keys.map(|(found, _)| ascii_after(self.text, found - self.at + Field::AccessKeyId.written().len()))
    }
}

/// A key the filter reads, found in the lowercased text and checked in the text itself (case and all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `"eventName"`.
    EventName,
    /// `"accessKeyId"`, whose value the registry is asked about.
    AccessKeyId,
    /// `"Root"`, the root user's type.
    RootType,
}

impl Field {
    /// The key as CloudTrail writes it.
    fn written(self) -> &'static [u8] {
        match self {
            Field::EventName => br#""eventName""#,
            Field::AccessKeyId => br#""accessKeyId""#,
            Field::RootType => br#""Root""#,
        }
    }

    /// Where in the key the search looks for it from. The search stops wherever a needle's first bytes are, and
    /// CloudTrail writes `"event` seven times a record, `"acc` three times and `tName"` in every `bucketName`:
    /// from `entName"` and `ssKeyId"`, the needle starts where little else does.
    fn searched_from(self) -> usize {
        match self {
            Field::EventName => 3,
            Field::AccessKeyId => 5,
            Field::RootType => 0,
        }
    }
}

/// The pieces a needle holds: of an agent signal (`signal`), of a session-tag key that marks an agent (`tag`),
/// of these rules' required text (one bit each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Kinds {
    signal: bool,
    tag: bool,
    rules: u64,
}

impl Kinds {
    fn or(self, other: Kinds) -> Kinds {
        Kinds { signal: self.signal || other.signal, tag: self.tag || other.tag, rules: self.rules | other.rules }
    }

    fn covers(self, other: Kinds) -> bool {
        self.or(other) == self
    }

    fn is_empty(self) -> bool {
        self == Kinds::default()
    }
}

/// What the search found at a place: a key where it is written exactly (the place is the key's first byte), and
/// the pieces that are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    key: Option<Field>,
    kinds: Kinds,
}

/// One needle of the search: its lowercased text, the key it is part of (from [`Field::searched_from`]), and the
/// pieces it holds.
struct Needle {
    text: Vec<u8>,
    key: Option<Field>,
    kinds: Kinds,
}

/// One search, over an ASCII-lowercased copy of the text, for the keys the filter reads and the pieces it looks
/// for (the agent signals' and the rules' required text), all at once: each pass over the text costs about as
/// much as the next, and a handful of needles is searched many bytes at a time ("Teddy").
///
/// It reports every place where a key or a piece of each kind is. The search is leftmost-first, and a match hides
/// what starts inside it. So a needle also stands for every piece it holds (wherever it is, they are too); the
/// longest needle wins where two start (it holds the other); and after a needle that may end where another starts
/// (one that is a key, or holds a piece this one does not), the search goes on from the next byte. The keys'
/// needles hold a `"` and pieces hold none, so no piece holds a key's needle.
struct Search {
    matcher: Matcher,
    /// Each needle, by its index.
    needles: Vec<Needle>,
    /// Whether the search goes on from the next byte after each needle (see above).
    restart: Vec<bool>,
    /// The longest needle's length.
    longest: usize,
}

/// How much of a text is lowercased and searched at a time: little enough to stay in the core's own caches
/// between the two (a whole block is copied out to memory and read back in).
const CHUNK: usize = 32 << 10;

impl Search {
    /// The search for `keys` and `pieces`; `None` when it cannot be built.
    fn new(keys: &[Field], pieces: &Pieces<'_>) -> Option<Search> {
        let mut needles: Vec<Needle> = keys
            .iter()
            .map(|key| {
                let text = key.written().get(key.searched_from()..).unwrap_or_default().to_ascii_lowercase();
                Needle { text, key: Some(*key), kinds: Kinds::default() }
            })
            .collect();
        let signals = pieces.signals.iter().map(|p| (p, Kinds { signal: true, ..Kinds::default() }));
        let tags = pieces.tags.iter().map(|p| (p, Kinds { tag: true, ..Kinds::default() }));
        let mentions = pieces
            .mentions
            .iter()
            .flat_map(|(rule, pieces)| pieces.iter().map(move |p| (p, Kinds { rules: *rule, ..Kinds::default() })));
        for (piece, kinds) in signals.chain(tags).chain(mentions) {
            let text = piece.to_ascii_lowercase().into_bytes();
            match needles.iter_mut().find(|needle| needle.key.is_none() && needle.text == text) {
                Some(same) => same.kinds = same.kinds.or(kinds),
                None => needles.push(Needle { text, key: None, kinds }),
            }
        }
        // A needle stands for each piece it holds.
        let held: Vec<Kinds> = needles
            .iter()
            .map(|needle| {
                let inside = needles
                    .iter()
                    .filter(|other| other.key.is_none() && memmem::find(&needle.text, &other.text).is_some());
                inside.fold(needle.kinds, |kinds, other| kinds.or(other.kinds))
            })
            .collect();
        for (needle, held) in needles.iter_mut().zip(held) {
            needle.kinds = held;
        }
        // A piece that holds another of the same kinds is not searched: wherever it is, the other is too.
        let redundant: Vec<bool> = needles
            .iter()
            .map(|needle| {
                needle.key.is_none()
                    && needles.iter().any(|other| {
                        other.text != needle.text
                            && memmem::find(&needle.text, &other.text).is_some()
                            && other.kinds == needle.kinds
                    })
            })
            .collect();
        let mut redundant = redundant.into_iter();
        needles.retain(|_| !redundant.next().unwrap_or(false));
        // Longest first: where two start, the one that holds the other wins.
        needles.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then_with(|| a.text.cmp(&b.text)));
        let restart: Vec<bool> = needles
            .iter()
            .map(|needle| {
                (1..needle.text.len()).any(|cut| {
                    let tail = needle.text.get(cut..).unwrap_or_default();
                    let starting =
                        needles.iter().filter(|other| other.text.starts_with(tail) || tail.starts_with(&other.text));
                    starting.into_iter().any(|other| other.key.is_some() || !needle.kinds.covers(other.kinds))
                })
            })
            .collect();
        let longest = needles.iter().map(|needle| needle.text.len()).max().unwrap_or(1);
        let matcher = Matcher::new(&needles)?;
        Some(Search { matcher, needles, restart, longest })
    }

    fn reads(&self, key: Field) -> bool {
        self.needles.iter().any(|needle| needle.key == Some(key))
    }

    /// Where the keys and pieces are in `text` and whether it is all ASCII. A key is reported only where it is
    /// written exactly, at its first byte; a piece at its needle's. The places ascend from line to line (a key's
    /// first byte is at most a few bytes, its own, before its needle). The text is lowercased and searched a chunk
    /// at a time; a needle that starts in a chunk is searched for in it and as far beyond as the needle may
    /// reach, so the matches are the whole text's.
    fn find(&self, text: &[u8]) -> Scanned {
        LOWERCASED.with_borrow_mut(|buffer| {
            let mut scanned = Scanned { ascii: true, ..Scanned::default() };
            // Where the search goes on, in `text`.
            let mut at: usize = 0;
            for chunk in (0..text.len()).step_by(CHUNK) {
                let end = (chunk + CHUNK).min(text.len());
                let window = text.get(chunk..(end + self.longest - 1).min(text.len())).unwrap_or_default();
                let (lower, window_ascii) = lowercase_into(window, buffer);
                scanned.ascii &= window_ascii;
                // The line ends and escapes too, while the chunk is in the core's cache.
                scanned.see_ends(lower.get(..end - chunk).unwrap_or_default(), chunk, text);
                let mut from = at.saturating_sub(chunk).min(lower.len());
                while let Some(found) = self.matcher.find(lower, from) {
                    let (start, index) = (chunk + found.start(), found.pattern().as_usize());
                    if start >= end {
                        break;
                    }
                    if let Some(needle) = self.needles.get(index) {
                        let key = needle.key.and_then(|key| {
                            let first = start.checked_sub(key.searched_from())?;
                            let written = text.get(first..first + key.written().len())? == key.written();
                            written.then_some((first, key))
                        });
                        let place = key.map_or(start, |(first, _)| first);
                        let hit = Hit { key: key.map(|(_, key)| key), kinds: needle.kinds };
                        if hit.key.is_some() || !hit.kinds.is_empty() {
                            scanned.hits.push((place, hit));
                        }
                    }
                    from = if self.restart.get(index) == Some(&true) { found.start() + 1 } else { found.end() };
                }
                at = chunk + from;
            }
            scanned
        })
    }
}

/// The leftmost-first search itself: Teddy alone where the processor has it (each place it finds is a match), or
/// the automaton that uses it as a pre-filter (with many needles, or without the vector instructions).
enum Matcher {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Matcher {
    fn new(needles: &[Needle]) -> Option<Matcher> {
        let mut packed = packed::Config::new().match_kind(packed::MatchKind::LeftmostFirst).builder();
        packed.extend(needles.iter().map(|needle| &needle.text));
        packed.build().map(Matcher::Packed).or_else(|| Matcher::automaton(needles))
    }

    fn automaton(needles: &[Needle]) -> Option<Matcher> {
        let texts = needles.iter().map(|needle| &needle.text);
        AhoCorasick::builder().match_kind(MatchKind::LeftmostFirst).build(texts).ok().map(Matcher::Automaton)
    }

    /// The leftmost-first match in `text` from `from` on (at most its length).
    fn find(&self, text: &[u8], from: usize) -> Option<aho_corasick::Match> {
        match self {
            Matcher::Packed(searcher) => searcher.find_in(text, Span::from(from..text.len())),
            Matcher::Automaton(automaton) => automaton.find(Input::new(text).span(from..text.len())),
        }
    }
}

/// What one pass over a text found.
#[derive(Default)]
struct Scanned {
    /// The keys and pieces, where they are ([`Search::find`]).
    hits: Vec<(usize, Hit)>,
    /// Whether the text is all ASCII.
    ascii: bool,
    /// Where each `\n` is.
    ends: Vec<usize>,
    /// Where each `\u` escape starts.
    escapes: Vec<usize>,
}

impl Scanned {
    /// Notes the line ends and escapes in `part`, a copy of `text` from `at` on (lowercased or not: neither byte
    /// has a case), reading `text` itself for the `u` of an escape.
    fn see_ends(&mut self, part: &[u8], at: usize, text: &[u8]) {
        self.ends.extend(memchr::memchr_iter(b'\n', part).map(|end| at + end));
        let escapes = memchr::memchr_iter(b'\\', part).map(|slash| at + slash);
        self.escapes.extend(escapes.filter(|slash| text.get(slash + 1) == Some(&b'u')));
    }
}

/// The pieces [`Search`] looks for besides the keys, not yet lowercased.
#[derive(Default)]
struct Pieces<'a> {
    /// The agent signals' ([`signal_pieces`]).
    signals: &'a [String],
    /// The session-tag keys' that mark an agent ([`tag_pieces`]).
    tags: &'a [String],
    /// Each gated rule's required text, by its bit.
    mentions: &'a [(u64, Vec<String>)],
}

/// The pieces of the session-tag keys that mark an agent (`trailguard:agent` of `trailguard:agent=true`), each
/// written as is in any JSON text of the key without `\u` ([`required_piece`]); `None` when some key has none.
fn tag_pieces(matchers: &AgentMatchers) -> Option<Vec<String>> {
    let keys = matchers.session_tags.iter().map(|spec| spec.split_once('=').map_or(spec.as_str(), |(key, _)| key));
    // Any run of the key is in it (a key is compared whole, not as a glob).
    keys.map(required_piece).collect()
}

/// The pieces some agent signal's value must hold ([`required_piece`] of each glob, and the MCP marker); `None`
/// when some glob has none (then every text may show an agent).
fn signal_pieces(matchers: &AgentMatchers) -> Option<Vec<String>> {
    let globs = [&matchers.source_identity, &matchers.session_name, &matchers.role, &matchers.user_name];
    let mut pieces: Vec<String> =
        globs.into_iter().flatten().chain(&matchers.app_id).map(|glob| required_piece(glob)).collect::<Option<_>>()?;
    if matchers.mcp {
        pieces.push("ViaAWSMCP".to_owned());
    }
    Some(pieces)
}

thread_local! {
    /// The lowercased copy of the text being searched, kept between searches: a block's worth of memory touched
    /// once, not allocated and faulted in anew for every block.
    static LOWERCASED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `text` ASCII-lowercased, written at the start of `buffer` (grown when too short, never shrunk: growing fills
/// memory), and whether it is all ASCII.
fn lowercase_into<'b>(text: &[u8], buffer: &'b mut Vec<u8>) -> (&'b [u8], bool) {
    if buffer.len() < text.len() {
        buffer.resize(text.len(), 0);
    }
    let lower = buffer.get_mut(..text.len()).unwrap_or_default();
    let mut high = 0;
    for (to, from) in lower.iter_mut().zip(text) {
        *to = from.to_ascii_lowercase();
        high |= from;
    }
    (lower, high.is_ascii())
}

/// The literal piece a value matching `glob` must contain, written as is in any JSON text of it without `\u`:
/// the longest run of the glob's last `/`-separated part (a role ARN glob's role name, which a session ARN holds
/// too) without a wildcard or a character JSON may escape. `None` when there is none.
pub(crate) fn required_piece(glob: &str) -> Option<String> {
    let tail = glob.rsplit('/').next().unwrap_or(glob);
    let escapable = |c: char| matches!(c, '*' | '?' | '"' | '\\' | '/') || c.is_control();
    tail.split(escapable).max_by_key(|piece| piece.len()).filter(|piece| !piece.is_empty()).map(str::to_owned)
}

/// Every (event source, event name or name prefix) the engine's rules are triggered by (`None`: any source), from
/// the rules themselves, as the engine's index is built.
fn calls(engine: &Engine) -> Vec<(Option<String>, Name)> {
    let triggers = engine.rules().iter().flat_map(|rule| rule.triggers(engine.config()));
    triggers
        .flat_map(|trigger| match trigger {
            Trigger::Calls { source, names, .. } => names.into_iter().map(|name| (source.clone(), name)).collect(),
            Trigger::RootActor | Trigger::AgentReads => Vec::new(),
        })
        .collect()
}

/// Every name some rule is triggered by, under any source: a name outside them triggers nothing.
struct TriggerNames {
    exact: HashSet<Vec<u8>, foldhash::fast::FixedState>,
    /// The prefixes by their first byte: most names share it with none of them.
    prefixes: Vec<Vec<Vec<u8>>>,
    /// Some rule is triggered by every name (the empty prefix, as `s3:*` gives).
    every: bool,
}

impl TriggerNames {
    fn new(calls: &[(Option<String>, Name)]) -> TriggerNames {
        let mut names = TriggerNames { exact: Default::default(), prefixes: vec![Vec::new(); 256], every: false };
        for (_, name) in calls {
            match name {
                Name::Exact(name) => {
                    names.exact.insert(name.as_bytes().to_vec());
                }
                Name::Prefix(prefix) => {
                    match prefix.bytes().next().and_then(|b| names.prefixes.get_mut(usize::from(b))) {
                        Some(same_first) => same_first.push(prefix.as_bytes().to_vec()),
                        None => names.every = true,
                    }
                }
            }
        }
        names
    }

    fn may_trigger(&self, name: &[u8]) -> bool {
        let same_first = name.first().and_then(|b| self.prefixes.get(usize::from(*b)));
        self.every
            || self.exact.contains(name)
            || same_first.is_some_and(|prefixes| prefixes.iter().any(|prefix| name.starts_with(prefix)))
    }
}

/// Whether `json` has an `eventSource` key with a value written literally, as a record must; its name key starts
/// at `name_at`. CloudTrail writes `"eventSource":"<value>",` just before the name, which is checked first.
fn has_source(json: &[u8], name_at: usize) -> bool {
    let value = json.get(..name_at).and_then(|before| before.strip_suffix(b"\",")).and_then(|before| {
        let open = memchr::memrchr(b'"', before)?;
        let value = before.get(open + 1..)?;
        before.get(..open)?.ends_with(br#""eventSource":"#).then_some(value)
    });
    let key = br#""eventSource""#;
    value.is_some_and(|value| !value.contains(&b'\\'))
        || memchr::memmem::find_iter(json, key).any(|at| string_after(json, at + key.len()).is_some())
}

/// The two keys a call is triggered by.
#[derive(Clone, Copy)]
enum Key {
    Name,
    Source,
}

/// What the calls in a text ask for.
enum Judged {
    /// A rule is triggered (or the text cannot be judged without parsing): parse it.
    Parse,
    /// Only rules judged by their text are triggered, these (one bit each): parse it if it holds some of their text.
    IfMentioned(u64),
    /// No rule is triggered.
    PassOver,
}

impl Judged {
    /// Whether the text goes to the parser: `mentioned` are the rules whose text it holds; `unsearchable` says
    /// whether it cannot be searched byte by byte (not all ASCII), when it is taken to hold every rule's.
    fn passes(&self, mentioned: u64, unsearchable: impl FnOnce() -> bool) -> bool {
        match self {
            Judged::Parse => true,
            Judged::IfMentioned(rules) => rules & mentioned != 0 || unsearchable(),
            Judged::PassOver => false,
        }
    }
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
        if rest.starts_with(b"Name\"") {
            self.add(Key::Name, string_after(rest, "Name\"".len()));
        } else if rest.starts_with(b"Source\"") {
            self.add(Key::Source, string_after(rest, "Source\"".len()));
        }
    }

    /// One value under `key`, `None` when it could not be read literally.
    fn add(&mut self, key: Key, value: Option<&'t str>) {
        let (found, count) = match key {
            Key::Name => (&mut self.names, &mut self.name_count),
            Key::Source => (&mut self.sources, &mut self.source_count),
        };
        match (value, found.get_mut(*count)) {
            (Some(value), Some(slot)) => {
                *slot = value;
                *count += 1;
            }
            _ => self.opaque = true,
        }
    }

    /// What the calls seen ask for; `gated` are the rules (one bit each) judged by their text.
    fn judge(&self, engine: &Engine, gated: u64) -> Judged {
        let (Some(names), Some(sources)) = (self.names.get(..self.name_count), self.sources.get(..self.source_count))
        else {
            return Judged::Parse;
        };
        // More than one name: several records (a log file on one line), parsed so that each is counted.
        if self.opaque || names.len() != 1 || sources.is_empty() {
            return Judged::Parse;
        }
        let (mut parse, mut if_mentioned) = (false, 0u64);
        for (name, source) in names.iter().flat_map(|name| sources.iter().map(move |source| (name, source))) {
            engine.call_hits(source, name, |rule| match 1u64.checked_shl(rule as u32).filter(|bit| gated & bit != 0) {
                Some(bit) => if_mentioned |= bit,
                None => parse = true,
            });
        }
        match (parse, if_mentioned) {
            (true, _) => Judged::Parse,
            (false, 0) => Judged::PassOver,
            (false, rules) => Judged::IfMentioned(rules),
        }
    }
}

/// Whether `text` holds a `\u` escape, the one way to write a name other than literally. Backslashes are rare in
/// CloudTrail text: looking for them alone is the fastest search there is.
pub fn has_unicode_escape(text: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', text).any(|at| text.get(at + 1) == Some(&b'u'))
}

/// [`Prefilter::made_by_aws_service`], which needs no pre-filter: whether one record's text says an AWS service
/// made it (`userIdentity.type` `AWSService`), read without parsing the record.
pub fn made_by_aws_service(record: &str) -> bool {
    if let Some(kind) = written_actor_type(record.as_bytes()) {
        return kind == b"AWSService";
    }
    serde_json::from_str::<ActorType>(record)
        .ok()
        .and_then(|r| r.identity)
        .and_then(|i| i.kind)
        .is_some_and(|kind| kind == "AWSService")
}

/// The actor's type when the record starts the way CloudTrail writes one, `{"eventVersion":"1.08","userIdentity":
/// {"type":"AWSService",` (the type written without escapes). Reading further could only find a second
/// `userIdentity` or `type`, which makes the record unreadable rather than someone else's: for a type other than
/// `AWSService` the parse's answer is "not a service" either way, and for `AWSService` the record is AWS's or
/// unreadable.
fn written_actor_type(json: &[u8]) -> Option<&[u8]> {
    let rest = match json.strip_prefix(br#"{"eventVersion":""#) {
        Some(version) => {
            let end = memchr::memchr2(b'"', b'\\', version).filter(|at| version.get(*at) == Some(&b'"'));
            end.and_then(|at| version.get(at + 1..)).and_then(|rest| rest.strip_prefix(b","))?
        }
        None => json.strip_prefix(b"{")?,
    };
    let value = rest.strip_prefix(br#""userIdentity":{"type":""#)?;
    let end = memchr::memchr2(b'"', b'\\', value).filter(|at| value.get(*at) == Some(&b'"'))?;
    value.get(..end)
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
    std::str::from_utf8(written_after(json, at)?).ok()
}

/// [`string_after`] when the value is all ASCII (cheaper to tell than UTF-8, and all that CloudTrail writes in the
/// keys and names read this way); `None` otherwise.
fn ascii_after(json: &[u8], at: usize) -> Option<&[u8]> {
    written_after(json, at).filter(|value| value.is_ascii())
}

/// The bytes of the string value after a key that ends just before `at`, when it is written without escapes.
fn written_after(json: &[u8], at: usize) -> Option<&[u8]> {
    let rest = json.get(at..)?;
    let rest = skip_whitespace(rest).strip_prefix(b":")?;
    let rest = skip_whitespace(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest.get(end) != Some(&b'"') {
        return None;
    }
    rest.get(..end)
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

    /// Whether a rule is triggered by a record in `json` and, if the rule declares the text its verdicts require,
    /// the text holds some of it (ignoring ASCII case): what the filter must pass on.
    fn triggers(engine: &Engine, json: &str) -> bool {
        // The text as decoded: an escaped letter still spells the name.
        let decoded = serde_json::from_str::<serde_json::Value>(json).map(|v| v.to_string());
        let lower = decoded.unwrap_or_else(|_| json.to_owned()).to_ascii_lowercase();
        let holds_text = |id: &str| {
            let rule = engine.rules().iter().find(|r| r.id() == id);
            let text = rule.and_then(|r| r.required_text(engine.config()));
            text.is_none_or(|pieces| pieces.iter().any(|p| lower.contains(&p.to_ascii_lowercase())))
        };
        read_records(json.as_bytes())
            .map(|records| records.iter().flatten().any(|r| engine.triggered_rules(r).into_iter().any(holds_text)))
            .unwrap_or(false)
    }

    #[test]
    fn a_call_only_a_rule_with_required_text_watches_passes_only_with_that_text() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        let assume = |role: &str| {
            record("sts.amazonaws.com", "AssumeRole", "AssumedRole").replace(
                r#""awsRegion""#,
                &format!(r#""requestParameters":{{"roleArn":"arn:aws:iam::123456789012:role/{role}"}},"awsRegion""#),
            )
        };
        let parsed = |json: &str| read_records(json.as_bytes()).unwrap().into_iter().flatten().collect::<Vec<_>>();
        let findings =
            |json: &str| -> usize { parsed(json).iter().map(|r| engine.evaluate_offline(r).findings.len()).sum() };
        // Role chaining, the common case: triggered (guardrail-tampering watches every AssumeRole), no finding.
        let chaining = assume("deploy");
        assert!(!engine.triggered_rules(&parsed(&chaining)[0]).is_empty());
        assert_eq!(findings(&chaining), 0);
        assert!(!filter.may_trigger(chaining.as_bytes()), "{chaining}");
        // trailguard's own role, in any case and any writing, is passed on and found.
        for role in ["trailguard-remediate", "TrailGuard-Remediate", "TRAILGUARD-detect"] {
            let own = assume(role);
            assert!(findings(&own) > 0, "{own}");
            for writing in [own.clone(), own.replace('/', "\\/"), reencode(&own, &[true, false], &[false])] {
                assert!(filter.may_trigger(writing.as_bytes()), "dropped {writing}");
                let mut lines = Vec::new();
                let text = format!("{chaining}\n{writing}\n{chaining}");
                filter.for_each_line(text.as_bytes(), |_, pass| lines.push(pass));
                assert_eq!(lines, [false, true, false], "{writing}");
            }
        }
        // Text that cannot be searched byte by byte (not ASCII) is passed on.
        let unicode = assume("deploy-\u{212a}");
        assert!(filter.may_trigger(unicode.as_bytes()), "{unicode}");
        // A name pattern without a literal piece: the rule's calls are judged by parsing, as before.
        let any = Engine::new(Config::from_json(r#"{"own_resources": ["*"]}"#).unwrap());
        assert!(Prefilter::new(&any).may_trigger(chaining.as_bytes()));
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
            let name = name.text();
            cases.push(record(source.as_deref().unwrap_or("ec2.amazonaws.com"), &format!("{name}Suffix"), "IAMUser"));
            cases.push(record(source.as_deref().unwrap_or("s3.amazonaws.com"), name, "AssumedRole"));
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
        registry = engine.build_registry(&[(actor, session)]).sessions().cloned().fold(registry, |mut r, s| {
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
        // A name no rule watches under any source is passed over wherever the source is written; a name some
        // rule watches under another source is judged with the source the text holds.
        let watched_elsewhere = record("s3.amazonaws.com", "AttachRolePolicy", "AssumedRole");
        let source_after =
            r#"{"eventName":"GetObject","userIdentity":{"type":"AssumedRole"},"eventSource":"s3.amazonaws.com"}"#;
        for json in [watched_elsewhere.as_str(), source_after] {
            assert!(!triggers(&engine, json) && !filter.may_trigger(json.as_bytes()), "{json}");
        }
        let reads = |json: &str| {
            let mut passed = Vec::new();
            filter.for_each_line(json.as_bytes(), |_, pass| passed.push(pass));
            passed
        };
        assert_eq!(reads(&format!("{watched_elsewhere}\n{source_after}")), [false, false]);
        // Text the filter cannot see through is passed on to the parser: no source, a source written with an
        // escape, a name that is not a string, not an object.
        for opaque in [
            r#"{"eventSource":"s3.amazonaws.com"}"#,
            r#"{"eventName":"GetObject"}"#,
            r#"{"eventSource":"s3.amazonaws\/com","eventName":"GetObject"}"#,
            r#"{"eventName":3,"eventSource":"s3.amazonaws.com"}"#,
            "[1,",
        ] {
            assert!(filter.may_trigger(opaque.as_bytes()), "{opaque}");
            assert_eq!(reads(opaque), [true], "{opaque}");
        }
    }

    /// A registry that knows `ASIATAGGED`, a session issued with the agent session tag.
    fn tagged_registry(engine: &Engine) -> Registry {
        let issued = r#"{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventTime":"2026-11-29T10:00:00Z","userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAPERSON","arn":"arn:aws:sts::123456789012:assumed-role/ci/b"},"requestParameters":{"roleArn":"arn:aws:iam::123456789012:role/builder","tags":[{"key":"trailguard:agent","value":"true"}]},"responseElements":{"credentials":{"accessKeyId":"ASIATAGGED","expiration":"Nov 29, 2026, 11:00:00 AM"},"assumedRoleUser":{"assumedRoleId":"AROAB:run-1","arn":"arn:aws:sts::123456789012:assumed-role/builder/run-1"}}}"#;
        let issued = crate::event::parse_record(issued).unwrap();
        engine.build_registry(&engine.issuing_offline(&issued).into_iter().collect::<Vec<_>>())
    }

    /// A block is searched once, a chunk at a time: each line gets the verdict and the access keys it gets alone,
    /// wherever the chunks' edges fall in it.
    #[test]
    fn lines_are_judged_as_alone_wherever_the_chunks_edges_fall() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine).with_registry(&tagged_registry(&engine));
        let identity = |key: &str, session: &str| {
            format!(
                r#"{{"type":"AssumedRole","accessKeyId":"{key}","arn":"arn:aws:sts::123456789012:assumed-role/dev/{session}"}}"#
            )
        };
        let call = |source: &str, name: &str, identity: &str, rest: &str| {
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{identity},"eventSource":"{source}","eventName":"{name}"{rest},"awsRegion":"us-east-1"}}"#
            )
        };
        let person = identity("ASIAALICE", "alice");
        let kinds = [
            call("iam.amazonaws.com", "AttachRolePolicy", &person, ""),
            call("s3.amazonaws.com", "GetObject", &person, ""),
            call("ec2.amazonaws.com", "DescribeInstances", &identity("ASIAX", "Agent-run-1"), r#","readOnly":true"#),
            call("ec2.amazonaws.com", "DescribeInstances", &identity("ASIATAGGED", "run-1"), r#","readOnly":true"#),
            call(
                "sts.amazonaws.com",
                "AssumeRole",
                &person,
                r#","requestParameters":{"tags":[{"key":"trailguard:agent","value":"true"}]}"#,
            ),
            call(
                "sts.amazonaws.com",
                "AssumeRole",
                &person,
                r#","requestParameters":{"roleArn":"arn:aws:iam::123456789012:role/trailguard-remediate"}"#,
            ),
            call(
                "sts.amazonaws.com",
                "AssumeRole",
                &person,
                r#","responseElements":{"credentials":{"accessKeyId":"ASIANEW"}}"#,
            ),
            call("s3.amazonaws.com", "GetObject", r#"{"type":"Root"}"#, ""),
            call("s3.amazonaws.com", r"Get\u004fbject", &person, ""),
        ];
        let judged = |text: &str| {
            let mut seen = Vec::new();
            filter.lines(text.as_bytes(), |line| {
                let keys: Vec<Option<Vec<u8>>> = line.access_keys().map(|k| k.map(<[u8]>::to_vec)).collect();
                seen.push((line.text.to_vec(), line.verdict, keys));
            });
            seen
        };
        // Every alignment of the lines against the chunks' edges, for the first few lines past each edge.
        for shift in 0..48 {
            let mut lines = vec!["x".repeat(shift)];
            let mut size = shift + 1;
            while size < 2 * CHUNK + 4096 {
                let line = kinds[lines.len() % kinds.len()].clone();
                size += line.len() + 1;
                lines.push(line);
            }
            let seen = judged(&lines.join("\n"));
            assert_eq!(seen.len(), lines.len());
            for ((text, verdict, keys), line) in seen.into_iter().zip(&lines) {
                assert_eq!(text, line.as_bytes());
                let alone = judged(line).pop().unwrap();
                assert_eq!((verdict, &keys), (alone.1, &alone.2), "shift {shift}: {line}");
                assert_eq!(filter.may_trigger(line.as_bytes()), verdict.may_trigger, "{line}");
            }
        }
        // And each kind is judged as it should be.
        let verdicts: Vec<(bool, bool, bool)> = kinds
            .iter()
            .map(|line| judged(line).pop().map(|(_, v, _)| (v.may_trigger, v.may_issue, v.shows_agent)).unwrap())
            .collect();
        assert_eq!(
            verdicts,
            [
                (true, false, false),
                (false, false, false),
                (true, false, true),
                (true, false, false),
                (true, true, true),
                (true, true, false),
                (false, true, false),
                (true, true, true),
                (true, true, true),
            ]
        );
    }

    /// Pieces of different kinds found in one search: one that ends where another starts, or holds it, hides
    /// neither; a key is found only as written, in any case of the text around it.
    #[test]
    fn one_search_finds_every_kind_of_piece_even_overlapping() {
        // Teddy alone, and the automaton (many needles, or a processor without Teddy's instructions).
        let built = |keys: &[Field], pieces: &Pieces<'_>, automaton: bool| {
            let mut search = Search::new(keys, pieces).unwrap();
            if automaton {
                search.matcher = Matcher::automaton(&search.needles).unwrap();
            }
            search
        };
        for automaton in [false, true] {
            let signals = ["devin".to_owned(), "agent-".to_owned()];
            let tags = ["trailguard:agent".to_owned()];
            let mentions = [(1u64, vec!["trailguard".to_owned()])];
            let pieces = Pieces { signals: &signals, tags: &tags, mentions: &mentions };
            let search = built(&[Field::EventName], &pieces, automaton);
            let kinds = |text: &str| {
                let hits = search.find(text.as_bytes()).hits.into_iter();
                hits.fold((false, false, 0, 0), |(s, t, r, n), (_, hit)| {
                    let Kinds { signal, tag, rules } = hit.kinds;
                    (s || signal, t || tag, r | rules, n + usize::from(hit.key == Some(Field::EventName)))
                })
            };
            // `trailguard` (a rule's text) ends in the `d` that starts `devin` (an agent's).
            assert_eq!(kinds("x TrailGuarDevin x"), (true, false, 1, 0));
            assert_eq!(kinds("x trailguardevi x"), (false, false, 1, 0));
            // The tag key holds the rule's text: both are seen.
            assert_eq!(kinds("[{\"key\":\"TRAILGUARD:agent\"}]"), (false, true, 1, 0));
            // A key is the key as written, not in another case.
            assert_eq!(kinds(r#"{"eventName":"x","EventName":"y","eventname":"z"}"#), (false, false, 0, 1));
            // The key's needle (`entname"`) against pieces: one ending where it starts hides neither, one it holds
            // is seen even where the key is not written.
            let signals = ["even".to_owned(), "tname".to_owned()];
            let search = built(&[Field::EventName], &Pieces { signals: &signals, ..Pieces::default() }, automaton);
            let found = |text: &str| search.find(text.as_bytes()).hits;
            let signal = Kinds { signal: true, ..Kinds::default() };
            assert_eq!(
                found(r#"{"eventName":"x"}"#),
                [(2, Hit { key: None, kinds: signal }), (1, Hit { key: Some(Field::EventName), kinds: signal })]
            );
            assert_eq!(found(r#"x ENTNAME" x"#), [(2, Hit { key: None, kinds: signal })]);
        }
    }

    /// An agent session in a member account writes request values, not the record's keys: a key it forges inside
    /// `requestParameters` (a tag key, a key whose name ends in an escaped quote) adds a name or a source the
    /// filter sees, never hides the record's own.
    #[test]
    fn forged_event_keys_send_the_line_to_the_parser_or_change_nothing() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        let watched = record("iam.amazonaws.com", "AttachRolePolicy", "AssumedRole");
        let unwatched = record("s3.amazonaws.com", "GetObject", "AssumedRole");
        let forge = |json: &str, member: &str| {
            json.replace(r#""awsRegion""#, &format!(r#""requestParameters":{{{member}}},"awsRegion""#))
        };
        let cases = [
            // A second name: a watched one forged beside an unwatched call, an unwatched one beside a watched call.
            (forge(&unwatched, r#""eventName":"AttachRolePolicy""#), true),
            (forge(&watched, r#""eventName":"GetObject""#), true),
            (forge(&unwatched, r#""x"eventName":"AttachRolePolicy""#), true),
            // A forged source beside the real one: the watched call is still judged with its own.
            (forge(&watched, r#""eventSource":"s3.amazonaws.com""#), true),
            // Beside an unwatched call, a forged source changes nothing: no rule watches the name anywhere.
            (forge(&unwatched, r#""eventSource":"iam.amazonaws.com""#), false),
        ];
        for (json, parsed) in cases {
            let mut passed = Vec::new();
            filter.for_each_line(json.as_bytes(), |_, pass| passed.push(pass));
            assert_eq!((filter.may_trigger(json.as_bytes()), passed), (parsed, vec![parsed]), "{json}");
        }
    }

    #[test]
    fn service_traffic_is_recognised_only_as_the_actor() {
        let engine = Engine::new(Config::default());
        let filter = Prefilter::new(&engine);
        // A call a rule watches whoever makes it (not `AssumeRole`: passed over unless it names trailguard).
        let service = record("iam.amazonaws.com", "AttachRolePolicy", "AWSService");
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
        // The way CloudTrail writes an actor's type is read without parsing; other writings are parsed.
        let written = |json: &str| written_actor_type(json.as_bytes()).map(|t| String::from_utf8_lossy(t).into_owned());
        let service_type = Some("AWSService".to_owned());
        assert_eq!(
            written(r#"{"eventVersion":"1.08","userIdentity":{"type":"AWSService","invokedBy":"x"}}"#),
            service_type
        );
        assert_eq!(written(r#"{"userIdentity":{"type":"AWSService"}}"#), service_type);
        assert_eq!(
            written(r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","x":1}}"#),
            Some("AssumedRole".to_owned())
        );
        assert_eq!(written(r#"{"eventVersion":"1.08","detail":{"userIdentity":{"type":"AWSService"}}}"#), None);
        assert_eq!(written(r#"{"requestParameters":{"userIdentity":{"type":"AWSService"}}}"#), None);
        assert_eq!(written(r#"{"eventVersion":"1.\"08","userIdentity":{"type":"AWSService"}}"#), None);
        assert_eq!(written(r#"{"eventVersion":"1.08","userIdentity":{"type":"AWS\u0053ervice"}}"#), None);
        // Whatever follows the written type, the answer is the parse's (a duplicate key makes the parse fail: not
        // a service's).
        let parsed = |json: &str| {
            serde_json::from_str::<ActorType>(json)
                .ok()
                .and_then(|r| r.identity)
                .and_then(|i| i.kind)
                .is_some_and(|k| k == "AWSService")
        };
        for json in [
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","type":"AWSService"}}"#,
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser"},"userIdentity":{"type":"AWSService"}}"#,
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AWS\u0053ervice"}}"#,
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"x"},"eventName":"AssumeRole"}"#,
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AWSService","invokedBy":"lambda.amazonaws.com"}}"#,
        ] {
            assert_eq!(filter.made_by_aws_service(json), parsed(json), "{json}");
        }
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
            let mix = crate::synth::Mix::AssumeRole;
            for synthetic in crate::synth::generate_mix(seed, 300, "123456789012", "us-east-1", "2026-11-01", mix) {
                let text = synthetic.record.to_string();
                // The same call naming one of trailguard's roles, which a rule judged by its text must see.
                let own = text.replace("role/deploy\"", "role/trailguard-remediate\"");
                for writing in [reencode(&text, &escapes, &spaces), reencode(&own, &escapes, &spaces)] {
                    if triggers(&engine, &writing) {
                        triggered += 1;
                        prop_assert!(filter.may_trigger(writing.as_bytes()), "dropped {}", writing);
                    }
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
