//! `trailguard patterns`: the EventBridge patterns the rules need, as JSON or as the CloudFormation resources
//! pasted (by `make patterns`) between the markers of the templates in `infra/`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use trailguard_core::patterns::{patterns, RulePattern};
use trailguard_core::Engine;

use crate::PatternOutput;

pub fn run(engine: &Engine, output: PatternOutput) -> anyhow::Result<ExitCode> {
    let all = patterns(engine);
    let text = match output {
        PatternOutput::Json => {
            let out =
                serde_json::json!({"rules": all, "remediation": trailguard_core::patterns::remediation_pattern()});
            serde_json::to_string_pretty(&out)? + "\n"
        }
        PatternOutput::AccountStack => account_rules(&all),
        PatternOutput::Forwarder => forward_rules(&all),
    };
    let mut out = crate::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn state(p: &RulePattern) -> &'static str {
    if p.read_only {
        "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    } else {
        "ENABLED"
    }
}

/// Rules on the default bus that invoke the detector, each with a retry policy and a dead-letter queue, and the
/// detector's resource policy: those rules may invoke it, and an explicit Deny refuses everyone else. An Allow
/// alone would not stop a principal of this account whose own policy allows `lambda:InvokeFunction`; only an
/// explicit Deny does. One `AWS::Lambda::ResourcePolicy` holds every statement, since it replaces the whole
/// policy (it cannot share the function with `AWS::Lambda::Permission` resources).
fn account_rules(all: &[RulePattern]) -> String {
    let mut out = String::new();
    for p in all {
        let _ = write!(
            out,
            "  Rule{name}:
    Type: AWS::Events::Rule
    Properties:
      Description: trailguard {rules}
      EventBusName: default
      State: {state}
      EventPattern: {pattern}
      Targets:
        - Id: detect
          Arn: !GetAtt DetectFunction.Arn
          RetryPolicy:
            MaximumRetryAttempts: 8
            MaximumEventAgeInSeconds: 3600
          DeadLetterConfig:
            Arn: !GetAtt RuleDeadLetterQueue.Arn
",
            name = p.name,
            rules = p.rules.join(", "),
            state = state(p),
            pattern = p.pattern,
        );
    }
    let sources: String = all.iter().map(|p| format!("\n                  - !GetAtt Rule{}.Arn", p.name)).collect();
    let _ = write!(
        out,
        "  DetectInvokePolicy:
    Type: AWS::Lambda::ResourcePolicy
    Properties:
      ResourceArn: !GetAtt DetectFunction.Arn
      PolicyDocument:
        Version: \"2012-10-17\"
        Statement:
          - Sid: TrailguardRules
            Effect: Allow
            Principal:
              Service: events.amazonaws.com
            Action: lambda:InvokeFunction
            Resource: !GetAtt DetectFunction.Arn
            Condition:
              ArnEquals:
                aws:SourceArn:{sources}
          - Sid: NobodyElse
            Effect: Deny
            Principal: \"*\"
            Action: lambda:InvokeFunction
            Resource: !GetAtt DetectFunction.Arn
            Condition:
              ArnNotEquals:
                aws:SourceArn:{sources}
"
    );
    out
}

/// Rules that forward events to the home bus: regional groups always, the IAM group only where it is asked
/// for (a member account's us-east-1 stack).
fn forward_rules(all: &[RulePattern]) -> String {
    let mut out = String::new();
    for p in all {
        let condition = if p.regional { String::new() } else { "    Condition: ForwardGlobal\n".to_owned() };
        let _ = write!(
            out,
            "  Forward{name}:
    Type: AWS::Events::Rule
{condition}    Properties:
      Description: trailguard forwards {rules}
      EventBusName: default
      State: {state}
      EventPattern: {pattern}
      Targets:
        - Id: home
          Arn: !Ref TargetBusArn
          RoleArn: !GetAtt ForwardRole.Arn
          RetryPolicy:
            MaximumRetryAttempts: 8
            MaximumEventAgeInSeconds: 3600
          DeadLetterConfig:
            Arn: !GetAtt ForwardDeadLetterQueue.Arn
",
            name = p.name,
            rules = p.rules.join(", "),
            state = state(p),
            pattern = p.pattern,
        );
    }
    out
}
