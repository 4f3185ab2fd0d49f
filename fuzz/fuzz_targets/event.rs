//! Any bytes as CloudTrail input: read, evaluate, render. Must never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trailguard_core::event::{read_event, read_records};
use trailguard_core::{Config, Engine};

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| Engine::new(Config::default()));
    if let Ok(records) = read_records(data) {
        for record in records.into_iter().flatten() {
            for finding in engine.evaluate_offline(&record).findings {
                let _ = finding.to_text();
                let json = serde_json::to_string(&finding).unwrap_or_default();
                let _ = trailguard_core::Finding::from_event(&json);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = read_event(text);
    }
});
