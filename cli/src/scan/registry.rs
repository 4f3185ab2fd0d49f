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
use trailguard_core::event::{read_lines, read_records_with, Actor};
use trailguard_core::session::{may_issue, Issued, Registry};

/// Reads the issuing calls of every file (not standard input) and builds the registry.
pub fn build(engine: &Engine, files: &[PathBuf]) -> Registry {
    let calls: Vec<(Actor, Issued)> = files
        .par_iter()
        .filter(|path| path.as_os_str() != "-")
        .flat_map_iter(|path| {
            let mut calls = Vec::new();
            let Some(text) = read_text(path) else { return calls };
            if !may_issue(&text) {
                return calls;
            }
            let records = if first_line_is_json(&text) {
                text.split(|b| *b == b'\n')
                    .filter(|line| may_issue(line))
                    .flat_map(|line| read_lines(line, 1, None).records)
                    .collect()
            } else {
                read_records_with(&text, None).map(|r| r.records).unwrap_or_default()
            };
            calls.extend(records.into_iter().flatten().filter_map(|record| engine.issuing_offline(&record)));
            calls
        })
        .collect();
    engine.build_registry(calls)
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
}
