//! The `trailguard` command line: the library, offline.
//!
//! Exit codes are in [`EXIT_CODES`] (shown by `--help`). Every write to standard output or standard error goes
//! through `?`: a pipe whose reader has gone (`trailguard scan ... | head`) is a normal way to stop reading, so
//! `main` ends quietly on `BrokenPipe` instead of panicking as `println!` would. The workspace forbids `unsafe`,
//! so the default `SIGPIPE` disposition cannot be restored; handling the error on every write is the way.

mod action;
#[cfg(feature = "s3")]
mod backtest;
mod check_policy;
mod explain;
mod gen;
mod patterns;
mod revoke;
mod rules;
mod scan;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use trailguard_core::{Config, Engine};

/// What `--help` says about exit codes; the README says the same.
const EXIT_CODES: &str = "Exit codes:
  0  the command ran (findings or not); also when the reader of a pipe stops reading (`| head`)
  1  `check-policy` found a grant the rules flag; `revoke` was refused or could not revoke (AWS said no, no
     credentials, role not found)
  2  bad arguments, or input or configuration that could not be read (for `scan`: after scanning everything
     readable; also when no input file matched at all)";

/// trailguard: find dangerous IAM activity in CloudTrail records.
#[derive(Parser)]
#[command(name = "trailguard", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Configuration file (JSON; see README). Defaults apply when absent.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan CloudTrail records: files, directories (recursively), `-` for standard input, or an archive in S3
    /// (`s3://bucket/prefix/`). Reads log files (`{"Records": [...]}`, gzipped or not), EventBridge events, bare
    /// records and JSON lines of either.
    #[command(after_help = scan::FILE_NAMES_HELP)]
    Scan {
        /// Where to read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output: a readable summary (the most severe findings and the counts), one JSON finding per line
        /// (every finding), or a self-contained HTML report with a timeline chart.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Parse every record, even those the pre-filter proves no rule is triggered by (slower; reports
        /// malformed records there too).
        #[arg(long)]
        no_prefilter: bool,
        /// The progress line on standard error: when it is a terminal, always, or never.
        #[arg(long, value_enum, default_value_t = ProgressWhen::Auto)]
        progress: ProgressWhen,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only findings of this rule (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Only findings in this account (repeatable).
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// Only findings whose actor's ARN, role, user or session name matches this glob.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Prepare a backtest of an archive in S3 on S3 Batch Operations: write the shards and the manifest, and
    /// print the commands that start the job and follow it (the function and roles: infra/backtest.yaml).
    Backtest(BacktestArgs),
    /// After a backtest's first job (`pass=sessions`): join every shard's issuing calls into the run's
    /// agent-session registry input next to the manifest, and print the second job's commands.
    BacktestSessions {
        /// The run's --work location given to `backtest` (`s3://bucket/prefix/`).
        work: String,
    },
    /// Write a deterministic synthetic CloudTrail archive with planted findings (for benchmarks and tests).
    Gen {
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        /// How many events in all.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// The seed: the same seed writes the same archive.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Accounts (repeatable).
        #[arg(long = "account", default_values_t = ["123456789012".to_owned()])]
        accounts: Vec<String>,
        /// Regions (repeatable).
        #[arg(long = "region", default_values_t = ["us-east-1".to_owned(), "eu-west-1".to_owned()])]
        regions: Vec<String>,
        /// One JSON-lines file (`events.jsonl`) instead of gzipped log files.
        #[arg(long)]
        jsonl: bool,
        /// The traffic's shape: `default`, or `assume-role` (one record in six a role-to-role `AssumeRole`).
        #[arg(long, value_enum, default_value_t = GenMix::Default)]
        mix: GenMix,
    },
    /// Say what an IAM policy document grants; exit 1 when it grants what the rules flag.
    CheckPolicy {
        /// The policy document (JSON, possibly URL-encoded), or `-` for standard input.
        file: PathBuf,
        /// Whether it is an identity policy or a role trust policy (default: guessed from its statements).
        #[arg(long, value_enum, default_value_t = PolicyKind::Auto)]
        kind: PolicyKind,
        /// The role's own account, for trust policies (principals in it are not outsiders).
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
    },
    /// Explain one event: the actor, each rule's verdict and why (every record of the file, or of `-`).
    Explain {
        /// The event: an EventBridge event, a bare record, or a log file.
        file: PathBuf,
    },
    /// The kill switch: revoke a session, a source identity's sessions or all older sessions of a role, or
    /// deactivate a user's access key, with the remediator's checks (protected principals are refused).
    Revoke(RevokeArgs),
    /// List the rules.
    Rules,
    /// Print the EventBridge patterns the rules need (the infrastructure is generated from them).
    Patterns {
        /// JSON, or the CloudFormation resources for the account stack or the forwarder stack.
        #[arg(long, value_enum, default_value_t = PatternOutput::Json)]
        format: PatternOutput,
    },
}

/// What `backtest` prepares.
#[derive(clap::Args)]
struct BacktestArgs {
    /// The CloudTrail archive (`s3://bucket/prefix/`, either layout).
    archive: String,
    /// Where the shards, the manifest and the job's completion report go (`s3://bucket/prefix/`).
    #[arg(long)]
    work: String,
    /// Where the findings go (`s3://bucket/prefix/`; default: `results/` under --work).
    #[arg(long)]
    results: Option<String>,
    /// Only events at or after this time (RFC 3339); only its day folders (and the next) are listed.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Log files per shard (one Lambda invocation each).
    #[arg(long, default_value_t = trailguard_core::backtest::PER_SHARD)]
    per_shard: usize,
    /// The backtest function's ARN (output `BacktestFunctionArn`), filled into the printed command.
    #[arg(long)]
    function_arn: Option<String>,
    /// The Batch Operations role's ARN (output `BatchOperationsRoleArn`), filled into the printed command.
    #[arg(long)]
    role_arn: Option<String>,
}

/// What `revoke` acts on. Credentials come from the usual AWS sources (environment, profile, SSO).
#[derive(clap::Args)]
struct RevokeArgs {
    /// The role whose session(s) to revoke.
    #[arg(long)]
    role: Option<String>,
    /// The role session name to revoke (its other sessions keep working).
    #[arg(long, requires = "role")]
    session: Option<String>,
    /// Revoke every session of the role carrying this source identity.
    #[arg(long, requires = "role")]
    source_identity: Option<String>,
    /// Revoke every session of the role issued before now.
    #[arg(long, requires = "role")]
    all_older: bool,
    /// The IAM user whose access key to deactivate.
    #[arg(long)]
    user: Option<String>,
    /// The access key to deactivate.
    #[arg(long, requires = "user")]
    access_key: Option<String>,
    /// Act in this account, through --assume-role (the two go together: without them, revoke acts in the
    /// account of the credentials it finds, and names it before acting).
    #[arg(long, requires = "assume_role")]
    account: Option<String>,
    /// The role to assume in --account (for example trailguard-member).
    #[arg(long, requires = "account")]
    assume_role: Option<String>,
    /// The external id that role requires.
    #[arg(long)]
    external_id: Option<String>,
    /// Deny only credentials issued before this time (RFC 3339; default now). Running again with the same
    /// time changes nothing.
    #[arg(long)]
    issued_before: Option<String>,
    /// Print the exact policy that would be written; change nothing. With --role-id or --offline, no AWS call
    /// is made and only the new statement is shown (merging with the role's current revocation policy,
    /// pruning and the size budget need that policy).
    #[arg(long)]
    dry_run: bool,
    /// The role's unique id (`AROA...`, from `aws iam get-role --role-name R --query Role.RoleId`): a dry run
    /// with it works offline.
    #[arg(long, requires = "dry_run", value_name = "AROA...")]
    role_id: Option<String>,
    /// A dry run without any AWS call: the new statement only, with the role id to be filled in unless
    /// --role-id gives it.
    #[arg(long, requires = "dry_run")]
    offline: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PatternOutput {
    Json,
    AccountStack,
    Forwarder,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Jsonl,
    Html,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressWhen {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyKind {
    Auto,
    Identity,
    Trust,
}

/// `gen --mix`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GenMix {
    Default,
    AssumeRole,
}

impl From<GenMix> for trailguard_core::synth::Mix {
    fn from(mix: GenMix) -> Self {
        match mix {
            GenMix::Default => trailguard_core::synth::Mix::Default,
            GenMix::AssumeRole => trailguard_core::synth::Mix::AssumeRole,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Nothing more can be said if standard error is gone too.
            let _ = writeln!(std::io::stderr().lock(), "trailguard: {e:#}");
            match e.downcast_ref::<Failed>() {
                Some(_) => ExitCode::from(1),
                None => ExitCode::from(2),
            }
        }
    }
}

/// An error that means "could not do it" (exit 1) rather than "could not read the input" (exit 2).
#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// Whether the error is a write to a pipe whose reader has gone.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Standard output, buffered; its errors (a closed pipe) reach `main` through `?`.
fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// Says something about the run on standard error (`trailguard: ...`); a closed pipe is an error, as on stdout.
fn note(what: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    writeln!(std::io::stderr().lock(), "trailguard: {what}")
}

/// An RFC 3339 time from an argument, or an error that says so once.
fn parse_time(option: &str, text: &str) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| anyhow::anyhow!("{option} `{text}` is not an RFC 3339 time (such as 2026-11-01T13:00:00Z)"))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Config::from_json(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    match cli.command {
        Command::Scan { paths, format, no_prefilter, progress, since, until, rules, accounts, actor } => {
            let known: Vec<&str> = trailguard_core::rules::registry().iter().map(|r| r.id()).collect();
            if let Some(unknown) = rules.iter().find(|r| !known.contains(&r.as_str())) {
                anyhow::bail!("unknown rule `{unknown}` (see `trailguard rules`)");
            }
            let since = since.map(|t| parse_time("--since", &t)).transpose()?;
            let until = until.map(|t| parse_time("--until", &t)).transpose()?;
            let filters = scan::Filters { since, until, rules, accounts, actor };
            let progress = match progress {
                ProgressWhen::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
                ProgressWhen::Always => true,
                ProgressWhen::Never => false,
            };
            let options = scan::Options { format, filters, prefilter: !no_prefilter, progress };
            let urls: Vec<String> =
                paths.iter().filter_map(|p| p.to_str().filter(|p| p.starts_with("s3://"))).map(str::to_owned).collect();
            match (urls.len(), paths.len()) {
                (0, _) => scan::run(&Engine::new(config), &paths, &options),
                (n, m) if n == m => scan_s3(&Engine::new(config), &urls, &options),
                _ => anyhow::bail!("scan reads either s3:// URLs or local paths, not both at once"),
            }
        }
        Command::Backtest(args) => backtest(args),
        Command::BacktestSessions { work } => backtest_sessions(&work),
        Command::Gen { out, events, seed, accounts, regions, jsonl, mix } => {
            gen::run(&out, events, seed, &accounts, &regions, jsonl, mix.into())
        }
        Command::CheckPolicy { file, kind, account } => check_policy::run(&config, &file, kind, account.as_deref()),
        Command::Revoke(args) => revoke::run(&config, &args),
        Command::Explain { file } => explain::run(&Engine::new(config), &file),
        Command::Patterns { format } => patterns::run(&Engine::new(config), format),
        Command::Rules => rules::run(&Engine::new(config)),
    }
}

#[cfg(feature = "s3")]
fn scan_s3(engine: &Engine, urls: &[String], options: &scan::Options) -> anyhow::Result<ExitCode> {
    scan::run_s3(engine, urls, options)
}

#[cfg(feature = "s3")]
fn backtest(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let time =
        |option: &str, text: Option<String>| text.map(|t| parse_time(option, &t).map(|parsed| (t, parsed))).transpose();
    backtest::run(&backtest::Plan {
        since: time("--since", args.since)?,
        until: time("--until", args.until)?,
        archive: args.archive,
        work: args.work,
        results: args.results,
        per_shard: args.per_shard,
        function_arn: args.function_arn,
        role_arn: args.role_arn,
    })
}

#[cfg(feature = "s3")]
fn backtest_sessions(work: &str) -> anyhow::Result<ExitCode> {
    backtest::join_sessions(work)
}

#[cfg(not(feature = "s3"))]
fn backtest_sessions(_: &str) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this trailguard was built without S3 (cargo feature `s3`)")
}

#[cfg(not(feature = "s3"))]
fn backtest(_: BacktestArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this trailguard was built without S3 (cargo feature `s3`)")
}

#[cfg(not(feature = "s3"))]
fn scan_s3(_: &Engine, urls: &[String], _: &scan::Options) -> anyhow::Result<ExitCode> {
    anyhow::bail!("cannot read {}: this trailguard was built without S3 (cargo feature `s3`)", urls.join(" "))
}

/// Reads a file, or standard input for `-`.
fn read_input(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}
