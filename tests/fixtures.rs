//! Every fixture event through the engine: the exact rules and severities it must yield, no more, no less.
//!
//! Fixtures are CloudTrail records in their real format (bare, or inside an EventBridge event) under
//! `fixtures/events/<group>/`. `fixtures/expected.tsv` holds one line per fixture: its path, then
//! `rule:severity` pairs separated by spaces, or `-` for "no finding". The engine runs offline with the
//! configuration in `fixtures/config.json`, as `trailguard scan` would.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use trailguard_core::behaviour::Counters;
use trailguard_core::event::{read_records, read_records_with};
use trailguard_core::prefilter::Prefilter;
use trailguard_core::{Config, Engine};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn engine() -> Engine {
    let config = std::fs::read_to_string(fixtures_dir().join("config.json")).unwrap();
    Engine::new(Config::from_json(&config).unwrap())
}

fn expectations() -> Vec<(String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(fixtures_dir().join("expected.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (path, expected) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in `{line}`"));
            let set = expected.split_whitespace().filter(|s| *s != "-").map(str::to_owned).collect();
            (path.to_owned(), set)
        })
        .collect()
}

/// Runs one fixture file, through the scanner's pre-filter (with the file's registry, as `scan` builds it) or not,
/// and returns `rule:severity` for each finding.
fn check(engine: &Engine, path: &Path, filtered: bool) -> BTreeSet<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut found = BTreeSet::new();
    // One file is one archive: its registry comes from all its records (as `scan`'s first pass reads them,
    // without the pre-filter), its behaviour counts start at zero.
    let issuing = read_records(&bytes).unwrap().into_iter().flatten().filter_map(|r| engine.issuing_offline(&r));
    let registry = engine.build_registry(&issuing.collect::<Vec<_>>());
    let counters = Counters::default();
    let prefilter = filtered.then(|| Prefilter::new(engine).with_registry(&registry));
    for record in read_records_with(&bytes, prefilter.as_ref()).unwrap().records {
        let record = record.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for finding in engine.evaluate_registered(&record, &registry, &counters).findings {
            assert!(!finding.title.is_empty());
            assert!(finding.to_text().contains(&finding.rule));
            found.insert(format!("{}:{}", finding.rule, finding.severity));
        }
    }
    found
}

#[test]
fn every_fixture_yields_exactly_the_expected_findings() {
    let engine = engine();
    let mut failures = Vec::new();
    let expected = expectations();
    // The pre-filter must never drop a finding: every fixture gives the same through it.
    for (path, want) in &expected {
        for filter in [false, true] {
            let got = check(&engine, &fixtures_dir().join("events").join(path), filter);
            if &got != want {
                failures.push(format!("{path} (pre-filter: {filter}): expected {want:?}, got {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures differ:\n{}", failures.len(), expected.len(), failures.join("\n"));
}

#[test]
fn every_fixture_file_has_an_expectation_and_every_rule_is_covered() {
    let listed: BTreeSet<String> = expectations().into_iter().map(|(p, _)| p).collect();
    let mut on_disk = BTreeSet::new();
    let events = fixtures_dir().join("events");
    for group in std::fs::read_dir(&events).unwrap() {
        let group = group.unwrap().path();
        for file in std::fs::read_dir(&group).unwrap() {
            let file = file.unwrap().path();
            on_disk.insert(file.strip_prefix(&events).unwrap().to_string_lossy().into_owned());
        }
    }
    assert_eq!(listed, on_disk, "expected.tsv and fixtures/events must list the same files");
    assert!(on_disk.len() >= 80, "only {} fixtures", on_disk.len());
    let all: String = expectations().iter().flat_map(|(_, s)| s.iter().cloned()).collect::<Vec<_>>().join(" ");
    // `grant-unjudged` fires only when a look-up was made and failed, which an offline fixture cannot show: the
    // Lambda suite (`enforcement.rs`) and the rule's unit test cover it.
    for rule in trailguard_core::rules::registry().into_iter().filter(|r| r.id() != "grant-unjudged") {
        assert!(all.contains(&format!("{}:", rule.id())), "no fixture for rule {}", rule.id());
    }
}

#[test]
fn findings_are_stable_and_serialise() {
    let engine = engine();
    for (path, want) in expectations().iter().filter(|(_, w)| !w.is_empty()).take(20) {
        let bytes = std::fs::read(fixtures_dir().join("events").join(path)).unwrap();
        let record = read_records(&bytes).unwrap().remove(0).unwrap();
        let first = engine.evaluate_offline(&record).findings;
        let second = engine.evaluate_offline(&record).findings;
        assert_eq!(first, second, "{path}: evaluation must be deterministic");
        assert_eq!(first.len(), want.len(), "{path}");
        for finding in first {
            let json = serde_json::to_string(&finding).unwrap();
            let back: trailguard_core::Finding = serde_json::from_str(&json).unwrap();
            assert_eq!(back, finding);
            assert_eq!(finding.id.len(), 32);
        }
    }
}
