//! `trailguard scan`: every record of every input through the engine, offline, on every core, in bounded memory.
//!
//! The inputs are cut into pieces of work ([`source`]): small files whole, large ones in blocks of lines.
//! Pieces are evaluated in parallel and reported in input order, a bounded number at a time, so that memory holds
//! a few blocks whatever the archive's size; the [`tally`] keeps counts, findings per hour and the most severe
//! findings rather than every finding (`--format jsonl` streams every one). What depends on earlier records (a
//! behaviour window's count, an agent's regions) is answered in input order ([`InOrder`]), so that the findings do
//! not depend on the workers' timing.

mod html;
mod progress;
mod registry;
#[cfg(feature = "s3")]
pub mod s3;
mod sift;
mod source;
mod tally;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailguard_core::event::{read_lines, read_records_with, Reading, RecordError};
use trailguard_core::prefilter::Prefilter;
use trailguard_core::session::Registry;
use trailguard_core::wildcard;
use trailguard_core::{Engine, Finding};

use crate::{read_input, Format};
use progress::Progress;
use source::{with_lines_at, Buffers, Work};
use tally::Tally;

/// In a directory, the file names `scan` reads (a path named on the command line is read whatever its name).
const READ_NAMES: [&str; 6] = [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"];

/// What `scan --help` says about the files it reads and about empty input.
pub const FILE_NAMES_HELP: &str = "Files read: a file named on the command line is read whatever its name; in a \
directory (recursively) only files named *.json, *.json.gz, *.jsonl, *.jsonl.gz, *.ndjson or *.gz (CloudTrail \
writes AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz). When no file is left to read at all (an empty \
directory, or one without such names) scan says what it found and exits 2; files that hold no event (an empty log, \
a quiet --since window) exit 0 with a note.";

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

/// How to scan.
pub struct Options {
    pub format: Format,
    pub filters: Filters,
    /// Pass over, unparsed, the records the pre-filter proves no rule is triggered by.
    pub prefilter: bool,
    /// Draw the progress line on standard error.
    pub progress: bool,
}

/// What one piece of work gave.
#[derive(Default)]
struct Outcome {
    input: usize,
    /// Set when the piece ends its input: whether the input could be read, or why not.
    ended: Option<Result<(), String>>,
    records: usize,
    passed_over: usize,
    unreadable_records: usize,
    /// The verdicts, in record order.
    judged: Vec<Judged>,
    warnings: BTreeMap<String, usize>,
    /// Records that could not be read, in order; for a block of lines, numbered from the block's start.
    errors: Vec<RecordError>,
    /// For a block of lines: how many it held.
    lines: usize,
    /// Records outside the `--since`/`--until` window.
    outside_window: usize,
}

/// One record's verdict, as a worker gives it.
enum Judged {
    /// Final: the findings (filtered).
    Findings(Vec<Finding>),
    /// The record counts toward a behaviour window or uses a region, whose answer depends on the records before it:
    /// taken in input order ([`InOrder`]), so that a scan gives the same findings whatever its workers' timing.
    Counted(Box<Counted>),
}

/// A record judged with its behaviour count and its region use answered "nothing", and what to ask in order.
struct Counted {
    record: trailguard_core::event::CloudTrailRecord,
    count: Option<trailguard_core::behaviour::Count>,
    region: Option<trailguard_core::regions::RegionUse>,
    /// The findings (filtered) when both answers are "nothing".
    findings: Vec<Finding>,
}

/// Answers behaviour counts and region uses in input order, and judges again the few records whose answer is not
/// "nothing" (a window crossed, a new region).
struct InOrder<'a> {
    engine: &'a Engine,
    registry: &'a Registry,
    counters: trailguard_core::behaviour::Counters,
    filters: &'a Filters,
}

