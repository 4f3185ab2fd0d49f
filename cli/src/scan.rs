//! `trailguard scan`: every record of every input through the engine, offline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailguard_core::event::read_records;
use trailguard_core::wildcard;
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

/// Which findings to report.
#[derive(Default)]
pub struct Filters {
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Only these rules (none: all).
    pub rules: Vec<String>,
    /// Only these accounts (none: all).
    pub accounts: Vec<String>,
    /// Only actors whose ARN, role or user name matches this glob.
    pub actor: Option<String>,
}

impl Filters {
    fn keeps_time(&self, record: &trailguard_core::event::CloudTrailRecord) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = record.event_time.as_deref().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
            return false;
        };
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }

    fn keeps(&self, finding: &Finding) -> bool {
        let rule = self.rules.is_empty() || self.rules.contains(&finding.rule);
        let account = self.accounts.is_empty() || finding.account.as_ref().is_some_and(|a| self.accounts.contains(a));
        let actor = self.actor.as_deref().is_none_or(|pattern| {
            let a = &finding.actor;
            [a.arn.as_deref(), a.role_name.as_deref(), a.user_name.as_deref(), a.session_name.as_deref()]
                .into_iter()
                .flatten()
                .any(|v| wildcard::matches(pattern, v, true))
        });
        rule && account && actor
    }
}

/// What one file gave.
#[derive(Default)]
struct FileScan {
    read: bool,
    records: usize,
    unreadable_records: usize,
    findings: Vec<Finding>,
    warnings: BTreeMap<String, usize>,
    /// Lines for standard error, in order.
    messages: Vec<String>,
}

fn scan_file(engine: &Engine, filters: &Filters, file: &Path) -> FileScan {
    let mut scan = FileScan::default();
    let records =
        match read_input(file).map_err(|e| e.to_string()).and_then(|b| read_records(&b).map_err(|e| e.to_string())) {
            Ok(records) => records,
            Err(e) => {
                scan.messages.push(format!("trailguard: skipped {}: {e}", file.display()));
                return scan;
            }
        };
    scan.read = true;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                scan.messages.push(format!("trailguard: {}: {e}", file.display()));
                scan.unreadable_records += 1;
                continue;
            }
        };
        scan.records += 1;
        if !filters.keeps_time(&record) {
            continue;
        }
        let evaluation = engine.evaluate_offline(&record);
        for warning in evaluation.warnings {
            *scan.warnings.entry(warning).or_default() += 1;
        }
        scan.findings.extend(evaluation.findings.into_iter().filter(|f| filters.keeps(f)));
    }
    scan
}

pub fn run(engine: &Engine, paths: &[PathBuf], format: Format, filters: &Filters) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    // Files are independent (CloudTrail writes many small ones): one per core at a time, reported in order.
    let scans: Vec<FileScan> = files.par_iter().map(|file| scan_file(engine, filters, file)).collect();
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for scan in scans {
        for message in &scan.messages {
            eprintln!("{message}");
        }
        if scan.read {
            tally.files += 1;
        } else {
            tally.unreadable_files += 1;
        }
        tally.records += scan.records;
        tally.unreadable_records += scan.unreadable_records;
        for (warning, count) in scan.warnings {
            *tally.warnings.entry(warning).or_default() += count;
        }
        for finding in scan.findings {
            if format == Format::Jsonl {
                serde_json::to_writer(&mut out, &finding)?;
                writeln!(out)?;
            }
            tally.findings.push(finding);
        }
    }
    if format == Format::Text {
        summary(&mut out, &tally)?;
    }
    out.flush()?;
    eprintln!(
        "trailguard: read {} file(s), {} record(s); {} finding(s); skipped {} unreadable file(s), {} unreadable record(s)",
        tally.files,
        tally.records,
        tally.findings.len(),
        tally.unreadable_files,
        tally.unreadable_records
    );
    let unreadable = tally.unreadable_files + tally.unreadable_records;
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
