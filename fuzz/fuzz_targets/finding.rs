//! Any bytes as a finding event: read it, plan its remediation, render the plan and an empty report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailguard_core::remediation::{plan, Report};
use trailguard_core::{Config, Finding};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(finding) = Finding::from_event(text) {
        let _ = finding.to_text();
        let plan = plan(&finding, &Config::default());
        let _ = plan.to_text();
        let report = Report::new(&finding, &plan, false, Vec::new());
        let _ = (report.subject(), report.to_text());
    }
});