impl InOrder<'_> {
    /// The findings of one verdict.
    fn findings(&self, judged: Judged) -> Vec<Finding> {
        let counted = match judged {
            Judged::Findings(findings) => return findings,
            Judged::Counted(counted) => counted,
        };
        let crossing = counted.count.as_ref().and_then(|count| self.counters.count(count));
        let novelty = counted.region.as_ref().and_then(|used| self.counters.regions.see(used));
        if crossing.is_none() && novelty.is_none() {
            return counted.findings;
        }
        let evaluation =
            self.engine.evaluate_answering(&counted.record, self.registry, |_| crossing.clone(), |_| novelty.clone());
        evaluation.findings.into_iter().filter(|f| self.filters.keeps(f)).collect()
    }
}

struct Scanner<'a> {
    engine: &'a Engine,
    registry: &'a Registry,
    filters: &'a Filters,
    prefilter: Option<Prefilter<'a>>,
    files: &'a [PathBuf],
    progress: &'a Progress,
    buffers: &'a Buffers,
}

impl Scanner<'_> {
    fn process(&self, work: Work) -> Outcome {
        let prefilter = self.prefilter.as_ref();
        match work {
            Work::Whole { input, bytes } => match self.read_whole(input, bytes) {
                Ok(reading) => Outcome { ended: Some(Ok(())), ..self.evaluate(input, reading) },
                Err(e) => Outcome { input, ended: Some(Err(e)), ..Outcome::default() },
            },
            Work::Lines { input, bytes, .. } => {
                let reading = read_lines(&bytes, 1, prefilter);
                self.buffers.give(bytes);
                self.evaluate(input, reading)
            }
            Work::Range { input, file, at, len } => {
                match with_lines_at(&file, at, len, |_, lines| read_lines(lines, 1, prefilter)) {
                    Ok(reading) => self.evaluate(input, reading),
                    Err(e) => Outcome { input, ended: Some(Err(e.to_string())), ..Outcome::default() },
                }
            }
            Work::Sifted { input, file, sifted, whole } => {
                let mut buffer = self.buffers.take();
                let reading = sifted.read_again(&file, whole, &mut buffer, prefilter);
                self.buffers.give(buffer);
                match reading {
                    Ok(reading) => self.evaluate(input, reading),
                    Err(e) => {
                        Outcome { input, ended: Some(Err(format!("cannot read it again: {e}"))), ..Outcome::default() }
                    }
                }
            }
            Work::End { input, error } => {
                Outcome { input, ended: Some(error.map_or(Ok(()), Err)), ..Outcome::default() }
            }
        }
    }

    /// The records of a whole input: its bytes as given, or its file read now (in parallel with the others).
    fn read_whole(&self, input: usize, bytes: Option<Vec<u8>>) -> Result<Reading, String> {
        let bytes = match (bytes, self.files.get(input)) {
            (Some(bytes), _) => bytes,
            (None, Some(path)) => {
                let bytes = read_input(path).map_err(|e| e.to_string())?;
                self.progress.add_bytes(bytes.len() as u64);
                bytes
            }
            (None, None) => Vec::new(),
        };
        read_records_with(&bytes, self.prefilter.as_ref()).map_err(|e| e.to_string())
    }

    fn evaluate(&self, input: usize, reading: Reading) -> Outcome {
        let mut outcome =
            Outcome { input, lines: reading.lines, passed_over: reading.passed_over, ..Outcome::default() };
        for record in reading.records {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    outcome.errors.push(e);
                    outcome.unreadable_records += 1;
                    continue;
                }
            };
            outcome.records += 1;
            if !self.filters.keeps_time(&record) {
                outcome.outside_window += 1;
                continue;
            }
            let (mut count, mut region) = (None, None);
            let evaluation = self.engine.evaluate_answering(
                &record,
                self.registry,
                |asked| {
                    count = Some(asked.clone());
                    None
                },
                |used| {
                    region = Some(used.clone());
                    None
                },
            );
            for warning in evaluation.warnings {
                *outcome.warnings.entry(warning).or_default() += 1;
            }
            let findings: Vec<Finding> = evaluation.findings.into_iter().filter(|f| self.filters.keeps(f)).collect();
            outcome.judged.push(match (count, region) {
                (None, None) => Judged::Findings(findings),
                (count, region) => Judged::Counted(Box::new(Counted { record, count, region, findings })),
            });
        }
        let events = outcome.records + outcome.passed_over + outcome.unreadable_records;
        self.progress.add_events(events as u64, 0);
        outcome
    }
}

