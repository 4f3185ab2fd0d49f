//! The scan's first pass: the agent-session registry, built from the archive's credential-issuing calls.
//!
//! A session known only by its session tags is recognised in its later calls through the registry, so the
//! registry must be complete before any call is judged: the first pass reads every input for the calls that issue
//! credentials, the engine orders them by issue time ([`Engine::build_registry`]), and only then does the
//! evaluating pass start. Verdicts therefore do not depend on the order of files or records.
//!
//! The pass goes through the same pipeline as the evaluating one (small files whole, large ones in blocks of
//! lines, in parallel, a few blocks in memory), and parses only what may hold an issuing call: a line or record
//! whose text holds none of the issuing event names and no `\u` escape cannot hold one (the prefilter's
//! argument: an event name is written literally unless escaped with `\u`). In a block of lines those places are
//! searched once over the whole block, and only the lines around them are looked at. Standard input cannot be
//! read twice and is left out; an archive in S3 is fetched twice.

use std::path::PathBuf;
use std::sync::Arc;

use trailguard_core::engine::Engine;
use trailguard_core::event::{inflate, read_lines, read_records_where, read_records_with, Actor};
use trailguard_core::prefilter::{made_by_aws_service, Prefilter};
use trailguard_core::session::{issuing_candidates, may_issue, Issued, Registry};

use super::progress::Progress;
use super::sift::{read_deferred, sift, Deferred, RegisteredKeys, Sifted};
use super::source::{with_lines_at, Buffers, Sifts, Work};
use super::Size;

/// Reads the issuing calls of every input `produce` cuts (which must leave standard input out) and builds the
/// registry; a progress line is drawn when `shown`. Also returns the inputs that could not be read (name, reason):
/// the registry may lack the sessions issued there. With a `prefilter` (without registry), each block of a plain
/// JSON-lines file is also sifted for the evaluating pass ([`super::sift`]).
pub fn build<P>(
    engine: &Engine,
    files: &[PathBuf],
    size: &Size,
    shown: bool,
    prefilter: Option<&Prefilter>,
    produce: P,
) -> (Registry, Unread, Sifts)
where
    P: Fn(&Progress, &Buffers, &mut dyn FnMut(Work) -> bool) + Sync,
{
    let progress =
        if shown { Progress::shown(size.bytes, size.objects) } else { Progress::hidden(size.bytes, size.objects) };
    let buffers = Buffers::default();
    let (mut calls, mut unread, mut sifts, mut deferred) = (Vec::new(), Vec::new(), Sifts::new(), Vec::new());
    let mut failed = std::collections::HashSet::new();
    let process = |work: Work| issuing(engine, files, &progress, &buffers, prefilter, work);
    let produce = |send: &mut dyn FnMut(Work) -> bool| produce(&progress, &buffers, send);
    let name = |input: usize| files.get(input).map(|p| p.display().to_string()).unwrap_or_default();
    // Consuming never fails, so the whole input is read.
    let _ = super::pipeline(&produce, &process, &mut |(input, found): Found| {
        match found {
            Ok((found, sifted)) => {
                calls.extend(found);
                // An input with a block that could not be read is streamed again whole, not read by its sifts.
                if let Some((sifted, later)) = sifted.filter(|_| !failed.contains(&input)) {
                    sifts.entry(input).or_insert_with(Vec::new).push(Arc::new(sifted));
                    deferred.extend(later.into_iter().map(|line| (input, line)));
                }
            }
            Err(e) => {
                unread.push((name(input), e));
                // Streamed again, to meet the same error where it is.
                sifts.remove(&input);
                failed.insert(input);
            }
        }
        Ok(())
    });
    progress.finish();
    (registry_with_deferred(engine, files, calls, deferred), unread, sifts)
}

