//! What the templates in `infra/` must hold beyond what cfn-lint checks: the detector's resource policy denies
//! every invoker but trailguard's own rules (an Allow alone would not stop a principal of the account whose
//! own policy allows `lambda:InvokeFunction`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;

use trailguard_core::patterns::patterns;
use trailguard_core::{Config, Engine};

fn template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")).unwrap()
}

/// The text of one top-level resource: from `  Name:` to the next line at the same indentation.
fn resource<'t>(template: &'t str, name: &str) -> &'t str {
    let start = template.find(&format!("\n  {name}:\n")).unwrap_or_else(|| panic!("{name} not in the template")) + 1;
    let rest = &template[start..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| rest[i..].starts_with("  ") && !rest[i..].starts_with("   ") || rest[i..].starts_with("Outputs:"))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The statement with this `Sid` in a policy resource: its lines up to the next statement.
fn statement<'r>(policy: &'r str, sid: &str) -> &'r str {
    let start = policy.find(&format!("- Sid: {sid}\n")).unwrap_or_else(|| panic!("no statement {sid}"));
    let rest = &policy[start + 2..];
    &rest[..rest.find("- Sid: ").unwrap_or(rest.len())]
}

fn source_rules(statement: &str) -> BTreeSet<String> {
    statement
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- !GetAtt ")?.strip_suffix(".Arn").map(str::to_owned))
        .collect()
}

#[test]
fn the_detector_refuses_every_invoker_but_trailguards_rules() {
    let template = template();
    let policy = resource(&template, "DetectInvokePolicy");
    assert!(policy.contains("Type: AWS::Lambda::ResourcePolicy"));
    assert!(policy.contains("ResourceArn: !GetAtt DetectFunction.Arn"));
    let rules: BTreeSet<String> =
        patterns(&Engine::new(Config::default())).iter().map(|p| format!("Rule{}", p.name)).collect();
    assert!(rules.contains("RuleCanary") && rules.contains("RuleIam"));

    let allow = statement(policy, "TrailguardRules");
    for line in ["Effect: Allow", "Service: events.amazonaws.com", "Action: lambda:InvokeFunction", "ArnEquals:"] {
        assert!(allow.contains(line), "the Allow lacks `{line}`:\n{allow}");
    }
    assert_eq!(source_rules(allow), rules);

    let deny = statement(policy, "NobodyElse");
    for line in [
        "Effect: Deny",
        "Principal: \"*\"",
        "Action: lambda:InvokeFunction",
        "Resource: !GetAtt DetectFunction.Arn",
        "ArnNotEquals:",
        "aws:SourceArn:",
    ] {
        assert!(deny.contains(line), "the Deny lacks `{line}`:\n{deny}");
    }
    assert_eq!(source_rules(deny), rules, "the Deny must except exactly trailguard's rules");
    // Every rule the policy names exists in the template.
    for rule in &rules {
        assert!(template.contains(&format!("\n  {rule}:\n")), "{rule} is named but not defined");
    }
    // Nothing else may hold a statement on the detector: AWS::Lambda::ResourcePolicy replaces the whole policy.
    assert!(!template.contains("AWS::Lambda::Permission"), "a Permission would fight the resource policy");
}

/// The optional SCP denies what `guardrail-tampering` watches, to all but the deployment roles, and fits an SCP.
/// What it leaves out is listed here with why; anything else missing fails.
#[test]
fn the_scp_denies_every_change_the_tampering_rule_watches() {
    use trailguard_core::rules::{registry, Name, Trigger};
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/scp.json")).unwrap();
    assert!(text.len() <= 5_120, "an SCP holds at most 5,120 characters; infra/scp.json has {}", text.len());
    let scp: serde_json::Value = serde_json::from_str(&text).unwrap();
    let denied: BTreeSet<String> = scp["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Deny")
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        })
        .collect();
    // Left out, with why: assuming a role is how trailguard and everyone else work (trust policies guard it);
    // policies and aliases are named freely by anyone, so an SCP on their names would break other workloads
    // (the rule still reports them); key alias changes do not change the key.
    let not_in_scp = [
        "sts:AssumeRole",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:TagPolicy",
        "iam:UntagPolicy",
        "kms:DeleteAlias",
        "kms:UpdateAlias",
    ];
    let tampering = registry().into_iter().find(|r| r.id() == "guardrail-tampering").unwrap();
    let mut missing = Vec::new();
    for trigger in tampering.triggers(&Config::default()) {
        let Trigger::Calls { source: Some(source), names, .. } = trigger else { continue };
        let service = match source.trim_end_matches(".amazonaws.com") {
            "monitoring" => "cloudwatch",
            other => other,
        };
        for name in names {
            let (Name::Exact(n) | Name::Prefix(n)) = name;
            let action = format!("{service}:{n}");
            if !denied.contains(&action) && !not_in_scp.contains(&action.as_str()) {
                missing.push(action);
            }
        }
    }
    assert!(missing.is_empty(), "infra/scp.json does not deny {missing:?}");
    let resources = scp.to_string();
    for own in ["role/trailguard-*", "schedule/*/trailguard-*", "stack/StackSet-trailguard*", "alarm:trailguard-*"] {
        assert!(resources.contains(own), "the SCP does not cover {own}");
    }
}

/// The SCP must not stop trailguard's own canaries (or every heartbeat alarm pages once it is attached), and must
/// still stop anyone else tagging trailguard's roles or setting the agent tag on any role.
#[test]
fn the_scp_lets_the_canaries_run_and_stops_look_alikes() {
    use trailguard_core::policy::eval::{denies, Request};
    use trailguard_core::policy::PolicyDocument;
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/scp.json")).unwrap();
    let scp = PolicyDocument::parse(&text).unwrap();
    let tag_role = |principal: &str, role: &str, key: &str| {
        Request::new("iam:TagRole", &format!("arn:aws:iam::111122223333:role/{role}"))
            .with("aws:PrincipalArn", &format!("arn:aws:iam::111122223333:role/{principal}"))
            .with("aws:TagKeys", key)
    };
    let canary = "trailguard-canary";
    assert!(!denies(&scp, &tag_role(canary, canary, "trailguard:heartbeat")), "the global canary tags its role");
    assert!(denies(&scp, &tag_role("dev-agent", canary, "trailguard:heartbeat")), "anyone else tagging it");
    assert!(denies(&scp, &tag_role("dev-agent", "orders-api", "trailguard:agent")), "marking a role as an agent");
    // IAM tag keys are unique whatever their case and trailguard reads them ignoring case: so must the SCP.
    assert!(denies(&scp, &tag_role("dev-agent", "orders-api", "TrailGuard:Agent")), "the same key in another case");
    assert!(!denies(&scp, &tag_role("dev-agent", "orders-api", "cost-centre")), "other tags on other roles");
    assert!(!denies(&scp, &tag_role("trailguard-deploy", "orders-api", "trailguard:agent")), "the deployer");
    let tag_queue = Request::new("sqs:TagQueue", "arn:aws:sqs:eu-west-1:111122223333:trailguard-forward-dlq")
        .with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/trailguard-canary-eu-west-1");
    assert!(!denies(&scp, &tag_queue), "the regional canary tags its queue");
}
