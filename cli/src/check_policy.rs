//! `trailguard check-policy`: what one policy document grants, in words.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use trailguard_core::policy::document::{Actions, PrincipalSpec};
use trailguard_core::policy::{analyze, analyze_trust, PolicyDocument};
use trailguard_core::wildcard;
use trailguard_core::Config;

use crate::{read_input, PolicyKind};

pub fn run(config: &Config, file: &Path, kind: PolicyKind, account: Option<&str>) -> anyhow::Result<ExitCode> {
    let bytes = read_input(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", file.display()))?;
    let doc = PolicyDocument::parse(&text).with_context(|| format!("cannot parse {}", file.display()))?;
    let trust = match kind {
        PolicyKind::Trust => true,
        PolicyKind::Identity => false,
        PolicyKind::Auto => looks_like_trust(&doc),
    };
    let mut out = crate::stdout();
    let flagged = if trust { report_trust(&mut out, config, &doc, account)? } else { report_identity(&mut out, &doc)? };
    out.flush()?;
    Ok(if flagged { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A trust policy names principals and allows `sts:AssumeRole*`.
fn looks_like_trust(doc: &PolicyDocument) -> bool {
    doc.statements.iter().any(|s| {
        matches!(s.principals, Some(PrincipalSpec::Only(_) | PrincipalSpec::AllExcept(_)))
            && match &s.actions {
                Actions::Only(p) => p.iter().any(|a| {
                    wildcard::matches(a, "sts:AssumeRole", true) || a.to_ascii_lowercase().starts_with("sts:assumerole")
                }),
                Actions::AllExcept(_) => true,
            }
    })
}

fn report_trust(
    out: &mut impl Write,
    config: &Config,
    doc: &PolicyDocument,
    account: Option<&str>,
) -> io::Result<bool> {
    let issues = analyze_trust(doc, &config.known(account));
    writeln!(out, "Trust policy with {} statement(s).", doc.statements.len())?;
    if issues.is_empty() {
        writeln!(out, "No outsider can assume the role.")?;
    }
    for issue in &issues {
        writeln!(out, "FLAGGED: {}", issue.describe())?;
    }
    Ok(!issues.is_empty())
}

fn report_identity(out: &mut impl Write, doc: &PolicyDocument) -> io::Result<bool> {
    let grants = analyze(doc);
    writeln!(out, "Identity policy with {} statement(s).", doc.statements.len())?;
    let flagged = grants.describe();
    for line in &flagged {
        writeln!(out, "FLAGGED: {line}")?;
    }
    for unknown in &grants.unknown_actions {
        writeln!(out, "note: unknown action pattern `{unknown}` (new service or typo)")?;
    }
    if flagged.is_empty() {
        writeln!(out, "Nothing the rules flag: no admin, escalation, service-wide wildcard or unrestricted PassRole.")?;
    }
    Ok(!flagged.is_empty())
}
