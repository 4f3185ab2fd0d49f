//! `trailguard check-policy`: what one policy document grants, in words.

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
    let flagged = if trust { report_trust(config, &doc, account) } else { report_identity(&doc) };
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

fn report_trust(config: &Config, doc: &PolicyDocument, account: Option<&str>) -> bool {
    let issues = analyze_trust(doc, account, &config.trusted_accounts);
    println!("Trust policy with {} statement(s).", doc.statements.len());
    if issues.is_empty() {
        println!("No outsider can assume the role.");
    }
    for issue in &issues {
        println!("FLAGGED: {}", issue.describe());
    }
    !issues.is_empty()
}

fn report_identity(doc: &PolicyDocument) -> bool {
    let grants = analyze(doc);
    println!("Identity policy with {} statement(s).", doc.statements.len());
    let mut flagged = false;
    let mut say = |text: String| {
        flagged = true;
        println!("FLAGGED: {text}");
    };
    if !grants.full_admin.is_empty() {
        say(format!("full administrator access (statements {:?})", grants.full_admin));
    }
    if let Some((statements, share)) = &grants.near_admin {
        say(format!(
            "{:.1}% of all actions on every resource, admin-equivalent (statements {statements:?})",
            share * 100.0
        ));
    }
    for (action, statements) in &grants.escalation {
        say(format!("privilege escalation: {action} on any resource (statements {statements:?})"));
    }
    if let Some(pass) = &grants.passrole {
        say(format!(
            "iam:PassRole on any role without iam:PassedToService, through {} (statements {:?})",
            pass.via.join(", "),
            pass.statements
        ));
        if !pass.with_compute.is_empty() {
            println!("         with {}: can run code as any passed role", pass.with_compute.join(", "));
        }
    }
    // Service wildcards are implied by admin grants; list them only when they are the news.
    if !grants.is_admin_class() {
        for w in &grants.service_wildcards {
            say(format!("every action of {} on broad resources (statements {:?})", w.service, w.statements));
        }
    }
    for unknown in &grants.unknown_actions {
        println!("note: unknown action pattern `{unknown}` (new service or typo)");
    }
    if !flagged {
        println!("Nothing the rules flag: no admin, escalation, service-wide wildcard or unrestricted PassRole.");
    }
    flagged
}
