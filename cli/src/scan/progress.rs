//! The progress line on a terminal, drawn by `indicatif`: events, events per second, share of the input read,
//! time left and findings; for an archive in S3, objects and bytes fetched too.
//!
//! Drawn on standard error a few times a second, only when it is a terminal (or when asked); messages about bad
//! input go through [`Progress::message`], which takes the line away while they print so the two never mix.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The bar's position is bytes of input read; events and findings are counted beside it.
pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    events: AtomicU64,
    findings: AtomicU64,
    objects: AtomicU64,
    /// How many objects there are to fetch (none: reading files).
    of_objects: Option<u64>,
}

impl Progress {
    /// Progress that is counted and drawn on standard error, terminal or not (`--progress always`).
    pub fn shown(total: Option<u64>, objects: Option<u64>) -> Progress {
        // A `TermLike` target is drawn whatever standard error is; indicatif's own `stderr` target hides itself
        // when standard error is not a terminal, which `--progress auto` has already decided.
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::buffered_stderr()), 5);
        let progress = Progress::with_target(total, objects, target);
        progress.bar.enable_steady_tick(Duration::from_millis(200));
        progress
    }

    /// Progress that is counted but never drawn (output piped, or `--progress never`).
    pub fn hidden(total: Option<u64>, objects: Option<u64>) -> Progress {
        Progress::with_target(total, objects, ProgressDrawTarget::hidden())
    }

    fn with_target(total: Option<u64>, objects: Option<u64>, target: ProgressDrawTarget) -> Progress {
        let counts = Arc::new(Counts { of_objects: objects, ..Counts::default() });
        let bar = ProgressBar::with_draw_target(total.filter(|t| *t > 0), target);
        bar.set_style(style(&counts, total.is_some_and(|t| t > 0)));
        Progress { bar, counts }
    }

    pub fn add_bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    /// One object fetched (its bytes) or given up on (0).
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn add_object(&self, bytes: u64) {
        self.counts.objects.fetch_add(1, Ordering::Relaxed);
        self.bar.inc(bytes);
    }

    pub fn add_events(&self, events: u64, findings: u64) {
        self.counts.events.fetch_add(events, Ordering::Relaxed);
        self.counts.findings.fetch_add(findings, Ordering::Relaxed);
    }

    /// Prints a line to standard error with the progress line out of the way. A closed standard error is not
    /// this line's to report: the scan's closing summary meets it and ends the command quietly.
    pub fn message(&self, line: &str) {
        self.bar.suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    /// Stops drawing and clears the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `1.2M events  640k/s  [########            ] 42%  ETA 0:13  3 findings`; without a known size, the counts;
/// from S3, `1204/5000 objects  36.2 MiB/150.0 MiB` first.
fn style(counts: &Arc<Counts>, sized: bool) -> ProgressStyle {
    let template = match (sized, counts.of_objects.is_some()) {
        (true, true) => "{objects}  {binary_bytes}/{binary_total_bytes}  {events}  [{bar:20}] ETA {eta}  {findings}",
        (true, false) => "{events}  [{bar:20}] {percent}%  ETA {eta}  {findings}",
        (false, _) => "{events}  {findings}",
    };
    let objects = Arc::clone(counts);
    let events = Arc::clone(counts);
    let findings = Arc::clone(counts);
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("## ")
        .with_key("events", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let n = events.events.load(Ordering::Relaxed);
            let _ = write!(w, "{}", rate(n, state.elapsed()));
        })
        .with_key("objects", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let n = objects.objects.load(Ordering::Relaxed);
            let _ = write!(w, "{n}/{} objects", objects.of_objects.unwrap_or(0));
        })
        .with_key("findings", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{} findings", findings.findings.load(Ordering::Relaxed));
        })
}

/// `2.5M events  640k/s`.
fn rate(events: u64, elapsed: Duration) -> String {
    let per_second = events as f64 / elapsed.as_secs_f64().max(1e-3);
    format!("{} events  {}/s", si(events as f64), si(per_second))
}

/// 1234567 as `1.2M`.
fn si(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}G", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e4 => format!("{:.0}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_events_and_rate() {
        assert_eq!(rate(2_500_000, Duration::from_secs(4)), "2.5M events  625k/s");
        assert_eq!(rate(12, Duration::from_secs(1)), "12 events  12/s");
    }

    #[test]
    fn counting_works_hidden() {
        let progress = Progress::hidden(Some(1000), Some(2));
        progress.add_object(50);
        progress.add_bytes(250);
        progress.add_events(3, 1);
        assert_eq!(progress.bar.position(), 300);
        assert_eq!(progress.counts.objects.load(Ordering::Relaxed), 1);
        assert_eq!(progress.counts.events.load(Ordering::Relaxed), 3);
        progress.finish();
    }
}
