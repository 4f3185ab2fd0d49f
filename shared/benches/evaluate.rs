//! Per-event evaluation on a realistic mix, against plain JSON parsing of the same events.
//!
//! The mix is built from the fixture events under `tests/fixtures/events`: 95% harmless events (reads, KMS,
//! S3, service activity), as real accounts produce, and 5% drawn from the rules' positives and near misses.
//! `baseline/json-value` parses each event into `serde_json::Value`, the least any JSON tool does;
//! `trailguard/evaluate` reads each event and runs every rule offline. Report the ratio of the two.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, Criterion, Throughput};
use trailguard_core::behaviour::Counters;
use trailguard_core::event::{read_event, read_lines, CloudTrailRecord};
use trailguard_core::session::Registry;
use trailguard_core::synth::Mix;
use trailguard_core::{Config, Engine};

/// One-line JSON of every fixture event, split into harmless and the rest.
fn fixture_events() -> (Vec<String>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/events");
    let (mut harmless, mut flagged) = (Vec::new(), Vec::new());
    let mut groups: Vec<_> = std::fs::read_dir(&root).into_iter().flatten().flatten().map(|e| e.path()).collect();
    groups.sort();
    for group in groups {
        let mut files: Vec<_> = std::fs::read_dir(&group).into_iter().flatten().flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            // Log files hold several records; the bench wants one event per item.
            let events = match value.get("Records").and_then(|r| r.as_array()) {
                Some(records) => records.iter().map(|r| r.to_string()).collect(),
                None => vec![value.to_string()],
            };
            if group.ends_with("harmless") {
                harmless.extend(events);
            } else {
                flagged.extend(events);
            }
        }
    }
    (harmless, flagged)
}

fn mix() -> Vec<String> {
    let (harmless, flagged) = fixture_events();
    assert!(!harmless.is_empty() && !flagged.is_empty(), "fixtures missing");
    (0..2000)
        .map(
            |i| {
                if i % 20 == 0 {
                    flagged[(i / 20) % flagged.len()].clone()
                } else {
                    harmless[i % harmless.len()].clone()
                }
            },
        )
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = mix();
    let bytes: usize = events.iter().map(String::len).sum();
    let engine = Engine::new(Config::default());
    let mut group = c.benchmark_group("mixed-2000-events");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("baseline/json-value", |b| {
        b.iter(|| {
            for event in &events {
                black_box(serde_json::from_str::<serde_json::Value>(event).ok());
            }
        })
    });
    group.bench_function("trailguard/read", |b| {
        b.iter(|| {
            for event in &events {
                black_box(read_event(event).ok());
            }
        })
    });
    group.bench_function("trailguard/evaluate", |b| {
        b.iter(|| {
            let mut findings = 0;
            for event in &events {
                if let Ok(record) = read_event(event) {
                    findings += engine.evaluate_offline(&record).findings.len();
                }
            }
            black_box(findings)
        })
    });
    group.finish();
    eprintln!("mix: {} events, {} bytes", events.len(), bytes);
}

/// The role-to-role `AssumeRole` records of `gen --mix assume-role` (issue 14), one JSON line each.
fn assume_role_records() -> Vec<String> {
    trailguard_core::synth::generate_mix(7, 6_000, "123456789012", "us-east-1", "2026-11-01", Mix::AssumeRole)
        .map(|s| s.record)
        .filter(|r| r["eventName"] == "AssumeRole" && r["userIdentity"]["type"] == "AssumedRole")
        .map(|r| r.to_string())
        .collect()
}

/// The least a Rust tool that reads the records does: a typed parse of each.
fn typed_parse(records: &[String]) -> usize {
    records.iter().filter(|record| serde_json::from_str::<CloudTrailRecord>(record).is_ok()).count()
}

/// The evaluating pass alone, against the registry the first pass built.
fn evaluate(engine: &Engine, records: &[String], registry: &Registry) -> usize {
    let counters = Counters::default();
    let mut findings = 0;
    for line in records {
        for record in read_lines(line.as_bytes(), 1, None).records.into_iter().flatten() {
            findings += engine.evaluate_registered(&record, registry, &counters).findings.len();
        }
    }
    findings
}

