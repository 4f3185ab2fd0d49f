//! `trailguard explain`: one event, rule by rule.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use trailguard_core::event::read_records;
use trailguard_core::Engine;

use crate::action::iam_action;
use crate::read_input;

pub fn run(engine: &Engine, file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = read_input(file).with_context(|| format!("cannot read {}", file.display()))?;
    let records = read_records(&bytes).with_context(|| format!("cannot read {}", file.display()))?;
    let mut out = crate::stdout();
    let mut unreadable = false;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                out.flush()?;
                crate::note(format_args!("{}: {e}", file.display()))?;
                unreadable = true;
                continue;
            }
        };
        let x = engine.explain(&record);
        let action = iam_action(&record.event_source, &record.event_name);
        let written = format!("{} {}", record.event_source, record.event_name);
        let cloudtrail = if action == written { String::new() } else { format!(" (CloudTrail: {written})") };
        writeln!(
            out,
            "Event {action}{cloudtrail} at {} in {} ({}){}",
            record.event_time.as_deref().unwrap_or("?"),
            record.account().unwrap_or("?"),
            record.aws_region.as_deref().unwrap_or("?"),
            if record.failed() {
                format!(", FAILED with {}", record.error_code.as_deref().unwrap_or("an error"))
            } else {
                String::new()
            }
        )?;
        let a = &x.actor;
        writeln!(out, "Actor: {} ({}) {}", a.display_name(), a.kind, a.arn.as_deref().unwrap_or(""))?;
        match &a.agent {
            Some(m) => writeln!(out, "  AI agent: {} `{}` matches `{}`", m.signal, m.value, m.pattern)?,
            None => writeln!(out, "  not recognised as an AI agent (offline: role tags are not looked up)")?,
        }
        if let Some(reason) = &x.skipped {
            writeln!(out, "Not judged: {reason}")?;
        }
        if let Some((subject, said)) = &x.grant {
            writeln!(out, "Grant: {subject}")?;
            if said.is_empty() {
                writeln!(out, "  grants nothing the rules flag")?;
            }
            for line in said {
                writeln!(out, "  {line}")?;
            }
        }
        writeln!(out, "Rules:")?;
        for (rule, verdict) in &x.verdicts {
            writeln!(out, "  {rule:<22} {verdict}")?;
        }
        for warning in &x.evaluation.warnings {
            writeln!(out, "Note: {warning}")?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(if unreadable { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
