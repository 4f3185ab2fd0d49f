//! `agent-new-region`: an AI agent's identity calling AWS in a region it has not used before, once its regions are
//! learnt. Alert only: a new region is worth a look (an attacker holding an agent's credentials may work where
//! nobody watches), not proof enough to end a session. The memory and the learning rule are [`crate::regions`]'s.

use super::{agent_behaviour, Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

/// First use of a region by an agent.
pub struct AgentNewRegion;

impl Rule for AgentNewRegion {
    fn id(&self) -> &'static str {
        "agent-new-region"
    }

    fn description(&self) -> &'static str {
        "An AI agent's identity (its role, else its source identity, else its user) called AWS in a region it had not \
         used, after its first days of learning its regions; global services do not count."
    }

    fn response(&self) -> &'static str {
        "Check whether the agent's work moved to that region; if not, revoke its session and review its calls there."
    }

    fn triggers(&self, config: &crate::config::Config) -> Vec<Trigger> {
        // The agent's calls that reach the engine: the same as behaviour over time (its read calls, keyed by the
        // identity, and the calls the rules subscribe to).
        agent_behaviour::AgentBehaviour.triggers(config)
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let Some(new) = ctx.new_region else { return Vec::new() };
        let title = format!("AI agent {} used region {} for the first time", ctx.actor.display_name(), new.region);
        let mut verdict = Verdict::new(
            Severity::Medium,
            title,
            Target { kind: "region".to_owned(), name: Some(new.region.clone()), ..Target::default() },
        );
        verdict.notes.extend(ctx.actor.agent.as_ref().map(crate::event::AgentMatch::note));
        let first_seen = time::OffsetDateTime::from_unix_timestamp(new.first_seen)
            .map_or_else(|_| new.first_seen.to_string(), crate::remediation::revocation::rfc3339);
        verdict.notes.push(format!(
            "Regions used before: {} (identity first seen {first_seen}). Alert only: nothing is revoked.",
            if new.known.is_empty() { "none outside global services".to_owned() } else { new.known.join(", ") }
        ));
        vec![verdict]
    }

    /// It reads the count's answer, never the request: an agent's read calls need no tree built.
    fn reads_params(&self) -> bool {
        false
    }

    /// A refused call in a new region is a use of it all the same: the verdict stands as it is.
    fn judges_failures_itself(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::behaviour::Counters;
    use crate::event::input::parse_record;
    use crate::session::Registry;
    use crate::{Config, Engine};

    /// An agent's read call to `source` in `region` on day `day` of November (hour 10).
    fn call(source: &str, region: &str, day: u32, id: &str, host: &str) -> crate::event::CloudTrailRecord {
        parse_record(&format!(
            r#"{{"eventSource":"{source}","eventName":"ListThings","eventTime":"2026-11-{day:02}T10:00:00Z","eventID":"{id}",
               "awsRegion":"{region}","readOnly":true,"recipientAccountId":"123456789012",
               "tlsDetails":{{"clientProvidedHostHeader":"{host}"}},
               "userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:run","accountId":"123456789012",
               "accessKeyId":"ASIAAGENT","arn":"arn:aws:sts::123456789012:assumed-role/agent-ops/run"}}}}"#
        ))
        .unwrap()
    }

    fn pages(records: &[crate::event::CloudTrailRecord]) -> Vec<String> {
        let engine = Engine::new(Config::default());
        let (registry, counters) = (Registry::new(), Counters::default());
        records
            .iter()
            .flat_map(|r| engine.evaluate_registered(r, &registry, &counters).findings)
            .filter(|f| f.rule == "agent-new-region")
            .map(|f| {
                assert!(f.remediation.is_empty(), "alert only");
                assert_eq!(f.severity, crate::finding::Severity::Medium);
                f.event_id.clone().unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn a_new_region_after_learning_pages_once_and_global_services_are_no_region() {
        let learning = [
            call("ec2.amazonaws.com", "eu-west-1", 1, "a", "ec2.eu-west-1.amazonaws.com"),
            call("s3.amazonaws.com", "eu-central-1", 7, "b", "s3.eu-central-1.amazonaws.com"),
        ];
        // Day 7 is still within the first seven days: learnt silently.
        assert!(pages(&learning).is_empty());
        let mut later = learning.to_vec();
        later.extend([
            call("ec2.amazonaws.com", "eu-west-1", 9, "c", "ec2.eu-west-1.amazonaws.com"),
            // Global: IAM and STS's global endpoint are recorded in us-east-1 whatever the caller's region.
            call("iam.amazonaws.com", "us-east-1", 9, "d", "iam.amazonaws.com"),
            call("sts.amazonaws.com", "us-east-1", 9, "e", "sts.amazonaws.com"),
            call("ec2.amazonaws.com", "ap-southeast-2", 9, "f", "ec2.ap-southeast-2.amazonaws.com"),
            call("ec2.amazonaws.com", "ap-southeast-2", 10, "g", "ec2.ap-southeast-2.amazonaws.com"),
            // STS's regional endpoint in us-east-1 is a use of us-east-1.
            call("sts.amazonaws.com", "us-east-1", 10, "h", "sts.us-east-1.amazonaws.com"),
        ]);
        assert_eq!(pages(&later), ["f", "h"]);
    }
}
