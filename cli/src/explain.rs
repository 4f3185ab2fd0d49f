//! `trailguard explain`: one event, rule by rule.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use trailguard_core::event::read_records;
use trailguard_core::Engine;

use crate::read_input;

pub fn run(engine: &Engine, file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = read_input(file).with_context(|| format!("cannot read {}", file.display()))?;
    let records = read_records(&bytes).with_context(|| format!("cannot read {}", file.display()))?;
    let mut unreadable = false;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                eprintln!("trailguard: {}: {e}", file.display());
                unreadable = true;
                continue;
            }
        };
        let x = engine.explain(&record);
        println!(
            "Event {} {} at {} in {} ({}){}",
            record.event_source,
            record.event_name,
            record.event_time.as_deref().unwrap_or("?"),
            record.account().unwrap_or("?"),
            record.aws_region.as_deref().unwrap_or("?"),
            if record.failed() {
                format!(", FAILED with {}", record.error_code.as_deref().unwrap_or("an error"))
            } else {
                String::new()
            }
        );
        let a = &x.actor;
        println!("Actor: {} ({}) {}", a.display_name(), a.kind, a.arn.as_deref().unwrap_or(""));
        match &a.agent {
            Some(m) => println!("  AI agent: {} `{}` matches `{}`", m.signal, m.value, m.pattern),
            None => println!("  not recognised as an AI agent (offline: role tags are not looked up)"),
        }
        if let Some(reason) = &x.skipped {
            println!("Not judged: {reason}");
        }
        if let Some((subject, said)) = &x.grant {
            println!("Grant: {subject}");
            if said.is_empty() {
                println!("  grants nothing the rules flag");
            }
            for line in said {
                println!("  {line}");
            }
        }
        println!("Rules:");
        for (rule, verdict) in &x.verdicts {
            println!("  {rule:<22} {verdict}");
        }
        for warning in &x.evaluation.warnings {
            println!("Note: {warning}");
        }
        println!();
    }
    Ok(if unreadable { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
