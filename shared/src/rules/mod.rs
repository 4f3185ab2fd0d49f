//! The rules: one file each, one small trait, one registry.
//!
//! **Invariant:** a rule is pure and deterministic. It reads the [`Context`] the engine prepared (record, actor,
//! parsed parameters, the policy a grant applies with its analysis) and returns zero or more [`Verdict`]s. It
//! never calls AWS, reads the clock or the environment; look-ups are declared by the engine and their answers
//! arrive in the context. The engine turns verdicts into findings (stable id, actor, time, attempt handling).

mod admin_policy_grant;
mod agent_behaviour;
mod agent_new_region;
mod agent_sensitive_call;
mod agent_tag_tampering;
mod audit_requests;
mod audit_tampering;
mod grant_unjudged;
mod grant_view;
mod guardrail_tampering;
mod passrole_grant;
mod root_usage;
mod trust_policy_grant;
mod wildcard_policy_grant;

use serde_json::Value;

pub use grant_view::{GrantView, TrustView};

use crate::config::Config;
use crate::event::{Actor, CloudTrailRecord};
use crate::finding::{Remediation, Severity, Target};

/// A detection rule.
///
/// Every rule: has a stable kebab-case id (used in configuration, findings and alerts); declares the events it
/// needs, so that the engine skips it for every other event and the infrastructure can derive EventBridge
/// patterns; is pure; returns verdicts, not errors (an unreadable policy is a note in a verdict or nothing).
pub trait Rule: Send + Sync {
    /// The stable id, such as `root-usage`.
    fn id(&self) -> &'static str;
    /// What the rule catches and why it matters, one or two sentences.
    fn description(&self) -> &'static str;
    /// What the rule suggests doing about its findings, in one sentence.
    fn response(&self) -> &'static str;
    /// The events the rule needs. An event matching none of them never reaches [`Rule::evaluate`].
    fn triggers(&self, config: &Config) -> Vec<Trigger>;
    /// Text every verdict of the rule requires the record to hold somewhere, ignoring ASCII case (`None`, the
    /// default: no such text). The byte pre-filter ([`crate::prefilter`]) passes over a call only such rules are
    /// triggered by when its text holds none of theirs; each piece must be written as is in any JSON text, without
    /// `\u`, of a value that requires it (no `"`, `\`, `/` or control character).
    fn required_text(&self, _config: &Config) -> Option<Vec<String>> {
        None
    }
    /// Judges one event.
    fn evaluate(&self, ctx: &Context<'_>) -> Vec<Verdict>;
    /// Whether the rule's findings are dropped when another rule flagged the same event (a general rule
    /// that a specific one supersedes, so one event pages once).
    fn yields_to_others(&self) -> bool {
        false
    }
    /// Whether the rule reads `requestParameters` as a parsed tree ([`Context::params`]). A rule that reads the
    /// few fields it needs from the record's raw text says `false`, and the engine skips building the tree when
    /// no triggered rule wants it (`AssumeRole`, common in real trails, triggers only such a rule).
    fn reads_params(&self) -> bool {
        true
    }
    /// Whether the rule reports every failed call it judges, whatever the error. By default (see
    /// [`crate::engine`]) a failed call is an attempt only when it was refused for authorization or
    /// authentication, or made by an AI agent.
    fn reports_every_failure(&self) -> bool {
        false
    }

    /// Whether the rule's verdict on a failed call stands as it is, rather than becoming an attempt one severity
    /// lower (a behaviour rule judges a pattern of calls, not the one that failed).
    fn judges_failures_itself(&self) -> bool {
        false
    }
}

/// Which events a rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Calls to one event source (`None`: any source) whose names match.
    Calls {
        /// `eventSource`, such as `iam.amazonaws.com`.
        source: Option<String>,
        /// Event names.
        names: Vec<Name>,
        /// Whether some of the calls are read-only (their EventBridge rule must receive read events).
        read_only: bool,
    },
    /// Any event whose `userIdentity.type` is `Root`.
    RootActor,
    /// Any read-only call (`readOnly`, else a `List`/`Describe`/`Get`/`BatchGet` name) by an actor the signals the
    /// record shows recognise as an agent (offline also: a session the registry in memory knows). Keyed by the
    /// identity, not the call: the engine tests it only after the cheap tests (read-only, not root) pass, and
    /// never looks anything up for it.
    AgentReads,
}