/// The first pass (read each issuing call, build the registry from them).
fn registry(engine: &Engine, records: &[String]) -> Registry {
    let calls: Vec<_> = records
        .iter()
        .flat_map(|line| read_lines(line.as_bytes(), 1, None).records)
        .flatten()
        .filter_map(|record| engine.issuing_offline(&record))
        .collect();
    engine.build_registry(&calls)
}

/// What `scan` pays for an `AssumeRole` record (the registry pass reads it for the session it issues, the main
/// pass evaluates it against that registry), against a typed parse of the same record (the least a Rust tool that
/// reads the record does).
fn bench_assume_role(c: &mut Criterion) {
    let records = assume_role_records();
    assert!(records.len() > 900, "{}", records.len());
    let engine = Engine::new(Config::default());
    let built = registry(&engine, &records);
    let mut group = c.benchmark_group("assume-role-records");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("baseline/typed-parse", |b| b.iter(|| black_box(typed_parse(&records))));
    group.bench_function("trailguard/evaluate", |b| b.iter(|| black_box(evaluate(&engine, &records, &built))));
    group.bench_function("trailguard/registry-and-evaluate", |b| {
        b.iter(|| black_box(evaluate(&engine, &records, &registry(&engine, &records))))
    });
    group.finish();
}

/// The fixtures' calls that issue role sessions (`AssumeRole*`), written from AWS's documented records: agents'
/// sessions with tags and chains, a person's chain, web identity, an AWS service, trailguard's own roles. Cycled to
/// about as many records as gen's set. With `quiet`, only those that give no finding: a finding is rare in a real
/// trail and pays for its own text.
fn documented_issuing_records(engine: &Engine, quiet: bool) -> Vec<String> {
    let (harmless, flagged) = fixture_events();
    let mut records: Vec<String> = harmless
        .into_iter()
        .chain(flagged)
        .filter(|event| {
            let value: serde_json::Value = serde_json::from_str(event).unwrap();
            value["eventName"].as_str().is_some_and(|name| name.starts_with("AssumeRole"))
        })
        .collect();
    records.sort();
    records.dedup();
    let built = registry(engine, &records);
    if quiet {
        records.retain(|record| evaluate(engine, std::slice::from_ref(record), &built) == 0);
    }
    assert!(records.len() >= 5, "{}", records.len());
    records.iter().cycle().take(1_000).cloned().collect()
}

/// The three passes timed in interleaved rounds (each round runs each once, in turn, 20 times over the records): a
/// slow spell of this shared machine then falls on all three alike, where criterion's one-after-the-other runs
/// let it fall on one. Each ratio is the median (and quartiles) of the rounds' ratios. Three sets of records:
/// gen's, and the fixtures' documented ones with and without the findings.
fn interleaved_assume_role() {
    const ROUNDS: usize = 41;
    let engine = Engine::new(Config::default());
    let sets = [
        ("gen's AssumeRole records", assume_role_records()),
        ("documented issuing records without a finding", documented_issuing_records(&engine, true)),
        ("documented issuing records, all", documented_issuing_records(&engine, false)),
    ];
    for (set, records) in &sets {
        let built = registry(&engine, records);
        let timed = |run: &dyn Fn() -> usize| {
            let start = std::time::Instant::now();
            for _ in 0..20 {
                black_box(run());
            }
            start.elapsed().as_secs_f64()
        };
        let (mut evaluated, mut with_registry) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let typed = timed(&|| typed_parse(records));
            evaluated.push(timed(&|| evaluate(&engine, records, &built)) / typed);
            with_registry.push(timed(&|| evaluate(&engine, records, &registry(&engine, records))) / typed);
        }
        for (name, ratios) in [("evaluate", &mut evaluated), ("registry-and-evaluate", &mut with_registry)] {
            ratios.sort_by(f64::total_cmp);
            let at = |q: usize| ratios[q * (ROUNDS - 1) / 4];
            println!(
                "{set} ({} records), interleaved, {ROUNDS} rounds: trailguard/{name} = {:.2}x baseline/typed-parse \
                 (quartiles {:.2}x to {:.2}x)",
                records.len(),
                at(2),
                at(1),
                at(3)
            );
        }
    }
}

criterion_group!(benches, bench, bench_assume_role);

fn main() {
    // `cargo bench -- <filter>`: the interleaved rounds run with the assume-role group.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_none_or(|f| "assume-role-records".contains(f) || f.contains("assume-role")) {
        interleaved_assume_role();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
