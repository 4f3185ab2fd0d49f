//! The scan's first pass: the agent-session registry, built from the archive's credential-issuing calls.
//!
//! A session known only by its session tags is recognised in its later calls through the registry, so the
//! registry must be complete before any call is judged: the first pass reads every file for the calls that issue
//! credentials, the engine orders them by issue time ([`Engine::build_registry`]), and only then does the
//! evaluating pass start. Verdicts therefore do not depend on the order of files or records.
//!
//! The pass parses only what may hold an issuing call: a file (or, in JSON lines, a line) whose text contains
//! none of the issuing event names and no `\u` escape cannot hold one (the prefilter's argument: an event name
//! is written literally unless escaped with `\u`). Standard input cannot be read twice and is left out.

use std::io::Read;
use std::path::PathBuf;

use rayon::prelude::*;
use trailguard_core::engine::Engine;
use trailguard_core::event::{read_lines, read_records_where, read_records_with, Actor};
use trailguard_core::prefilter::made_by_aws_service;
use trailguard_core::session::{may_issue, Issued, Registry};

/// Reads the issuing calls of every file (not standard input) and builds the registry.
pub fn build(engine: &Engine, files: &[PathBuf]) -> Registry {
    let calls: Vec<(Actor, Issued)> = files
        .par_iter()
        .filter(|path| path.as_os_str() != "-")
        .flat_map(|path| {
            let Some(text) = read_text(path) else { return Vec::new() };
            if !may_issue(&text) {
                return Vec::new();
            }
            if first_line_is_json(&text) {
                // One large JSON-lines file is one input: its blocks are read in parallel, or the whole pass
                // would run on one core before the evaluating pass starts.
                return blocks(&text).par_iter().flat_map_iter(|block| issuing_lines(engine, block)).collect();
            }
            // A log file: only its records that may issue, and were not made by AWS, are parsed.
            let document =
                std::str::from_utf8(&text).ok().and_then(|text| read_records_where(text, may_issue_as_caller));
            let records = document.unwrap_or_else(|| {
                read_records_with(&text, None).map(|r| r.records.into_iter().flatten().collect()).unwrap_or_default()
            });
            records.iter().filter_map(|record| engine.issuing_offline(record)).collect()
        })
        .collect();
    engine.build_registry(calls)
}

/// The issuing calls among a block of JSON lines.
fn issuing_lines<'e>(engine: &'e Engine, block: &'e [u8]) -> impl Iterator<Item = (Actor, Issued)> + 'e {
    block
        .split(|b| *b == b'\n')
        .filter(|line| std::str::from_utf8(line).is_ok_and(may_issue_as_caller))
        .flat_map(|line| read_lines(line, 1, None).records)
        .flatten()
        .filter_map(|record| engine.issuing_offline(&record))
}

/// Whether one record's (or line's) text may hold an issuing call the registry records: it names an issuing
/// event (see [`may_issue`]) and AWS itself did not make it. Service calls (`sts:AssumeRole` for Lambda, common)
/// are never recorded ([`Engine::issuing_offline`]), and telling them by the actor's type alone is much cheaper
/// than parsing the record.
fn may_issue_as_caller(text: &str) -> bool {
    may_issue(text.as_bytes()) && !made_by_aws_service(text)
}

/// How much of a JSON-lines file one worker reads at a time.
const BLOCK: usize = 1 << 20;

/// `text` cut into blocks of about [`BLOCK`] bytes, each ending at a line end (or the text's end).
fn blocks(text: &[u8]) -> Vec<&[u8]> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut =
            rest.get(BLOCK..).and_then(|after| memchr::memchr(b'\n', after)).map_or(rest.len(), |at| BLOCK + at + 1);
        let (block, tail) = rest.split_at_checked(cut).unwrap_or((rest, &[]));
        blocks.push(block);
        rest = tail;
    }
    blocks
}

/// The file's text, inflated if gzipped; `None` when it cannot be read (the evaluating pass reports it).
fn read_text(path: &PathBuf) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice()).read_to_end(&mut text).ok()?;
        return Some(text);
    }
    Some(bytes)
}

/// Whether the first line is a JSON value of its own (JSON lines), rather than the start of one document.
fn first_line_is_json(text: &[u8]) -> bool {
    let first = text.split(|b| *b == b'\n').find(|l| !l.trim_ascii().is_empty()).unwrap_or_default();
    serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
        && text.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).nth(1).is_some()
}

#[cfg(test)]
mod tests {
    use trailguard_core::session::ISSUING_EVENTS;

    #[test]
    fn the_needles_cover_every_issuing_event() {
        assert!(ISSUING_EVENTS.iter().all(|e| e.contains("AssumeRole") || e.contains("GetFederationToken")));
    }

    #[test]
    fn blocks_end_at_line_ends_and_cover_the_text() {
        let line = format!("{{\"eventName\":\"AssumeRole\",\"pad\":\"{}\"}}\n", "x".repeat(1000));
        let text = line.repeat(3 * super::BLOCK / line.len());
        let blocks = super::blocks(text.as_bytes());
        assert!(blocks.len() >= 2, "{}", blocks.len());
        assert!(blocks.iter().all(|b| b.ends_with(b"\n")));
        assert_eq!(blocks.concat(), text.as_bytes());
        assert_eq!(super::blocks(b"one line, no end"), vec![&b"one line, no end"[..]]);
        assert!(super::blocks(b"").is_empty());
    }
}
