//! `trailguard rules`: every rule, whether it runs, the severities it reports, what it looks for and what
//! trailguard does about it.

use std::io::Write as _;
use std::process::ExitCode;

use trailguard_core::{Engine, Severity};

/// The severities each rule reports, most severe first, with what decides between them. A failed call is an
/// attempt, one level lower. The rules decide severities per finding; this table says it in advance, and a test
/// holds it to every severity the fixtures expect.
const SEVERITIES: &[(&str, &[Severity], &str)] = &[
    ("root-usage", &[Severity::Critical, Severity::High], "read-only calls high"),
    (
        "admin-policy-grant",
        &[Severity::Critical, Severity::High, Severity::Low],
        "`*` on `*` critical; near-admin or escalation high; a document not in effect yet low",
    ),
    (
        "wildcard-policy-grant",
        &[Severity::High, Severity::Medium, Severity::Low],
        "high when the service grants access onward; a document not in effect yet low",
    ),
    ("passrole-grant", &[Severity::High, Severity::Low], "a document not in effect yet low"),
    ("trust-policy-grant", &[Severity::Critical, Severity::High], "anyone critical; an outsider high"),
    ("audit-tampering", &[Severity::Critical, Severity::High, Severity::Medium], "by what is stopped or narrowed"),
    ("guardrail-tampering", &[Severity::Critical], ""),
    ("agent-tag-tampering", &[Severity::Critical], "alert only"),
    ("agent-sensitive-call", &[Severity::High, Severity::Medium], "IAM and network changes high"),
    ("agent-behaviour", &[Severity::High], "a crossing is never an attempt"),
    ("agent-new-region", &[Severity::Medium], "alert only; a first use is never an attempt"),
    ("grant-unjudged", &[Severity::High, Severity::Medium], "high for an agent; only where a look-up failed"),
];

/// The severities a rule reports, said in words (`critical / high (read-only calls high)`).
pub fn severities(rule: &str) -> Option<String> {
    let (_, levels, why) = SEVERITIES.iter().find(|(id, _, _)| *id == rule)?;
    let levels: Vec<&str> = levels.iter().map(|s| s.as_str()).collect();
    let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
    Some(format!("{}{why}; a failed call one level lower", levels.join(" / ")))
}

pub fn run(engine: &Engine) -> anyhow::Result<ExitCode> {
    let mut out = crate::stdout();
    for rule in trailguard_core::rules::registry() {
        let state = if engine.rules().iter().any(|r| r.id() == rule.id()) { "" } else { " (off)" };
        writeln!(out, "{}{state}", rule.id())?;
        writeln!(out, "  severity: {}", severities(rule.id()).unwrap_or_else(|| "decided per finding".to_owned()))?;
        writeln!(out, "  {}", rule.description())?;
        writeln!(out, "  response: {}\n", rule.response())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_severities_and_the_fixtures_agree() {
        for rule in trailguard_core::rules::registry() {
            assert!(severities(rule.id()).is_some(), "{} has no severities listed", rule.id());
        }
        let expected = include_str!("../../tests/fixtures/expected.tsv");
        for line in expected.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            for verdict in line.split('\t').skip(1).flat_map(|v| v.split_whitespace()) {
                let Some((rule, severity)) = verdict.split_once(':') else { continue };
                let (_, levels, _) = SEVERITIES.iter().find(|(id, _, _)| *id == rule).unwrap();
                assert!(
                    levels.iter().any(|l| l.as_str() == severity || l.lowered().as_str() == severity),
                    "{line}: {rule} is not listed as {severity}"
                );
            }
        }
    }
}