/// The registry from the issuing calls read and the lines deferred (by input): a deferred line's session is an
/// agent's only if its caller is, so the lines naming a registered key are read, and the registry built again,
/// until no more are. It is the registry of every line read: a call is registered only when its caller is (or it
/// shows a signal), and a caller is issued before it.
fn registry_with_deferred(
    engine: &Engine,
    files: &[PathBuf],
    mut calls: Vec<(Actor<'static>, Issued)>,
    mut deferred: Vec<(usize, Deferred)>,
) -> Registry {
    let mut opened = std::collections::HashMap::new();
    loop {
        let registry = engine.build_registry(&calls);
        if deferred.is_empty() {
            return registry;
        }
        let registered = RegisteredKeys::new(&registry);
        let (named, rest): (Vec<_>, Vec<_>) = deferred.into_iter().partition(|(_, line)| registered.named_in(line));
        if named.is_empty() {
            return registry;
        }
        deferred = rest;
        for (input, line) in named {
            let file =
                opened.entry(input).or_insert_with(|| files.get(input).and_then(|p| std::fs::File::open(p).ok()));
            // A file changed or gone since is read as it is: what cannot be read issues nothing.
            if let Some(text) = file.as_ref().and_then(|file| read_deferred(file, &line).ok()) {
                calls.extend(issuing_line(engine, &text));
            }
        }
    }
}

/// The inputs that could not be read, by name, and why.
pub type Unread = Vec<(String, String)>;

/// What one piece of work gave ([`InBlock`]), or why its input could not be read; with the input's index.
type Found = (usize, Result<InBlock, String>);

/// The issuing calls of one piece of work and, for a block of a plain file, its sift and the lines it deferred.
type InBlock = (Vec<(Actor<'static>, Issued)>, Option<(Sifted, Vec<Deferred>)>);

/// The issuing calls in one piece of work.
fn issuing(
    engine: &Engine,
    files: &[PathBuf],
    progress: &Progress,
    buffers: &Buffers,
    prefilter: Option<&Prefilter>,
    work: Work,
) -> Found {
    match work {
        Work::Whole { input, bytes } => {
            let bytes = match (bytes, files.get(input)) {
                (Some(bytes), _) => Ok(bytes),
                (None, Some(path)) => {
                    crate::read_input(path).inspect(|b| progress.add_bytes(b.len() as u64)).map_err(|e| e.to_string())
                }
                (None, None) => Ok(Vec::new()),
            };
            let found = bytes.and_then(|bytes| Ok(issuing_whole(engine, &inflate(&bytes).map_err(|e| e.to_string())?)));
            (input, found.map(|calls| (calls, None)))
        }
        Work::Lines { input, bytes, at } => {
            let found = issuing_block(engine, prefilter, &bytes, at);
            buffers.give(bytes);
            (input, Ok(found))
        }
        Work::Range { input, file, at, len } => {
            let found = with_lines_at(&file, at, len, |at, lines| issuing_block(engine, prefilter, lines, Some(at)));
            (input, found.map_err(|e| e.to_string()))
        }
        // The first pass sifts; it is never handed sifted blocks.
        Work::Sifted { input, .. } => (input, Ok((Vec::new(), None))),
        Work::End { input, error } => (input, error.map_or(Ok((Vec::new(), None)), Err)),
    }
}

/// The issuing calls in a block of JSON lines and, with a `prefilter` and where the block starts in a plain file
/// (`at`), its sift.
fn issuing_block(engine: &Engine, prefilter: Option<&Prefilter>, block: &[u8], at: Option<u64>) -> InBlock {
    match prefilter.zip(at) {
        Some((prefilter, at)) => {
            let mut calls = Vec::new();
            let sifted = sift(prefilter, block, at, |line| calls.extend(issuing_line(engine, line)));
            (calls, Some(sifted))
        }
        None => (issuing_lines(engine, block), None),
    }
}

/// The issuing calls of a whole input: JSON lines, or a log file (or event) of which only the records that may
/// issue, and were not made by AWS, are parsed.
fn issuing_whole(engine: &Engine, text: &[u8]) -> Vec<(Actor<'static>, Issued)> {
    if !may_issue(text) {
        return Vec::new();
    }
    if first_line_is_json(text) {
        return issuing_lines(engine, text);
    }
    let document = std::str::from_utf8(text).ok().and_then(|text| read_records_where(text, may_issue_as_caller));
    let records = document.unwrap_or_else(|| {
        read_records_with(text, None).map(|r| r.records.into_iter().flatten().collect()).unwrap_or_default()
    });
    records.iter().filter_map(|record| engine.issuing_offline(record)).collect()
}

/// The issuing calls among a block of JSON lines: only the lines holding a place where one may be written.
fn issuing_lines(engine: &Engine, block: &[u8]) -> Vec<(Actor<'static>, Issued)> {
    let mut calls = Vec::new();
    let mut read_to = 0;
    for at in issuing_candidates(block) {
        if at < read_to {
            continue; // in the line just read
        }
        let start = block.get(..at).and_then(|before| memchr::memrchr(b'\n', before)).map_or(0, |n| n + 1);
        let end = block.get(at..).and_then(|after| memchr::memchr(b'\n', after)).map_or(block.len(), |n| at + n);
        read_to = end;
        let line = block.get(start..end).unwrap_or_default();
        if may_issue(line) {
            calls.extend(issuing_line(engine, line));
        }
    }
    calls
}

/// The issuing calls in one line that may hold one, unless AWS itself made it (see [`may_issue_as_caller`]).
fn issuing_line(engine: &Engine, line: &[u8]) -> Vec<(Actor<'static>, Issued)> {
    if !std::str::from_utf8(line).is_ok_and(|text| !made_by_aws_service(text)) {
        return Vec::new();
    }
    let records = read_lines(line, 1, None).records.into_iter().flatten();
    records.filter_map(|record| engine.issuing_offline(&record)).collect()
}

/// Whether one record's (or line's) text may hold an issuing call the registry records: it names an issuing
/// event (see [`may_issue`]) and AWS itself did not make it. Service calls (`sts:AssumeRole` for Lambda, common)
/// are never recorded ([`Engine::issuing_offline`]), and telling them by the actor's type alone is much cheaper
/// than parsing the record.
fn may_issue_as_caller(text: &str) -> bool {
    may_issue(text.as_bytes()) && !made_by_aws_service(text)
}

/// Whether the first line is a JSON value of its own (JSON lines), rather than the start of one document.
fn first_line_is_json(text: &[u8]) -> bool {
    let first = text.split(|b| *b == b'\n').find(|l| !l.trim_ascii().is_empty()).unwrap_or_default();
    serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
        && text.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).nth(1).is_some()
}

#[cfg(test)]
mod tests {
    use trailguard_core::session::{Registry, ISSUING_EVENTS};
    use trailguard_core::synth::{cloudtrail_json, generate_mix, Mix};
    use trailguard_core::{Config, Engine};

    /// Every issuing call of a block, read the slow way: every line parsed.
    fn every_line(engine: &Engine, block: &[u8]) -> Vec<String> {
        let records = trailguard_core::event::read_lines(block, 1, None).records.into_iter().flatten();
        let calls: Vec<_> = records.filter_map(|r| engine.issuing_offline(&r)).collect();
        engine.build_registry(&calls).sessions().map(|s| s.access_key_id.clone()).collect()
    }

    #[test]
    fn reading_only_the_lines_around_the_names_finds_every_issuing_call() {
        let engine = Engine::new(Config::default());
        let mut lines: Vec<String> = generate_mix(5, 3_000, "123456789012", "us-east-1", "2026-11-01", Mix::AssumeRole)
            .map(|s| cloudtrail_json(&s.record).replace("build-", "agent-"))
            .collect();
        let agent = lines
            .iter()
            .position(|l| l.contains("\"AssumeRole\"") && l.contains("assumed-role/ci-runner/agent-"))
            .unwrap();
        // The same call written with an escape, wrapped as an EventBridge event, and last without a line end.
        lines.push(lines[agent].replace("ASIA", "ASIB").replace("\"AssumeRole\"", r#""Assume\u0052ole""#));
        lines.push(format!(
            r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{}}}"#,
            lines[agent].replace("ASIA", "ASIC")
        ));
        lines.push(String::new());
        lines.push(lines[agent].replace("ASIA", "ASID"));
        let block = lines.join("\n");
        let mut fast: Vec<String> =
            super::issuing_lines(&engine, block.as_bytes()).into_iter().map(|(_, i)| i.session.access_key_id).collect();
        let mut slow = every_line(&engine, block.as_bytes());
        fast.sort();
        slow.sort();
        assert!(slow.len() > 400, "the block holds many agent sessions: {}", slow.len());
        assert!(["ASIB", "ASIC", "ASID"].iter().all(|k| slow.iter().any(|s| s.starts_with(k))), "{slow:?}");
        assert_eq!(fast, slow);
    }

    /// An AssumeRole call, in CloudTrail's shape: `caller` assumes `role` and gets `issued`.
    fn assume(caller: &str, caller_session: &str, role: &str, issued: &str, minute: u8, request: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAC:{caller_session}","arn":"arn:aws:sts::123456789012:assumed-role/ci/{caller_session}","accountId":"123456789012","accessKeyId":"{caller}"}},"eventTime":"2026-11-29T10:{minute:02}:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","requestParameters":{{"roleArn":"arn:aws:iam::123456789012:role/{role}","roleSessionName":"{role}-run"{request}}},"responseElements":{{"credentials":{{"accessKeyId":"{issued}","expiration":"Nov 29, 2026, 11:00:00 AM"}},"assumedRoleUser":{{"assumedRoleId":"AROA{role}:{role}-run","arn":"arn:aws:sts::123456789012:assumed-role/{role}/{role}-run"}}}}}}"#
        )
    }

    /// The sift reads an issuing call at once only when it shows an agent signal; the others wait for their
    /// caller to be an agent's. The registry is the same as from every line parsed, the chain's calls coming
    /// before the call that started it.
    #[test]
    fn deferred_issuing_calls_give_the_registry_every_line_gives() {
        let engine = Engine::new(Config::default());
        let mut lines: Vec<String> = generate_mix(9, 3_000, "123456789012", "us-east-1", "2026-11-29", Mix::AssumeRole)
            .map(|s| cloudtrail_json(&s.record))
            .collect();
        let tag = r#","tags":[{"key":"trailguard:agent","value":"true"}]"#;
        // Grandchild, child, then the tagged session that makes them agents'.
        lines.insert(5, assume("ASIACHILD", "deployer-run", "auditor", "ASIAGRAND", 2, ""));
        lines.insert(1_000, assume("ASIATAGGED", "builder-run", "deployer", "ASIACHILD", 1, ""));
        lines.push(assume("ASIAPERSON", "build", "builder", "ASIATAGGED", 0, tag));
        let block = lines.join("\n");
        let path = std::env::temp_dir().join(format!("trailguard-deferred-{}", std::process::id()));
        std::fs::write(&path, &block).unwrap();
        let filter = trailguard_core::prefilter::Prefilter::new(&engine);
        let mut calls = Vec::new();
        let (_, deferred) =
            super::sift(&filter, block.as_bytes(), 0, |line| calls.extend(super::issuing_line(&engine, line)));
        let assumes = lines.iter().filter(|l| l.contains(r#""eventName":"AssumeRole""#)).count();
        assert!(deferred.len() > assumes / 2, "most calls wait: {} of {assumes}", deferred.len());
        let deferred = deferred.into_iter().map(|line| (0, line)).collect();
        let registry = super::registry_with_deferred(&engine, std::slice::from_ref(&path), calls, deferred);
        let sessions = |registry: &Registry| -> Vec<(String, Option<String>)> {
            let mut all: Vec<_> = registry.sessions().map(|s| (s.access_key_id.clone(), s.parent.clone())).collect();
            all.sort();
            all
        };
        let every = engine.build_registry(
            &trailguard_core::event::read_lines(block.as_bytes(), 1, None)
                .records
                .into_iter()
                .flatten()
                .filter_map(|r| engine.issuing_offline(&r))
                .collect::<Vec<_>>(),
        );
        assert_eq!(sessions(&registry), sessions(&every));
        let grand = registry.entry("ASIAGRAND").expect("the grandchild is an agent's");
        assert_eq!(grand.parent.as_deref(), Some("ASIACHILD"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_needles_cover_every_issuing_event() {
        assert!(ISSUING_EVENTS.iter().all(|e| e.contains("AssumeRole") || e.contains("GetFederationToken")));
    }
}