pub fn run(engine: &Engine, paths: &[PathBuf], options: &Options) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    let mut nothing = Vec::new();
    for path in paths {
        let before = files.len();
        let mut others = Vec::new();
        collect(path, &mut files, &mut others)?;
        if files.len() == before {
            nothing.push(unread(path, &others));
        }
    }
    let names = READ_NAMES.map(|n| format!("*{n}")).join(", ");
    if files.is_empty() {
        anyhow::bail!("nothing to read: {}; in a directory, scan reads files named {names}", nothing.join("; "));
    }
    for what in &nothing {
        crate::note(format_args!("{what}; in a directory, scan reads files named {names}"))?;
    }
    let total = files
        .iter()
        .map(|f| (f.as_os_str() != "-").then(|| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)))
        .sum::<Option<u64>>();
    let label: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let size = Size { bytes: total, objects: None };
    let readable: Vec<PathBuf> = files.iter().filter(|f| f.as_os_str() != "-").cloned().collect();
    // The first pass sifts plain JSON-lines files for the second, which then reads only what it must of them.
    let sifting = options.prefilter.then(|| Prefilter::new(engine));
    let (registry, unread, sifts) =
        registry::build(engine, &readable, &size, options.progress, sifting.as_ref(), |progress, buffers, send| {
            source::produce(&readable, progress, buffers, send)
        });
    // The first pass numbered only the readable inputs; the second numbers them all.
    let numbers: Vec<usize> =
        (0..files.len()).filter(|i| files.get(*i).is_some_and(|f| f.as_os_str() != "-")).collect();
    let sifts = sifts.into_iter().filter_map(|(input, blocks)| Some((*numbers.get(input)?, blocks))).collect();
    let registered = sift::RegisteredKeys::new(&registry);
    scan(engine, &files, size, &label.join(" "), options, (registry, unread), |progress, buffers, send| {
        source::produce_sifted(&files, &sifts, Some(&registered), progress, buffers, send)
    })
}

/// `scan s3://bucket/prefix/...`: the archive listed, then fetched and scanned through the same pipeline.
#[cfg(feature = "s3")]
pub fn run_s3(engine: &Engine, urls: &[String], options: &Options) -> anyhow::Result<ExitCode> {
    let filters = &options.filters;
    crate::note(format_args!("listing {}", urls.join(" ")))?;
    let archive = s3::Archive::list(urls, filters.since, filters.until)?;
    let (objects, bytes) = archive.size();
    if objects == 0 {
        anyhow::bail!(
            "nothing to read: no CloudTrail log under {}{}",
            urls.join(" "),
            if filters.since.is_some() { " for the --since/--until window" } else { "" }
        );
    }
    crate::note(format_args!("{objects} object(s), {bytes} byte(s) to read"))?;
    let names = archive.names();
    let size = Size { bytes: Some(bytes), objects: Some(objects) };
    let produce =
        |progress: &Progress, _: &Buffers, send: &mut dyn FnMut(Work) -> bool| archive.produce(progress, send);
    let (registry, unread, _) = registry::build(engine, &names, &size, options.progress, None, produce);
    scan(engine, &names, size, &urls.join(" "), options, (registry, unread), produce)
}

/// What the inputs hold, for the progress line: bytes (unknown for standard input) and, from S3, objects.
pub struct Size {
    bytes: Option<u64>,
    objects: Option<u64>,
}

