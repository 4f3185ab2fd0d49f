//! The progress line on a terminal: events, events per second, share of the input done and time left.
//!
//! Drawn on standard error a few times a second, only when it is a terminal (or when asked); messages about bad
//! input go through [`Progress::message`], which clears the line first so the two never mix.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters the workers add to, and the drawing of them.
pub struct Progress {
    shown: bool,
    /// Bytes of input on disk, when known (not for standard input).
    total: Option<u64>,
    bytes: AtomicU64,
    events: AtomicU64,
    findings: AtomicU64,
    started: Instant,
    finished: AtomicBool,
    /// Held while writing to standard error; says whether a progress line is on screen.
    screen: Mutex<bool>,
}

impl Progress {
    /// Progress that is counted and drawn.
    pub fn shown(total: Option<u64>) -> Progress {
        Progress { shown: true, ..Progress::hidden(total) }
    }

    /// Progress that is counted but never drawn (output piped, or `--progress never`).
    pub fn hidden(total: Option<u64>) -> Progress {
        Progress {
            shown: false,
            total,
            bytes: AtomicU64::new(0),
            events: AtomicU64::new(0),
            findings: AtomicU64::new(0),
            started: Instant::now(),
            finished: AtomicBool::new(false),
            screen: Mutex::new(false),
        }
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_events(&self, events: u64, findings: u64) {
        self.events.fetch_add(events, Ordering::Relaxed);
        self.findings.fetch_add(findings, Ordering::Relaxed);
    }

    /// Prints a line to standard error, clearing the progress line first.
    pub fn message(&self, line: &str) {
        let mut on_screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let mut stderr = std::io::stderr().lock();
        if *on_screen {
            let _ = write!(stderr, "\r\x1b[2K");
            *on_screen = false;
        }
        let _ = writeln!(stderr, "{line}");
    }

    /// Redraws the line until [`Progress::finish`]; returns at once when progress is hidden.
    pub fn draw_until_finished(&self) {
        if !self.shown {
            return;
        }
        loop {
            let line = self.line();
            let mut on_screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
            if !self.finished.load(Ordering::Relaxed) {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
                *on_screen = true;
            }
            drop(on_screen);
            for _ in 0..4 {
                std::thread::sleep(Duration::from_millis(50));
                if self.finished.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }

    /// Stops drawing and clears the line.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        let mut on_screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        if *on_screen {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            *on_screen = false;
        }
    }

    /// `1.2M events  640k/s  [########            ] 42%  ETA 0:13  3 findings`
    pub fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let events = self.events.load(Ordering::Relaxed);
        let findings = self.findings.load(Ordering::Relaxed);
        let mut line = format!("{} events  {}/s", si(events as f64), si(events as f64 / elapsed));
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let done = (self.bytes.load(Ordering::Relaxed) as f64 / total as f64).min(1.0);
            let filled = (done * BAR as f64).round() as usize;
            line.push_str(&format!("  [{}{}] {:.0}%", "#".repeat(filled), " ".repeat(BAR - filled), done * 100.0));
            if done > 0.0 {
                let left = (elapsed / done - elapsed).max(0.0) as u64;
                line.push_str(&format!("  ETA {}:{:02}", left / 60, left % 60));
            }
        }
        line.push_str(&format!("  {findings} findings"));
        line
    }
}

/// The bar's width in characters.
const BAR: usize = 20;

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
    fn the_line_says_rate_share_and_time_left() {
        let progress = Progress::hidden(Some(1000));
        progress.add_bytes(250);
        progress.add_events(2_500_000, 3);
        let line = progress.line();
        assert!(line.starts_with("2.5M events  "), "{line}");
        assert!(line.contains("/s  [#####               ] 25%  ETA 0:"), "{line}");
        assert!(line.ends_with("3 findings"), "{line}");
        let unknown = Progress::hidden(None).line();
        assert!(!unknown.contains('%') && !unknown.contains("ETA"), "{unknown}");
    }
}
