//! `trailguard revoke`: the on-call engineer's kill switch. The same plan, checks and IAM steps as the
//! remediator, started by hand: one session, every session of one source identity, every older session of a
//! role, or a user's access key, in this account or another one.
//!
//! Everything that can be checked without AWS is checked first: the arguments, the time, protected principals.
//! A dry run with `--role-id` or `--offline` makes no AWS call at all; it prints the new deny statement, built
//! by the library's own [`Revocation::statement`]. Before acting, the command says which account it acts in
//! and as whom (`sts:GetCallerIdentity`); an AWS error is one line naming the call, the cause and what to do.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata as _};
use time::OffsetDateTime;
use trailguard_core::aws::{Accounts, SdkIam};
use trailguard_core::finding::Remediation;
use trailguard_core::iam::{IamActions, IamError, IamErrorKind};
use trailguard_core::remediation::execute::{execute, Occasion, Status};
use trailguard_core::remediation::plan::{protected, Decision, Plan, PlannedStep};
use trailguard_core::remediation::revocation::{rfc3339, Revocation};
use trailguard_core::Config;

use crate::{Failed, RevokeArgs};

/// Stands for the role's unique id in an offline dry run without `--role-id`.
const ROLE_ID_PLACEHOLDER: &str = "<ROLE-ID>";

/// What to revoke, as the arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Session { role: String, session: String },
    SourceIdentity { role: String, id: String },
    AllOlder { role: String },
    AccessKey { user: String, key: String },
}

impl Target {
    fn from_args(args: &RevokeArgs) -> anyhow::Result<Target> {
        Ok(match (&args.role, &args.user) {
            (Some(role), None) => match (&args.session, &args.source_identity, args.all_older) {
                (Some(session), None, false) => Target::Session { role: role.clone(), session: session.clone() },
                (None, Some(id), false) => Target::SourceIdentity { role: role.clone(), id: id.clone() },
                (None, None, true) => Target::AllOlder { role: role.clone() },
                _ => bail!("with --role, give exactly one of --session, --source-identity or --all-older"),
            },
            (None, Some(user)) => match &args.access_key {
                Some(key) => Target::AccessKey { user: user.clone(), key: key.clone() },
                None => bail!("with --user, give --access-key"),
            },
            _ => bail!("give --role (with --session, --source-identity or --all-older) or --user with --access-key"),
        })
    }

    /// The remediation step, with the role's id where a session needs it.
    fn step(&self, account: &str, role_id: &str) -> Remediation {
        let account = account.to_owned();
        match self {
            Target::Session { role, session } => Remediation::RevokeSession {
                account,
                role_name: role.clone(),
                user_id: Some(format!("{role_id}:{session}")),
                source_identity: None,
                rotating: None,
            },
            Target::SourceIdentity { role, id } => Remediation::RevokeSession {
                account,
                role_name: role.clone(),
                user_id: None,
                source_identity: Some(id.clone()),
                rotating: None,
            },
            Target::AllOlder { role } => Remediation::RevokeOlderSessions { account, role_name: role.clone() },
            Target::AccessKey { user, key } => {
                Remediation::DeactivateAccessKey { account, user_name: user.clone(), access_key_id: key.clone() }
            }
        }
    }

    /// What is denied, for people, bounded by `before`.
    fn describe(&self, role_id: &str, before: &str) -> String {
        match self {
            Target::Session { role, session } => {
                format!("revoke session {session} of role {role} (aws:userid {role_id}:{session}), credentials issued before {before}")
            }
            Target::SourceIdentity { role, id } => {
                format!(
                    "revoke the sessions of role {role} with source identity {id}, credentials issued before {before}"
                )
            }
            Target::AllOlder { role } => format!("revoke every session of role {role} issued before {before}"),
            Target::AccessKey { user, key } => format!("deactivate access key {key} of user {user}"),
        }
    }
}