/// Runs the pieces `produce` cuts from the inputs named `files` through the engine, with the registry of the first
/// pass (and what that pass could not read), and reports them.
fn scan<P>(
    engine: &Engine,
    files: &[PathBuf],
    size: Size,
    label: &str,
    options: &Options,
    (registry, unread_first): (Registry, registry::Unread),
    produce: P,
) -> anyhow::Result<ExitCode>
where
    P: Fn(&Progress, &Buffers, &mut dyn FnMut(Work) -> bool) + Sync,
{
    let total = size.bytes;
    // The action catalogue is parsed on first use; parsed now, it is ready by the first policy the workers meet,
    // while the reader is still filling the first blocks.
    rayon::spawn(|| {
        trailguard_core::policy::catalogue::Catalogue::get();
    });
    let progress =
        if options.progress { Progress::shown(total, size.objects) } else { Progress::hidden(total, size.objects) };
    let buffers = Buffers::default();
    let scanner = Scanner {
        engine,
        registry: &registry,
        filters: &options.filters,
        prefilter: options.prefilter.then(|| Prefilter::new(engine).with_registry(&registry)),
        files,
        progress: &progress,
        buffers: &buffers,
    };
    let keep = match options.format {
        Format::Text => 20,
        Format::Html => 200,
        Format::Jsonl => 0,
    };
    let stdout = std::io::stdout();
    let mut report = Report {
        tally: Tally::keeping(keep),
        files,
        progress: &progress,
        format: options.format,
        out: std::io::BufWriter::new(stdout.lock()),
        lines_before: (usize::MAX, 0),
        skipped: std::collections::HashSet::new(),
        in_order: InOrder { engine, registry: &registry, counters: Default::default(), filters: &options.filters },
    };
    let process = |work: Work| scanner.process(work);
    let produce = |send: &mut dyn FnMut(Work) -> bool| produce(&progress, &buffers, send);
    let written = pipeline(&produce, &process, &mut |outcome| report.add(outcome));
    progress.finish();
    written?;
    let Report { mut tally, mut out, skipped, .. } = report;
    match options.format {
        Format::Text => tally.write_text(&mut out)?,
        Format::Html => {
            out.write_all(html::render(&mut tally, label).as_bytes())?;
        }
        Format::Jsonl => {}
    }
    out.flush()?;
    crate::note(format_args!(
        "read {} file(s), {} event(s) ({} evaluated, {} passed over by the pre-filter); {} finding(s); \
         skipped {} unreadable file(s), {} unreadable record(s)",
        tally.files,
        tally.events(),
        tally.records,
        tally.passed_over,
        tally.findings,
        tally.unreadable_files,
        tally.unreadable_records
    ))?;
    let filters = &options.filters;
    if tally.files > 0 && tally.events() == 0 && tally.unreadable_records == 0 {
        crate::note(format_args!("note: the {} file(s) read held no event", tally.files))?;
    } else if (filters.since.is_some() || filters.until.is_some())
        && tally.records > 0
        && tally.records == tally.outside_window
    {
        crate::note(format_args!(
            "note: none of the {} event(s) evaluated is inside the --since/--until window",
            tally.records
        ))?;
    }
    // An input the first pass could not read but the second did (an object fetched again) may have issued
    // sessions the registry lacks: the scan is incomplete, as for an unreadable file.
    let missed: Vec<&(String, String)> = unread_first.iter().filter(|(name, _)| !skipped.contains(name)).collect();
    for (name, reason) in &missed {
        crate::note(format_args!(
            "trailguard: the first pass (agent sessions) could not read {name}: {reason}; sessions issued there are \
             unknown to this scan"
        ))?;
    }
    let unreadable = tally.unreadable_files + tally.unreadable_records + missed.len();
    Ok(if unreadable > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Hands one piece of work on; `false` when the consumer has gone.
type Handing<'a> = &'a mut dyn FnMut(Work) -> bool;

/// Runs the pieces `produce` cuts on the worker pool through `process` and hands each result to `consume`, in
/// input order, until done or `consume` fails. Pieces flow from a reader thread onto the pool in order, and each
/// piece's result slot into a queue that this thread empties in the same order: reading, evaluating and
/// consuming overlap, and the queue's bound is the most pieces (hence blocks of input) in memory at once.
fn pipeline<T: Send>(
    produce: &(dyn Fn(Handing<'_>) + Sync),
    process: &(dyn Fn(Work) -> T + Sync),
    consume: &mut dyn FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let in_flight = 4 * rayon::current_num_threads();
    let (queue, results) = std::sync::mpsc::sync_channel::<std::sync::mpsc::Receiver<T>>(in_flight);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            rayon::in_place_scope_fifo(|pool| {
                produce(&mut |work| {
                    let (slot, result) = std::sync::mpsc::sync_channel(1);
                    if queue.send(result).is_err() {
                        return false;
                    }
                    pool.spawn_fifo(move |_| {
                        let _ = slot.send(process(work));
                    });
                    true
                })
            })
        });
        // Returning early drops `results`: the reader's next send fails and it stops.
        for result in results {
            consume(result.recv()?)?;
        }
        Ok(())
    })
}

