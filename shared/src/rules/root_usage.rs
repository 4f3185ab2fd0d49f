//! `root-usage`: any call or console sign-in by the root user.

use super::{Context, Rule, Trigger, Verdict};
use crate::finding::{Severity, Target};

/// The root user cannot be limited by IAM policies and should be locked away; any use of it is news.
pub struct RootUsage;

impl Rule for RootUsage {
    fn id(&self) -> &'static str {
        "root-usage"
    }

    fn description(&self) -> &'static str {
        "The root user signed in or made a call. Root cannot be limited by IAM policies or revoked by trailguard; \
         every use should be a planned, witnessed break-glass event."
    }

    fn response(&self) -> &'static str {
        "Alert only: confirm with the account owner, rotate the root password and MFA if unplanned, delete any root access key."
    }

    fn triggers(&self, _config: &crate::config::Config) -> Vec<Trigger> {
        vec![Trigger::RootActor]
    }

    /// Any use of root is news, failed or not.
    fn reports_every_failure(&self) -> bool {
        true
    }

    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict> {
        let record = ctx.record;
        let account = ctx.account();
        let target = Target { kind: "account".to_owned(), name: Some(account.clone()), ..Target::default() };
        let (severity, title) = if record.event_name == "ConsoleLogin" {
            let mfa = if ctx.actor.mfa { "with MFA" } else { "WITHOUT MFA" };
            (Severity::Critical, format!("Root user console sign-in to account {account} {mfa}"))
        } else if record.read_only == Some(true) {
            (Severity::High, format!("Root user read {} in account {account}", record.action()))
        } else {
            (Severity::Critical, format!("Root user called {} in account {account}", record.action()))
        };
        let mut verdict = Verdict::new(severity, title, target);
        if let Some(key) = &ctx.actor.access_key_id {
            if key.starts_with("AKIA") {
                verdict
                    .notes
                    .push(format!("the call was signed with root access key {key}: root should have no access keys"));
            }
        }
        verdict
            .notes
            .push("trailguard never acts on the root user; restrict it with service control policies".to_owned());
        vec![verdict]
    }
}