pub fn run(config: &Config, args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let target = Target::from_args(args)?;
    let before = match &args.issued_before {
        Some(text) => crate::parse_time("--issued-before", text)?,
        None => OffsetDateTime::now_utc(),
    };
    let mut out = crate::stdout();
    if args.dry_run && (args.offline || args.role_id.is_some()) {
        let code = offline(&mut out, config, &target, args, before)?;
        out.flush()?;
        return Ok(code);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let code = runtime.block_on(revoke(&mut out, config, &target, args, before))?;
    out.flush()?;
    Ok(code)
}

/// The dry run without AWS: the one statement the revocation adds, or what would be deactivated.
fn offline(
    out: &mut impl std::io::Write,
    config: &Config,
    target: &Target,
    args: &RevokeArgs,
    before: OffsetDateTime,
) -> anyhow::Result<ExitCode> {
    let role_id = args.role_id.as_deref().unwrap_or(ROLE_ID_PLACEHOLDER);
    let account = args.account.as_deref().unwrap_or("");
    if let Some(reason) = protected(&target.step(account, role_id), config) {
        writeln!(out, "refused: {reason}")?;
        return Ok(ExitCode::from(1));
    }
    let bound = rfc3339(before);
    writeln!(out, "dry run, offline (no AWS call): would {}", target.describe(role_id, &bound))?;
    let revocation = match target {
        Target::Session { session, .. } => Revocation::Session(format!("{role_id}:{session}")),
        Target::SourceIdentity { id, .. } => Revocation::SourceIdentity(id.clone()),
        Target::AllOlder { .. } => Revocation::AllSessions,
        Target::AccessKey { .. } => return Ok(ExitCode::SUCCESS),
    };
    let name = &config.remediation.revocation_policy_name;
    writeln!(out, "new statement for inline policy {name}:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&revocation.statement(before))?)?;
    writeln!(
        out,
        "Offline this shows only the new statement: merging it into the role's current {name} policy, pruning \
         expired entries and keeping within IAM's size budget need that policy (a dry run with credentials and \
         without --offline or --role-id shows the exact policy)."
    )?;
    if let (Target::Session { role, .. }, None) = (target, &args.role_id) {
        writeln!(
            out,
            "Fill in {ROLE_ID_PLACEHOLDER} with the role's unique id (`aws iam get-role --role-name {role} --query \
             Role.RoleId`), or pass it with --role-id."
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(
    out: &mut impl std::io::Write,
    config: &Config,
    target: &Target,
    args: &RevokeArgs,
    before: OffsetDateTime,
) -> anyhow::Result<ExitCode> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sdk = match (&args.assume_role, &args.account) {
        (Some(role), Some(account)) => Accounts::new(sdk, "", role, args.external_id.clone(), "trailguard-revoke")
            .config_for(account)
            .await
            .map_err(|e| Failed(iam_line(&e)))?,
        _ => sdk,
    };
    // Which account this acts in, before acting: the caller's own unless --assume-role says otherwise.
    let identity = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Failed(one_line("sts:GetCallerIdentity", e.code(), &DisplayErrorContext(&e).to_string())))?;
    let account = identity.account().unwrap_or_default().to_owned();
    let whom = identity.arn().unwrap_or("?");
    if let Some(wanted) = args.account.as_deref().filter(|a| *a != account) {
        return Err(
            Failed(format!("asked to act in account {wanted}, but the credentials are in {account} ({whom})")).into()
        );
    }
    let how = match &args.assume_role {
        Some(role) => format!("through role {role}"),
        None => "with your own credentials (no --assume-role)".to_owned(),
    };
    crate::note(format_args!("acting in account {account} as {whom}, {how}"))?;

    let iam = SdkIam::new(aws_sdk_iam::Client::new(&sdk));
    let role_id = match target {
        Target::Session { role, .. } => match iam.get_role(role).await.map_err(|e| Failed(iam_line(&e)))? {
            Some(info) => info.role_id,
            None => return Err(Failed(format!("role {role} does not exist in account {account}")).into()),
        },
        _ => String::new(),
    };
    let step = target.step(&account, &role_id);
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
    let bound = rfc3339(before);
    let mut failed = false;
    for outcome in &outcomes {
        let (status, detail) = said(outcome.status, &outcome.detail, &bound);
        writeln!(out, "{}: {status}: {detail}", target.describe(&role_id, &bound))?;
        if let Some(written) = &outcome.written {
            let what = if outcome.status == Status::DryRun { "the policy that would be written" } else { "policy" };
            writeln!(out, "{what}:\n{}", serde_json::to_string_pretty(written)?)?;
        }
        failed |= matches!(outcome.status, Status::Failed | Status::Skipped);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A step's status and detail as on-call reads them: `dry run` and "would write a deny", the actual bound
/// instead of "now", and a failure on one line.
fn said(status: Status, detail: &str, bound: &str) -> (&'static str, String) {
    let detail = detail.replace("issued before now", &format!("issued before {bound}"));
    match status {
        Status::Done => ("done", detail),
        Status::AlreadyDone => ("nothing to do", detail),
        Status::DryRun => {
            let detail = detail.strip_prefix("would write: ").unwrap_or(&detail);
            ("dry run, nothing changed", detail.replace("deny written to", "would write a deny to"))
        }
        Status::Skipped => ("refused", detail),
        Status::Failed => ("failed", first_line(&detail)),
    }
}

/// An IAM error on one line: the call, the cause, what to do.
fn iam_line(e: &IamError) -> String {
    let code = match e.kind {
        IamErrorKind::AccessDenied | IamErrorKind::Blind => Some("AccessDenied"),
        IamErrorKind::NotFound => Some("NoSuchEntity"),
        _ => None,
    };
    one_line(&e.action, code, &e.message)
}

/// `` `sts:GetCallerIdentity` failed: no credentials found (...); set ... ``: the SDK's multi-line report cut to
/// its cause and the remedy.
fn one_line(call: &str, code: Option<&str>, report: &str) -> String {
    let lower = report.to_ascii_lowercase();
    let (cause, todo) = match code {
        Some(c) if c.starts_with("AccessDenied") || c.contains("Unauthorized") => (
            "access denied",
            "use credentials (or an --assume-role role) allowed to make this call; or --dry-run --offline",
        ),
        Some("NoSuchEntity" | "NotFound") => ("not found", "check the name and the account (--account)"),
        Some(c) if c.contains("Expired") => ("the credentials have expired", "renew them (`aws sso login`)"),
        _ if lower.contains("credentials") && !lower.contains("assume") => (
            "no credentials found (environment, profile, SSO, instance role)",
            "set AWS_PROFILE or AWS credentials (`aws sso login`), or preview with --dry-run --offline",
        ),
        _ if lower.contains("assume") => (
            "could not assume the role",
            "check --account, --assume-role and --external-id, and that your credentials may assume it",
        ),
        _ if ["dispatch", "timeout", "timed out", "connect", "dns"].iter().any(|w| lower.contains(w)) => {
            ("AWS could not be reached", "check the network and AWS_REGION, or preview with --dry-run --offline")
        }
        _ => ("", ""),
    };
    match cause {
        "" => format!("`{call}` failed: {}", first_line(report)),
        _ => format!("`{call}` failed: {cause}; {todo}"),
    }
}

/// The first line of a message, at most 200 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", line.get(..cut).unwrap_or(line)),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_reports_become_one_line_with_a_remedy() {
        let dump = "dispatch failure: other: no credentials in the property bag\n  caused by: ...\n  more";
        let line = one_line("sts:GetCallerIdentity", None, dump);
        assert!(line.starts_with("`sts:GetCallerIdentity` failed: no credentials found"), "{line}");
        assert!(!line.contains('\n') && line.contains("--dry-run --offline"), "{line}");
        let line = one_line("iam:GetRole", Some("AccessDenied"), "User: x is not authorized");
        assert!(line.starts_with("`iam:GetRole` failed: access denied; "), "{line}");
        let line = one_line("iam:GetRole", Some("NoSuchEntity"), "The role with name r cannot be found.");
        assert!(line.contains("not found; check the name"), "{line}");
        let line = one_line("sts:GetCallerIdentity", None, "dispatch failure: io error: connection refused\nmore");
        assert!(line.contains("AWS could not be reached"), "{line}");
    }

    #[test]
    fn outcomes_read_plainly() {
        let (status, detail) = said(
            Status::DryRun,
            "would write: deny written to inline policy trailguard-revocations for credentials issued before now",
            "2026-11-27T10:00:00Z",
        );
        assert_eq!(status, "dry run, nothing changed");
        assert_eq!(
            detail,
            "would write a deny to inline policy trailguard-revocations for credentials issued before 2026-11-27T10:00:00Z"
        );
        let (_, detail) = said(Status::Failed, "`iam:PutRolePolicy` failed (Other): a\nb\nc", "t");
        assert_eq!(detail, "`iam:PutRolePolicy` failed (Other): a");
    }
}