/// An event name, exactly or by prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// Exactly this name.
    Exact(String),
    /// Any name starting with this (Lambda's event names carry API version suffixes).
    Prefix(String),
}

impl Name {
    /// The name, or the prefix.
    pub fn text(&self) -> &str {
        match self {
            Name::Exact(text) | Name::Prefix(text) => text,
        }
    }
}

impl Trigger {
    /// Calls to `source` with exactly these names.
    pub fn exact(source: &str, names: &[&str]) -> Trigger {
        Trigger::Calls {
            source: Some(source.to_owned()),
            names: names.iter().map(|n| Name::Exact((*n).to_owned())).collect(),
            read_only: false,
        }
    }

    /// Calls to `source` (or any source) whose names start with one of `prefixes`.
    pub fn prefixed(source: Option<&str>, prefixes: &[&str]) -> Trigger {
        Trigger::Calls {
            source: source.map(str::to_owned),
            names: prefixes.iter().map(|n| Name::Prefix((*n).to_owned())).collect(),
            read_only: false,
        }
    }

    /// Marks the trigger as including read-only calls.
    pub fn reading(mut self) -> Trigger {
        if let Trigger::Calls { read_only, .. } = &mut self {
            *read_only = true;
        }
        self
    }
}

/// A rule's [`Rule::required_text`], built once by the engine, for the rule to tell apart cheaply the records that
/// cannot hold any of it.
pub struct RequiredText(Search);

/// How the pieces are searched for: one piece (trailguard's names usually share one) where each place its first
/// byte is, many at a time; several with Aho-Corasick.
enum Search {
    One(String),
    Many(aho_corasick::AhoCorasick),
}

impl RequiredText {
    /// The search for `pieces`, ignoring ASCII case; `None` without pieces. A piece that holds another is left
    /// out: a text holding it holds the other. Trailguard's names usually share one piece (`trailguard`).
    pub(crate) fn new(pieces: &[String]) -> Option<RequiredText> {
        let lower: Vec<String> = pieces.iter().map(|p| p.to_ascii_lowercase()).collect();
        let holds_another = |(i, piece): &(usize, &String)| {
            lower.iter().enumerate().any(|(j, other)| {
                piece.contains(other.as_str()) && (piece.len() > other.len() || (*piece == other && j < *i))
            })
        };
        let needed: Vec<&String> = lower.iter().enumerate().filter(|p| !holds_another(p)).map(|(_, p)| p).collect();
        match needed.as_slice() {
            [] => None,
            [one] => Some(RequiredText(Search::One((*one).clone()))),
            _ => aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(needed)
                .ok()
                .map(|many| RequiredText(Search::Many(many))),
        }
    }

    /// Whether `text` (raw JSON or a value) may hold a piece: it holds one, or it may spell one otherwise (a `\`
    /// escape, or a non-ASCII letter that folds to an ASCII one, such as the Kelvin sign to `k`).
    pub fn may_be_in(&self, text: &str) -> bool {
        !text.is_ascii()
            || text.contains('\\')
            || match &self.0 {
                Search::One(piece) => crate::wildcard::contains_ascii(text.as_bytes(), piece.as_bytes(), true),
                Search::Many(pieces) => pieces.is_match(text),
            }
    }
}

/// What a rule sees of one event.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The record.
    pub record: &'a CloudTrailRecord,
    /// The actor, with agent recognition done.
    pub actor: &'a Actor<'a>,
    /// `requestParameters`, parsed once; `None` also when no triggered rule [reads them](Rule::reads_params).
    pub params: Option<&'a Value>,
    /// The permissions grant the event makes, with its document and analysis, if it makes one.
    pub grant: Option<&'a GrantView>,
    /// The trust policy the event writes, with its analysis, if it writes one.
    pub trust: Option<&'a TrustView>,
    /// The configuration.
    pub config: &'a Config,
    /// The behaviour count this event crossed, with its evidence, when it crossed one.
    pub crossing: Option<(crate::behaviour::Kind, &'a [crate::behaviour::EvidenceEvent])>,
    /// The region this agent identity used for the first time after learning, when it did.
    pub new_region: Option<&'a crate::regions::NewRegion>,
    /// The judging rule's [`Rule::required_text`], searchable; `None` when it has none.
    pub required: Option<&'a RequiredText>,
}

