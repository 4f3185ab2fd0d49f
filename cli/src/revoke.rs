//! `trailguard revoke`: the on-call engineer's kill switch. The same plan, checks and IAM steps as the
//! remediator, started by hand: one session, every session of one source identity, every older session of a
//! role, or a user's access key, in this account or another one.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailguard_core::aws::{Accounts, SdkIam};
use trailguard_core::finding::Remediation;
use trailguard_core::iam::IamActions;
use trailguard_core::remediation::execute::{execute, Occasion, Status};
use trailguard_core::remediation::plan::{protected, Decision, Plan, PlannedStep};
use trailguard_core::Config;

use crate::RevokeArgs;

pub fn run(config: &Config, args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(revoke(config, args))
}

async fn revoke(config: &Config, args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let before = match &args.issued_before {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .with_context(|| format!("--issued-before `{text}` is not RFC 3339"))?,
        None => now,
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let account = args.account.clone().unwrap_or_default();
    let sdk = match &args.assume_role {
        Some(role) => Accounts::new(sdk, "", role, args.external_id.clone(), "trailguard-revoke")
            .config_for(&account)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => sdk,
    };
    let iam = SdkIam::new(aws_sdk_iam::Client::new(&sdk));

    let step = match (&args.role, &args.user) {
        (Some(role), None) => {
            let info = iam.get_role(role).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(info) = info else { bail!("role {role} does not exist in this account") };
            match (&args.session, &args.source_identity, args.all_older) {
                (Some(session), None, false) => Remediation::RevokeSession {
                    account: account.clone(),
                    role_name: role.clone(),
                    user_id: Some(format!("{}:{session}", info.role_id)),
                    source_identity: None,
                    rotating: None,
                },
                (None, Some(id), false) => Remediation::RevokeSession {
                    account: account.clone(),
                    role_name: role.clone(),
                    user_id: None,
                    source_identity: Some(id.clone()),
                    rotating: None,
                },
                (None, None, true) => {
                    Remediation::RevokeOlderSessions { account: account.clone(), role_name: role.clone() }
                }
                _ => bail!("with --role, give exactly one of --session, --source-identity or --all-older"),
            }
        }
        (None, Some(user)) => match &args.access_key {
            Some(key) => Remediation::DeactivateAccessKey {
                account: account.clone(),
                user_name: user.clone(),
                access_key_id: key.clone(),
            },
            None => bail!("with --user, give --access-key"),
        },
        _ => bail!("give --role (with --session, --source-identity or --all-older) or --user with --access-key"),
    };
    let decision = match protected(&step, config) {
        Some(reason) => Decision::Skip { reason },
        None if args.dry_run => Decision::DryRun,
        None => Decision::Execute,
    };
    let plan = Plan {
        finding_id: "manual".to_owned(),
        rule: "kill-switch".to_owned(),
        account: Some(account),
        mode: trailguard_core::config::Mode::Enforce,
        steps: vec![PlannedStep { step, decision }],
    };
    let occasion = Occasion { rule: "kill-switch", happened: Some(before) };
    let outcomes = execute(&plan, occasion, &iam, config, before).await;
    let mut failed = false;
    for outcome in &outcomes {
        let status = serde_json::to_value(outcome.status)?.as_str().unwrap_or_default().to_owned();
        println!("{}: {status}: {}", outcome.step.describe(), outcome.detail);
        if let Some(written) = &outcome.written {
            let verb = if outcome.status == Status::DryRun { "would write" } else { "policy" };
            println!("{verb}:\n{}", serde_json::to_string_pretty(written)?);
        }
        failed |= matches!(outcome.status, Status::Failed | Status::Skipped);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