/// Where outcomes go, in input order: the tally, standard error, and the findings as JSON lines when asked.
struct Report<'a, W> {
    tally: Tally,
    files: &'a [PathBuf],
    progress: &'a Progress,
    format: Format,
    out: W,
    /// The input being streamed, and how many of its lines earlier blocks held.
    lines_before: (usize, usize),
    /// The inputs that could not be read, by name.
    skipped: std::collections::HashSet<String>,
    /// The behaviour counts and region uses, answered in input order.
    in_order: InOrder<'a>,
}

impl<W: Write> Report<'_, W> {
    fn add(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        let path = || self.files.get(outcome.input).map(|p| p.display().to_string()).unwrap_or_default();
        if self.lines_before.0 != outcome.input {
            self.lines_before = (outcome.input, 0);
        }
        for mut error in outcome.errors {
            error.line = error.line.map(|line| line + self.lines_before.1);
            self.progress.message(&format!("trailguard: {}: {error}", path()));
        }
        self.lines_before.1 += outcome.lines;
        let tally = &mut self.tally;
        match outcome.ended {
            // A file read again by pieces may fail in several and still end: it is counted once, as unreadable.
            Some(Ok(())) if !self.skipped.contains(&path()) => tally.files += 1,
            Some(Err(e)) => {
                self.progress.message(&format!("trailguard: skipped {}: {e}", path()));
                if self.skipped.insert(path()) {
                    tally.unreadable_files += 1;
                }
            }
            _ => {}
        }
        tally.records += outcome.records;
        tally.passed_over += outcome.passed_over;
        tally.unreadable_records += outcome.unreadable_records;
        tally.outside_window += outcome.outside_window;
        for (warning, count) in outcome.warnings {
            *tally.warnings.entry(warning).or_default() += count;
        }
        let findings: Vec<Finding> =
            outcome.judged.into_iter().flat_map(|judged| self.in_order.findings(judged)).collect();
        self.progress.add_events(0, findings.len() as u64);
        for finding in findings {
            if self.format == Format::Jsonl {
                // Serialized first: a closed pipe must reach `main` as the `io::Error` it is.
                let line = serde_json::to_string(&finding)?;
                writeln!(self.out, "{line}")?;
            }
            tally.add(finding);
        }
        Ok(())
    }
}

/// What a path that gave no file to read held.
fn unread(path: &Path, others: &[PathBuf]) -> String {
    let shown: Vec<String> = others.iter().take(3).map(|p| p.display().to_string()).collect();
    match others.len() {
        0 => format!("{} holds no file", path.display()),
        n => format!(
            "{} holds {n} file(s), none with a name scan reads ({}{})",
            path.display(),
            shown.join(", "),
            if n > shown.len() { ", ..." } else { "" }
        ),
    }
}

/// Files under a path: the path itself, or the CloudTrail-looking files below a directory, sorted; `others`
/// gets the files below it whose names are not read.
fn collect(path: &Path, files: &mut Vec<PathBuf>, others: &mut Vec<PathBuf>) -> anyhow::Result<()> {
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
            collect(&entry, files, others)?;
        } else if entry.file_name().and_then(|n| n.to_str()).is_some_and(is_record_file) {
            files.push(entry);
        } else {
            others.push(entry);
        }
    }
    Ok(())
}

/// Whether a file (or S3 key) has a name `scan` reads in a directory.
fn is_record_file(name: &str) -> bool {
    READ_NAMES.iter().any(|ext| name.ends_with(ext))
}
