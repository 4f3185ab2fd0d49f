//! Any bytes as a policy document: parse, analyze as identity and trust policy, evaluate a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailguard_core::policy::eval::{denies, Request};
use trailguard_core::policy::{analyze, analyze_trust, PolicyDocument};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = PolicyDocument::parse(text) {
        let _ = analyze(&doc);
        let accounts = ["111122223333".to_owned()];
        let known = trailguard_core::policy::Known { own_account: Some("123456789012"), accounts: &accounts, organizations: &[] };
        let _ = analyze_trust(&doc, &known);
        let request = Request::new("iam:PassRole", "arn:aws:iam::123456789012:role/x")
            .with("aws:userid", "AROAEXAMPLE:agent-1")
            .with("aws:TokenIssueTime", "2026-11-27T10:00:00Z");
        let _ = denies(&doc, &request);
    }
});
