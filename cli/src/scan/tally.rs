//! What a scan saw, in bounded memory: counts, the most severe findings, and findings per hour.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use trailguard_core::{Finding, Severity};

use crate::action::iam_action;

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
    /// Records evaluated but outside the `--since`/`--until` window.
    pub outside_window: usize,
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

    /// The readable summary, for a person woken at night: what was read and found first (counts by severity,
    /// rule and actor), then the most severe findings grouped by rule, each rule's description said once.
    pub fn write_text(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let (findings, files, events) = (self.findings, self.files, self.events());
        writeln!(out, "Scanned {events} event(s) in {files} file(s): {findings} finding(s)")?;
        if self.unreadable_files + self.unreadable_records > 0 {
            writeln!(
                out,
                "Skipped {} unreadable file(s) and {} unreadable record(s) (named on standard error)",
                self.unreadable_files, self.unreadable_records
            )?;
        }
        if findings > 0 {
            let severities: Vec<String> =
                self.by_severity.iter().map(|(s, n)| format!("{n} {}", s.0.as_str())).collect();
            writeln!(out, "By severity: {}", severities.join(", "))?;
            writeln!(out, "By rule:")?;
            let mut rules: Vec<(&String, &usize)> = self.by_rule.iter().collect();
            rules.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            for (rule, count) in rules {
                writeln!(out, "  {count:>6}  {rule}")?;
            }
            writeln!(out, "Actors with the most findings:")?;
            for (actor, count) in self.actors(10) {
                writeln!(out, "  {count:>6}  {actor}")?;
            }
        }
        for (warning, count) in &self.warnings {
            writeln!(out, "Note ({count}x): {warning}")?;
        }
        let keep = self.keep;
        let top = self.top();
        if top.is_empty() {
            return Ok(());
        }
        writeln!(out, "\nMost severe findings ({} of {findings}), by rule:", top.len())?;
        // Rules in the order of their most severe finding; each rule's findings in severity order.
        let mut rules: Vec<&str> = Vec::new();
        for finding in top {
            if !rules.contains(&finding.rule.as_str()) {
                rules.push(&finding.rule);
            }
        }
        for rule in rules {
            let mut group = top.iter().filter(|f| f.rule == rule).peekable();
            if let Some(first) = group.peek() {
                writeln!(out, "\n{rule}: {}", first.description)?;
            }
            for finding in group {
                write_finding(out, finding)?;
            }
        }
        if findings > keep {
            writeln!(out, "\n... and {} more (`--format jsonl` lists every finding)", findings - keep)?;
        }
        Ok(())
    }
}

/// One finding under its rule's heading: what, who, when and where, why, what to do.
fn write_finding(out: &mut impl Write, finding: &Finding) -> std::io::Result<()> {
    let action = iam_action(&finding.event_source, &finding.event_name);
    let title = crate::action::title(finding);
    let attempt = if finding.attempt { " (attempt: the call failed)" } else { "" };
    writeln!(out, "  [{}] {title}{attempt}", finding.severity.as_str().to_uppercase())?;
    let actor = &finding.actor;
    let mut who = format!("{} ({})", actor.display_name(), actor.kind);
    if let Some(arn) = &actor.arn {
        who.push_str(&format!(", {arn}"));
    }
    if let Some(agent) = &actor.agent {
        who.push_str(&format!("; AI agent: {} `{}` matches `{}`", agent.signal, agent.value, agent.pattern));
    }
    if let Some(ip) = &actor.source_ip {
        who.push_str(&format!("; from {ip}{}", if actor.mfa { " with MFA" } else { "" }));
    }
    writeln!(out, "      who:   {who}")?;
    writeln!(
        out,
        "      when:  {} in account {} ({}), {action}, event {}",
        finding.time.as_deref().unwrap_or("unknown time"),
        finding.account.as_deref().unwrap_or("unknown"),
        finding.region.as_deref().unwrap_or("unknown region"),
        finding.event_id.as_deref().unwrap_or("without id"),
    )?;
    for note in &finding.evidence.notes {
        writeln!(out, "      why:   {note}")?;
    }
    for (i, step) in finding.remediation.iter().enumerate() {
        let label = if i == 0 { "do:   " } else { "      " };
        writeln!(out, "      {label} {}. {}", i + 1, step.describe())?;
    }
    Ok(())
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
        assert!(text.starts_with("Scanned 0 event(s) in 0 file(s): 20 finding(s)\nBy severity: 1 critical, 19 low\n"));
        // The rule is described once, above its findings.
        assert_eq!(text.matches("root-usage: ").count(), 1, "{text}");
        assert!(text.find("Actors with the most findings").unwrap() < text.find("[CRITICAL]").unwrap(), "{text}");
    }
}