impl Context<'_> {
    /// A string request parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.and_then(|p| p.get(key)).and_then(Value::as_str)
    }

    /// The account the event belongs to.
    pub fn account(&self) -> String {
        self.record.account().unwrap_or_default().to_owned()
    }

    /// Why the actor's session credentials rotate under the same session name, when they do: EC2 delivered
    /// them through instance metadata (`sessionContext.ec2RoleDelivery`), or the SDK says it runs in Lambda or
    /// ECS (`exec-env/AWS_Lambda_…`, `exec-env/AWS_ECS_…` in the user agent). A caller who forges the user agent
    /// only earns a stricter, longer deny.
    pub fn rotating_credentials(&self) -> Option<String> {
        let identity = self.record.identity();
        if identity.session_context.as_ref().is_some_and(|s| s.ec2_role_delivery.is_some()) {
            return Some("EC2 instance profile".to_owned());
        }
        let agent = self.record.user_agent.as_deref().unwrap_or_default();
        if agent.contains("exec-env/AWS_Lambda_") {
            return Some("Lambda function: every environment of the function stops".to_owned());
        }
        if agent.contains("exec-env/AWS_ECS_") {
            return Some("ECS task".to_owned());
        }
        None
    }

    /// The IAM user that issued a federated user's credentials (`sessionContext.sessionIssuer`, type `IAMUser`).
    pub fn federation_issuer(&self) -> Option<String> {
        let issuer = self.record.identity().session_context.as_ref()?.session_issuer.as_ref()?;
        if issuer.kind.as_deref() != Some("IAMUser") {
            return None;
        }
        issuer.user_name.clone().or_else(|| issuer.arn.as_deref()?.rsplit('/').next().map(str::to_owned))
    }

    /// What the containment steps cannot do for this kind of identity, for the finding to say (empty where
    /// [`Context::contain_actor`] covers it).
    pub fn containment_notes(&self) -> Vec<String> {
        let actor = self.actor;
        let account = actor.account.as_deref().map_or_else(|| self.account(), str::to_owned);
        let mut notes = Vec::new();
        match &*actor.kind {
            "Root" => notes.push(
                "Containment: the root user's credentials, including temporary credentials root obtained, cannot be \
                 restricted by any IAM policy: trailguard cannot revoke them. Change the root password, remove its \
                 access keys, and (for a member account) rely on an SCP."
                    .to_owned(),
            ),
            "FederatedUser" => notes.push(match self.federation_issuer() {
                Some(issuer) => format!(
                    "Containment: federation-token credentials ({}) are revoked by a deny for their `aws:userid` on \
                     the IAM user that issued them ({issuer}), bounded by `aws:TokenIssueTime`. Such credentials \
                     cannot call STS, so they have no chained sessions.",
                    actor.arn.as_deref().unwrap_or("federated user")
                ),
                None => format!(
                    "Containment: federation-token credentials ({}) are revoked only by a deny on the IAM user that \
                     issued them, which the record does not name (no `sessionContext.sessionIssuer`): find it with \
                     CloudTrail's `GetFederationToken` events and add a Deny of `*` for `aws:userid` = {} with \
                     `DateLessThan aws:TokenIssueTime = <now>` to it by hand. Such credentials cannot call STS, so \
                     they have no chained sessions.",
                    actor.arn.as_deref().unwrap_or("federated user"),
                    actor.principal_id.as_deref().unwrap_or("<account>:<name>")
                ),
            }),
            "AssumedRole" if actor.role_name.as_deref().is_some_and(|r| r.starts_with("AWSReservedSSO_")) => {
                let role = actor.role_name.as_deref().unwrap_or_default();
                let set = permission_set_of(role);
                if let Some(sso_role) = self.config.remediation.sso_admin_role_arn.as_deref() {
                    notes.push(format!(
                        "Containment: `{role}` belongs to IAM Identity Center and cannot be edited in IAM. trailguard \
                         adds a Deny of `*` for `aws:userid` = {} with `DateLessThan aws:TokenIssueTime = <now>` to \
                         permission set `{set}`'s inline policy through {sso_role}, then re-provisions the permission \
                         set to account {account}; the remediation report says whether it did.",
                        actor.principal_id.as_deref().unwrap_or("<the session's aws:userid>")
                    ));
                    return notes;
                }
                notes.push(format!(
                    "Containment: `{role}` belongs to IAM Identity Center and cannot be edited in IAM. In the management \
                     (or delegated administrator) account: IAM Identity Center > Permission sets > `{set}` > inline \
                     policy: add a Deny of `*` with condition `StringEquals aws:userid = {}` and `DateLessThan \
                     aws:TokenIssueTime = <now>`, save, then re-provision the permission set to account {account}.",
                    actor.principal_id.as_deref().unwrap_or("<the session's aws:userid>")
                ));
            }
            "IAMUser" if actor.access_key_id.as_deref().is_some_and(|k| k.starts_with("AKIA")) => notes.push(
                "Containment: the key is deactivated, and the temporary credentials already derived from the user \
                 (`GetSessionToken`, `GetFederationToken`) are denied by an inline policy on the user bounded by \
                 `aws:TokenIssueTime` (calls signed with a long-term key carry no issue time and are not affected). \
                 IAM allows 2,048 characters of inline policy per user in all: where the user's other inline \
                 policies leave too little room, the step fails loudly and says so (no managed policy is created)."
                    .to_owned(),
            ),
            "IAMUser" if actor.access_key_id.as_deref().is_some_and(|k| k.starts_with("ASIA")) => notes.push(
                "Containment: temporary credentials of an IAM user's console or `aws login` sign-in session. \
                 trailguard writes a deny on the user for credentials issued before now (`aws:TokenIssueTime`); \
                 whether CloudTrail records the sign-in session's ARN, and so whether one sign-in session could be \
                 denied alone, trailguard could not verify, and the AWS Sign-In batch revocation is not in the Rust \
                 SDK: if the session goes on, revoke it in the IAM console (user > Security credentials) or with \
                 the AWS Sign-In `BatchRevokeSessions` API, and reset the user's password."
                    .to_owned(),
            ),
            _ => {}
        }
        notes
    }

    /// Steps that stop the actor from going on: revoke its session (quarantine it when its credentials rotate),
    /// or deactivate its long-term key. Empty for root (alert only), AWS services and identities trailguard
    /// cannot act on.
    pub fn contain_actor(&self) -> Vec<Remediation> {
        let actor = self.actor;
        let account = actor.account.as_deref().map_or_else(|| self.account(), str::to_owned);
        match &*actor.kind {
            "AssumedRole" => {
                let Some(role_name) = actor.role_name.as_deref().map(str::to_owned) else { return Vec::new() };
                // An Identity Center role cannot be edited: the revocation is skipped at execution, when IAM
                // shows its reserved path, and the deny goes into the permission set instead. A role merely
                // named like one is revoked like any other, and the permission-set step then does nothing.
                let sso = match (&self.config.remediation.sso_admin_role_arn, actor.principal_id.as_deref()) {
                    (Some(_), Some(user_id)) if role_name.starts_with("AWSReservedSSO_") => {
                        Some(Remediation::DenySsoUserInPermissionSet {
                            account: account.clone(),
                            role_name: role_name.clone(),
                            permission_set: permission_set_of(&role_name).to_owned(),
                            user_id: user_id.to_owned(),
                        })
                    }
                    _ => None,
                };
                let revoke = Remediation::RevokeSession {
                    account,
                    role_name,
                    user_id: actor.principal_id.as_deref().map(str::to_owned),
                    source_identity: actor.source_identity.as_deref().map(str::to_owned),
                    rotating: self.rotating_credentials(),
                };
                std::iter::once(revoke).chain(sso).collect()
            }
            "IAMUser" => match (actor.user_name.as_deref(), actor.access_key_id.as_deref()) {
                // Only long-term keys (AKIA...) can be deactivated; ASIA... keys are sessions of the console or of
                // `aws login`, whose credentials the same deny on the user covers if they carry an issue time.
                (Some(user_name), Some(key)) if key.starts_with("AKIA") => vec![
                    Remediation::DeactivateAccessKey {
                        account: account.clone(),
                        user_name: user_name.to_owned(),
                        access_key_id: key.to_owned(),
                    },
                    // Deactivating the key leaves the credentials already derived from it working.
                    Remediation::RevokeUserSessions { account, user_name: user_name.to_owned(), user_id: None },
                ],
                (Some(user_name), Some(key)) if key.starts_with("ASIA") => {
                    vec![Remediation::RevokeUserSessions { account, user_name: user_name.to_owned(), user_id: None }]
                }
                _ => Vec::new(),
            },
            "FederatedUser" => match (self.federation_issuer(), actor.principal_id.as_deref()) {
                (Some(user_name), Some(user_id)) => {
                    vec![Remediation::RevokeUserSessions { account, user_name, user_id: Some(user_id.to_owned()) }]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// A rule's judgement of one event; the engine makes it a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// How urgent, for a call that succeeded (the engine lowers it for an attempt).
    pub severity: Severity,
    /// One line saying what happened.
    pub title: String,
    /// What it touched.
    pub target: Target,
    /// Sentences explaining the danger.
    pub notes: Vec<String>,
    /// The offending statements, as written.
    pub statements: Vec<Value>,
    /// The whole document, kept for the record.
    pub document: Option<Value>,
    /// What would undo it, in order.
    pub remediation: Vec<Remediation>,
}

impl Verdict {
    /// A verdict with a severity, title and target; the rest empty.
    pub fn new(severity: Severity, title: impl Into<String>, target: Target) -> Verdict {
        Verdict {
            severity,
            title: title.into(),
            target,
            notes: Vec::new(),
            statements: Vec::new(),
            document: None,
            remediation: Vec::new(),
        }
    }
}

/// Every rule, in the order findings are reported.
pub fn registry() -> Vec<&'static dyn Rule> {
    vec![
        &root_usage::RootUsage,
        &admin_policy_grant::AdminPolicyGrant,
        &wildcard_policy_grant::WildcardPolicyGrant,
        &passrole_grant::PassRoleGrant,
        &trust_policy_grant::TrustPolicyGrant,
        &audit_tampering::AuditTampering,
        &guardrail_tampering::GuardrailTampering,
        &agent_tag_tampering::AgentTagTampering,
        &agent_sensitive_call::AgentSensitiveCall,
        &agent_behaviour::AgentBehaviour,
        &agent_new_region::AgentNewRegion,
        &grant_unjudged::GrantUnjudged,
    ]
}

/// The permission set's name in an Identity Center role's name, `AWSReservedSSO_<permission set>_<hash>` (a
/// permission set's name may hold underscores; the hash holds none).
pub fn permission_set_of(role: &str) -> &str {
    role.trim_start_matches("AWSReservedSSO_").rsplit_once('_').map_or(role, |(set, _)| set)
}

#[cfg(test)]
mod tests {
    use super::{RequiredText, Search};

    #[test]
    fn required_text_searches_only_the_pieces_no_other_piece_implies() {
        let pieces = ["trailguard", "StackSet-trailguard", "TRAILGUARD-member", "trailguard", "orders-key"];
        let required = RequiredText::new(&pieces.map(str::to_owned)).unwrap();
        assert!(
            matches!(&required.0, Search::Many(many) if many.patterns_len() == 2),
            "`trailguard` once, and `orders-key`"
        );
        for text in [r#"{"stackName":"StackSet-TrailGuard-x"}"#, "trailguard-member", "x/ORDERS-KEY"] {
            assert!(required.may_be_in(text), "{text}");
        }
        assert!(!required.may_be_in(r#"{"roleName":"orders-api"}"#));
        assert!(RequiredText::new(&[]).is_none());
        // One piece left: searched for without an automaton, alike.
        let one = RequiredText::new(&["StackSet-trailguard", "trailguard"].map(str::to_owned)).unwrap();
        assert!(matches!(&one.0, Search::One(piece) if piece == "trailguard"));
        for (text, held) in [
            (r#"{"roleArn":"arn:aws:iam::123456789012:role/TrailGuard-remediate"}"#, true),
            ("trailguard", true),
            ("xtrailguar", false),
            ("trailguar-d trail guard", false),
            (r#"{"roleArn":"arn:aws:iam::123456789012:role/builder"}"#, false),
        ] {
            assert_eq!(one.may_be_in(text), held, "{text}");
        }
    }
}
