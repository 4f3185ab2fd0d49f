//! What a scan saw, in bounded memory: counts, the most severe findings, and findings per hour.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use trailguard_core::{Finding, Severity};

/// Severities, most severe first: the order of counts and of the chart's colours.
pub const SEVERITIES: [Severity; 5] =
    [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

/// The counts and the kept findings of one scan.
#[derive(Default)]
pub struct Tally {
    pub files: usize,
    pub unreadable_files: usize,
    /// Records parsed and evaluated.
    pub records: usize,
    /// Records the pre-filter proved no rule is triggered by.
    pub passed_over: usize,
    pub unreadable_records: usize,
    pub findings: usize,
    pub by_rule: BTreeMap<String, usize>,
    pub by_severity: BTreeMap<Reverse<Severity>, usize>,
    pub by_actor: HashMap<String, usize>,
    pub warnings: BTreeMap<String, usize>,
    /// Findings per hour (`2026-11-01T13`), by severity in [`SEVERITIES`] order.
    pub timeline: BTreeMap<String, [usize; 5]>,
    top: Vec<Finding>,
    keep: usize,
}

impl Tally {
    /// A tally that keeps the `keep` most severe findings (earliest first among equals).
    pub fn keeping(keep: usize) -> Tally {
        Tally { keep, ..Tally::default() }
    }

    /// Every event read: evaluated or passed over.
    pub fn events(&self) -> usize {
        self.records + self.passed_over
    }

    pub fn add(&mut self, finding: Finding) {
        self.findings += 1;
        *self.by_rule.entry(finding.rule.clone()).or_default() += 1;
        *self.by_severity.entry(Reverse(finding.severity)).or_default() += 1;
        *self.by_actor.entry(finding.actor.display_name()).or_default() += 1;
        let hour = finding.time.as_deref().and_then(|t| t.get(..13)).unwrap_or("unknown time").to_owned();
        let slot = SEVERITIES.iter().position(|s| *s == finding.severity).unwrap_or(0);
        if let Some(count) = self.timeline.entry(hour).or_default().get_mut(slot) {
            *count += 1;
        }
        if self.keep > 0 {
            self.top.push(finding);
            if self.top.len() >= 2 * self.keep {
                self.trim();
            }
        }
    }

    fn trim(&mut self) {
        self.top.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.time.cmp(&b.time)));
        self.top.truncate(self.keep);
    }

    /// The most severe findings, most severe first.
    pub fn top(&mut self) -> &[Finding] {
        self.trim();
        &self.top
    }

    /// Actors by number of findings, most first.
    pub fn actors(&self, count: usize) -> Vec<(&str, usize)> {
        let mut actors: Vec<(&str, usize)> = self.by_actor.iter().map(|(a, n)| (a.as_str(), *n)).collect();
        actors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        actors.truncate(count);
        actors
    }

    /// The readable summary: the top findings, then the counts.
    pub fn write_text(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let (findings, files, records) = (self.findings, self.files, self.events());
        for finding in self.top() {
            writeln!(out, "{}", finding.to_text())?;
        }
        if findings > self.keep {
            writeln!(out, "... and {} more (`--format jsonl` lists every finding)", findings - self.keep)?;
        }
        writeln!(out, "Scanned {records} event(s) in {files} file(s): {findings} finding(s)")?;
        for (severity, count) in &self.by_severity {
            writeln!(out, "  {:<9} {count}", severity.0.as_str())?;
        }
        for (rule, count) in &self.by_rule {
            writeln!(out, "  {rule:<22} {count}")?;
        }
        for (actor, count) in self.actors(10) {
            writeln!(out, "  actor {actor}: {count}")?;
        }
        for (warning, count) in &self.warnings {
            writeln!(out, "  note ({count}x): {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, time: &str) -> Finding {
        let root = r#"{"userIdentity":{"type":"Root","arn":"arn:aws:iam::123456789012:root"},
            "eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","recipientAccountId":"123456789012"}"#;
        let record = trailguard_core::event::parse_record(root).unwrap();
        let engine = trailguard_core::Engine::new(trailguard_core::Config::default());
        let mut finding = engine.evaluate_offline(&record).findings.remove(0);
        finding.severity = severity;
        finding.time = Some(time.to_owned());
        finding
    }

    #[test]
    fn keeps_the_most_severe_and_counts_all() {
        let mut tally = Tally::keeping(3);
        for hour in 0..20 {
            let severity = if hour == 17 { Severity::Critical } else { Severity::Low };
            tally.add(finding(severity, &format!("2026-11-01T{hour:02}:00:00Z")));
        }
        assert_eq!(tally.findings, 20);
        assert_eq!(tally.timeline.len(), 20);
        let times: Vec<&str> = tally.top().iter().filter_map(|f| f.time.as_deref()).collect();
        assert_eq!(times, ["2026-11-01T17:00:00Z", "2026-11-01T00:00:00Z", "2026-11-01T01:00:00Z"]);
        let mut text = Vec::new();
        tally.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("... and 17 more"), "{text}");
        assert!(text.contains("Scanned 0 event(s) in 0 file(s): 20 finding(s)"), "{text}");
    }
}
