//! `trailguard scan`: every record of every input through the engine, offline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use trailguard_core::event::read_records;
use trailguard_core::{Engine, Finding, Severity};

use crate::{read_input, Format};

/// What one scan saw.
#[derive(Default)]
struct Tally {
    files: usize,
    records: usize,
    unreadable_files: usize,
    unreadable_records: usize,
    findings: Vec<Finding>,
    warnings: BTreeMap<String, usize>,
}

pub fn run(engine: &Engine, paths: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for file in &files {
        let bytes = match read_input(file) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("trailguard: skipped {}: {e}", file.display());
                tally.unreadable_files += 1;
                continue;
            }
        };
        let records = match read_records(&bytes) {
            Ok(records) => records,
            Err(e) => {
                eprintln!("trailguard: skipped {}: {e}", file.display());
                tally.unreadable_files += 1;
                continue;
            }
        };
        tally.files += 1;
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    eprintln!("trailguard: {}: {e}", file.display());
                    tally.unreadable_records += 1;
                    continue;
                }
            };
            tally.records += 1;
            let evaluation = engine.evaluate_offline(&record);
            for warning in evaluation.warnings {
                *tally.warnings.entry(warning).or_default() += 1;
            }
            for finding in evaluation.findings {
                if format == Format::Jsonl {
                    serde_json::to_writer(&mut out, &finding)?;
                    writeln!(out)?;
                }
                tally.findings.push(finding);
            }
        }
    }
    if format == Format::Text {
        summary(&mut out, &tally)?;
    }
    out.flush()?;
    let unreadable = tally.unreadable_files + tally.unreadable_records;
    eprintln!(
        "trailguard: read {} file(s), {} record(s); {} finding(s); skipped {} unreadable file(s), {} unreadable record(s)",
        tally.files,
        tally.records,
        tally.findings.len(),
        tally.unreadable_files,
        tally.unreadable_records
    );
    Ok(if unreadable > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Files under a path: the path itself, or the CloudTrail-looking files below a directory, sorted.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.as_os_str() == "-" || !path.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry.file_name().and_then(|n| n.to_str()).is_some_and(is_record_file) {
            files.push(entry);
        }
    }
    Ok(())
}

fn is_record_file(name: &str) -> bool {
    [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"].iter().any(|ext| name.ends_with(ext))
}

fn summary(out: &mut impl Write, tally: &Tally) -> std::io::Result<()> {
    let mut findings: Vec<&Finding> = tally.findings.iter().collect();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.time.cmp(&b.time)));
    for finding in &findings {
        writeln!(out, "{}", finding.to_text())?;
    }
    writeln!(out, "Scanned {} record(s) in {} file(s): {} finding(s)", tally.records, tally.files, findings.len())?;
    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    let mut by_actor: BTreeMap<String, usize> = BTreeMap::new();
    for finding in &findings {
        *by_rule.entry(&finding.rule).or_default() += 1;
        *by_severity.entry(std::cmp::Reverse(finding.severity)).or_default() += 1;
        *by_actor.entry(finding.actor.display_name()).or_default() += 1;
    }
    for (severity, count) in by_severity {
        writeln!(out, "  {:<9} {count}", severity.0.as_str())?;
    }
    for (rule, count) in by_rule {
        writeln!(out, "  {rule:<22} {count}")?;
    }
    let mut actors: Vec<(String, usize)> = by_actor.into_iter().collect();
    actors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (actor, count) in actors.into_iter().take(10) {
        writeln!(out, "  actor {actor}: {count}")?;
    }
    for (warning, count) in &tally.warnings {
        writeln!(out, "  note ({count}x): {warning}")?;
    }
    Ok(())
}
