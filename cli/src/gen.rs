//! `trailguard gen`: write a deterministic synthetic CloudTrail archive, laid out as CloudTrail writes it
//! (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`), or as one JSON-lines file, with a manifest of
//! the planted events (`planted.tsv`: event id, rule).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use flate2::write::GzEncoder;
use trailguard_core::synth::{cloudtrail_json, generate_mix, Mix};

/// Records per log file, about what CloudTrail writes for a busy account every few minutes.
const PER_FILE: u64 = 1_000;

pub fn run(
    out: &Path,
    events: u64,
    seed: u64,
    accounts: &[String],
    regions: &[String],
    jsonl: bool,
    mix: Mix,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut manifest = String::new();
    let streams = (accounts.len() * regions.len()).max(1) as u64;
    let per_stream = events.div_ceil(streams);
    let mut lines =
        if jsonl { Some(std::io::BufWriter::new(std::fs::File::create(out.join("events.jsonl"))?)) } else { None };
    let mut written = 0;
    for (a, account) in accounts.iter().enumerate() {
        for (r, region) in regions.iter().enumerate() {
            let stream_seed = seed.wrapping_add((a * 131 + r) as u64);
            let count = per_stream.min(events - written);
            written += count;
            let dir: PathBuf =
                [out, Path::new(&format!("AWSLogs/{account}/CloudTrail/{region}/2026/11/01"))].iter().collect();
            if lines.is_none() {
                std::fs::create_dir_all(&dir)?;
            }
            // Generated as written, a log file at a time: a million events never sit in memory.
            let mut records = generate_mix(stream_seed, count, account, region, "2026-11-01", mix).peekable();
            let mut n = 0;
            while records.peek().is_some() {
                let chunk: Vec<_> = records.by_ref().take(PER_FILE as usize).collect();
                for s in &chunk {
                    if let Some(rule) = s.planted_for {
                        let id = s.record.get("eventID").and_then(|v| v.as_str()).unwrap_or_default();
                        manifest.push_str(&format!("{id}\t{rule}\n"));
                    }
                }
                if let Some(lines) = lines.as_mut() {
                    for s in &chunk {
                        writeln!(lines, "{}", cloudtrail_json(&s.record))?;
                    }
                } else {
                    let name = format!(
                        "{account}_CloudTrail_{region}_20261101T{:04}Z_{stream_seed:x}{n:04}.json.gz",
                        n % 2400
                    );
                    let file = std::fs::File::create(dir.join(name))?;
                    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
                    let body: Vec<String> = chunk.iter().map(|s| cloudtrail_json(&s.record)).collect();
                    write!(gz, "{{\"Records\":[{}]}}", body.join(","))?;
                    gz.finish()?.flush()?;
                }
                n += 1;
            }
        }
    }
    if let Some(mut lines) = lines {
        lines.flush()?;
    }
    std::fs::write(out.join("planted.tsv"), &manifest)?;
    let planted = manifest.lines().count();
    crate::note(format_args!("wrote {written} events ({planted} planted) under {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
