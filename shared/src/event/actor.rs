//! Who made a call: the actor, and whether it is an AI agent.
//!
//! CloudTrail's `userIdentity` is flattened into an [`Actor`] that every finding carries. Whether the actor is
//! an agent is decided by [`AgentMatchers`] from what CloudTrail records, strongest signal first: the source
//! identity (set at the first `AssumeRole`, carried through role chaining, unchangeable by the session), then
//! the session's registry entry (its session tags, or an agent caller it inherits agency from), AWS's MCP server
//! marker, the role name or ARN, the session name, the SDK application id in the user agent (when configured),
//! the IAM user name, and last the role's tags (looked up). Role tags come last because anyone with
//! `iam:TagRole` on a role can set them: an actor recognised only by one is alerted on, not remediated, unless
//! the configuration says the tag keys are protected (`remediation.trust_role_tags`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::record::CloudTrailRecord;
use crate::session::Session;
use crate::wildcard;

/// The principal behind a call. Its text is borrowed from the record it was read from (`'r`): reading the actor
/// of every evaluated record copies nothing; a finding keeps an owned copy ([`Actor::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor<'r> {
    /// `userIdentity.type` as written: `Root`, `IAMUser`, `AssumedRole`, `AWSService`, ... or `Unknown`.
    #[serde(rename = "type")]
    pub kind: Cow<'r, str>,
    /// The principal's ARN (for a session, the `assumed-role` ARN).
    pub arn: Option<Cow<'r, str>>,
    /// The principal's account.
    pub account: Option<Cow<'r, str>>,
    /// `userIdentity.principalId`: for a session `<role id>:<session name>`, the value of `aws:userid`.
    pub principal_id: Option<Cow<'r, str>>,
    /// For a session, the role that issued it.
    pub role_arn: Option<Cow<'r, str>>,
    /// The issuing role's name (the last part of its ARN, without path).
    pub role_name: Option<Cow<'r, str>>,
    /// The role session name (the part after the last `/` of an assumed-role ARN).
    pub session_name: Option<Cow<'r, str>>,
    /// `sessionContext.sourceIdentity`.
    pub source_identity: Option<Cow<'r, str>>,
    /// The IAM user's name, for users and root sign-ins.
    pub user_name: Option<Cow<'r, str>>,
    /// The access key that signed the call.
    pub access_key_id: Option<Cow<'r, str>>,
    /// When the session's credentials were issued.
    pub session_issued: Option<Cow<'r, str>>,
    /// Whether the session or sign-in used MFA.
    pub mfa: bool,
    /// Whether AWS itself acted (`AWSService` identity or an AWS service event).
    pub aws_service: bool,
    /// The AWS service that called on the principal's behalf.
    pub invoked_by: Option<Cow<'r, str>>,
    /// The caller's address.
    pub source_ip: Option<Cow<'r, str>>,
    /// The caller's user agent.
    pub user_agent: Option<Cow<'r, str>>,
    /// The AWS managed MCP server the call came through (`additionalEventData.CalledViaAWSMCP`, the value IAM's
    /// `aws:CalledViaAWSMCP` condition key compares), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mcp: Option<Cow<'r, str>>,
    /// Why the actor is taken for an AI agent, when it is.
    pub agent: Option<AgentMatch>,
}

/// Why an actor was recognised as an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMatch {
    /// What was matched: `source_identity`, `session_tag`, `parent_session`, `mcp`, `role_tag`, `role`,
    /// `session_name`, `app_id` or `user_name`.
    pub signal: String,
    /// The configured pattern that matched.
    pub pattern: String,
    /// The value it matched.
    pub value: String,
}

impl AgentMatch {
    /// How the actor was recognised, as a finding's note says it.
    pub fn note(&self) -> String {
        format!("recognised as an agent by {} `{}` (pattern `{}`)", self.signal, self.value, self.pattern)
    }

    /// Whether the agency rests on a role tag alone: the actor was recognised by its role's tag, or inherited
    /// agency from a caller (at any depth) that was. Such a tag can be forged by anyone with `iam:TagRole`.
    pub fn rests_on_role_tag(&self) -> bool {
        let root = match self.signal.as_str() {
            "parent_session" => {
                let mut pattern = self.pattern.as_str();
                while let Some(rest) = pattern.strip_prefix("parent_session: ") {
                    pattern = rest;
                }
                pattern.split_once(": ").map_or(pattern, |(signal, _)| signal)
            }
            signal => signal,
        };
        root == "role_tag"
    }
}

/// How agents are recognised. Patterns are case-insensitive globs (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentMatchers {
    /// Patterns for `sourceIdentity`.
    pub source_identity: Vec<String>,
    /// Patterns for the role session name.
    pub session_name: Vec<String>,
    /// Patterns for the issuing role's name or ARN.
    pub role: Vec<String>,
    /// Role tags `key=value-pattern` (`trailguard:agent=true`); looked up and cached.
    pub role_tags: Vec<String>,
    /// Patterns for IAM user names (agents with long-term keys).
    pub user_name: Vec<String>,
    /// Session tags `key=value-pattern`, read from the call that issued the session and kept in the registry.
    pub session_tags: Vec<String>,
    /// Whether a call made through an AWS managed MCP server (the Agent Toolkit for AWS marks it in CloudTrail)
    /// is an agent's. On by default: only an agent calls through it.
    pub mcp: bool,
    /// Patterns for the SDK application id in the user agent (`app/<id>`, set with `AWS_SDK_UA_APP_ID`). Empty by
    /// default: any program may set any id, so only an operator who knows their agents' ids should name them.
    pub app_id: Vec<String>,
}

impl Default for AgentMatchers {
    /// Defaults that match common agent naming without catching AWS's own agents (`CloudWatchAgentServerRole`,
    /// the SSM agent), which would lead to revoking ordinary workloads.
    fn default() -> Self {
        let agents =
            ["agent-*", "ai-agent*", "*-ai-agent*", "claude*", "codex*", "copilot*", "cursor*", "devin*", "aider*"];
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        AgentMatchers {
            source_identity: strings(&agents),
            session_name: strings(&agents),
            role: strings(&["ai-agent*", "*-ai-agent*", "agent-*"]),
            role_tags: strings(&["trailguard:agent=true", "ai-agent=true"]),
            user_name: strings(&["ai-agent*", "agent-*"]),
            session_tags: strings(&["trailguard:agent=true", "ai-agent=true"]),
            mcp: true,
            app_id: Vec::new(),
        }
    }
}

impl AgentMatchers {
    /// Whether matching needs the role's tags (a look-up): there are tag patterns and the actor is a session
    /// not already recognised by the free signals.
    pub fn needs_role_tags(&self, actor: &Actor) -> bool {
        !self.role_tags.is_empty() && actor.role_arn.is_some() && actor.agent.is_none()
    }

    /// Whether matching needs the session registry (a look-up): the call was signed with temporary credentials
    /// and the free signals did not already recognise the actor.
    pub fn needs_session(&self, actor: &Actor) -> bool {
        actor.agent.is_none() && actor.access_key_id.as_deref().is_some_and(|k| k.starts_with("ASIA"))
    }

    /// Decides whether the actor is an agent; `role_tags` are the issuing role's tags and `session` the registry's
    /// entry for the actor's access key, when known.
    pub fn recognise(
        &self,
        actor: &Actor,
        role_tags: Option<&[(String, String)]>,
        session: Option<&Session>,
    ) -> Option<AgentMatch> {
        let hit = |signal: &str, patterns: &[String], value: Option<&str>| {
            let value = value?;
            let pattern = patterns.iter().find(|p| wildcard::matches(p, value, true))?;
            Some(AgentMatch { signal: signal.to_owned(), pattern: pattern.clone(), value: value.to_owned() })
        };
        hit("source_identity", &self.source_identity, actor.source_identity.as_deref())
            .or_else(|| session?.agent.clone())
            .or_else(|| {
                let server = actor.via_mcp.as_deref().filter(|_| self.mcp)?;
                Some(AgentMatch {
                    signal: "mcp".to_owned(),
                    pattern: "CalledViaAWSMCP".to_owned(),
                    value: server.to_owned(),
                })
            })
            .or_else(|| hit("role", &self.role, actor.role_name.as_deref()))
            .or_else(|| hit("role", &self.role, actor.role_arn.as_deref()))
            .or_else(|| hit("session_name", &self.session_name, actor.session_name.as_deref()))
            // The user agent is split only when some application id is configured (none is by default).
            .or_else(|| {
                hit(
                    "app_id",
                    &self.app_id,
                    actor.user_agent.as_deref().filter(|_| !self.app_id.is_empty()).and_then(app_id),
                )
            })
            .or_else(|| {
                hit("user_name", &self.user_name, actor.user_name.as_deref().filter(|_| actor.kind == "IAMUser"))
            })
            // Last: anyone with `iam:TagRole` can set a role tag, so a match here means "recognised only by it".
            .or_else(|| tag_match("role_tag", &self.role_tags, role_tags?))
    }

    /// The keys of the role tags that mark an agent (`trailguard:agent` of `trailguard:agent=true`).
    pub fn role_tag_keys(&self) -> Vec<&str> {
        self.role_tags.iter().map(|spec| spec.split_once('=').map_or(spec.as_str(), |(key, _)| key)).collect()
    }

    /// Decides whether a newly issued session is an agent's: its own session tags or source identity say so, or
    /// its caller (`caller`, already recognised) was an agent, which hands its agency on.
    pub fn recognise_session(&self, session: &Session, caller: Option<&AgentMatch>) -> Option<AgentMatch> {
        let source = session.source_identity.as_deref().and_then(|value| {
            let pattern = self.source_identity.iter().find(|p| wildcard::matches(p, value, true))?;
            Some(AgentMatch { signal: "source_identity".to_owned(), pattern: pattern.clone(), value: value.to_owned() })
        });
        tag_match("session_tag", &self.session_tags, &session.tags).or(source).or_else(|| {
            let caller = caller?;
            Some(AgentMatch {
                signal: "parent_session".to_owned(),
                pattern: format!("{}: {}", caller.signal, caller.pattern),
                value: session.parent.clone().unwrap_or_else(|| caller.value.clone()),
            })
        })
    }
}

/// The first tag that one of `specs` (`key=value-pattern`) matches.
fn tag_match(signal: &str, specs: &[String], tags: &[(String, String)]) -> Option<AgentMatch> {
    specs.iter().find_map(|spec| {
        let (key, pattern) = spec.split_once('=').unwrap_or((spec.as_str(), "*"));
        tags.iter().find(|(k, v)| k == key && wildcard::matches(pattern, v, true)).map(|(k, v)| AgentMatch {
            signal: signal.to_owned(),
            pattern: spec.clone(),
            value: format!("{k}={v}"),
        })
    })
}

/// The SDK application id in a user agent: the token `app/<id>` that `AWS_SDK_UA_APP_ID` adds.
fn app_id(user_agent: &str) -> Option<&str> {
    user_agent.split_whitespace().find_map(|token| token.strip_prefix("app/")).filter(|id| !id.is_empty())
}

impl<'r> Actor<'r> {
    /// Reads the actor from a record. Agent recognition is separate ([`AgentMatchers::recognise`]), since it may
    /// need a look-up.
    pub fn from_record(record: &'r CloudTrailRecord) -> Actor<'r> {
        let id = record.identity();
        let session = id.session_context.as_ref();
        let issuer = session.and_then(|s| s.session_issuer.as_ref());
        let kind = id.kind.as_deref().unwrap_or("Unknown");
        let role_arn = match issuer.filter(|i| i.kind.as_deref() == Some("Role")).and_then(|i| i.arn.as_deref()) {
            Some(arn) => Some(Cow::Borrowed(arn)),
            None => id.arn.as_deref().and_then(role_arn_from_session_arn).map(Cow::Owned),
        };
        // The name is the role ARN's last part: borrowed from the record, or from a session ARN when the issuer
        // is not named (the derived ARN ends with it).
        let role_name = match &role_arn {
            Some(Cow::Borrowed(arn)) => arn.rsplit('/').next().map(Cow::Borrowed),
            Some(Cow::Owned(arn)) => arn.rsplit('/').next().map(|name| Cow::Owned(name.to_owned())),
            None => None,
        };
        let session_name = match kind {
            "AssumedRole" => id.arn.as_deref().and_then(|a| a.rsplit_once('/')).map(|(_, s)| Cow::Borrowed(s)),
            _ => None,
        };
        let mfa_signin = record.event_name == "ConsoleLogin"
            && record.additional_data().and_then(|d| d.get("MFAUsed").and_then(|v| v.as_str().map(str::to_owned)))
                == Some("Yes".to_owned());
        let borrowed = |text: &'r Option<String>| text.as_deref().map(Cow::Borrowed);
        Actor {
            arn: borrowed(&id.arn),
            account: borrowed(&id.account_id),
            principal_id: borrowed(&id.principal_id),
            role_name,
            role_arn,
            session_name,
            source_identity: session.and_then(|s| borrowed(&s.source_identity)),
            user_name: borrowed(&id.user_name),
            access_key_id: borrowed(&id.access_key_id),
            session_issued: session.and_then(|s| s.attributes.as_ref()).and_then(|a| borrowed(&a.creation_date)),
            mfa: mfa_signin
                || session.and_then(|s| s.attributes.as_ref()).and_then(|a| a.mfa_authenticated).unwrap_or(false),
            aws_service: kind == "AWSService" || record.is_aws_service_event(),
            invoked_by: borrowed(&id.invoked_by),
            source_ip: borrowed(&record.source_ip_address),
            user_agent: borrowed(&record.user_agent),
            via_mcp: mcp_server(record).map(Cow::Owned),
            agent: None,
            kind: Cow::Borrowed(kind),
        }
    }

    /// The same actor, owning its text: for what outlives the record (a finding, the offline registry's calls).
    pub fn into_owned(self) -> Actor<'static> {
        let owned = |text: Option<Cow<'r, str>>| text.map(|t| Cow::Owned(t.into_owned()));
        Actor {
            kind: Cow::Owned(self.kind.into_owned()),
            arn: owned(self.arn),
            account: owned(self.account),
            principal_id: owned(self.principal_id),
            role_arn: owned(self.role_arn),
            role_name: owned(self.role_name),
            session_name: owned(self.session_name),
            source_identity: owned(self.source_identity),
            user_name: owned(self.user_name),
            access_key_id: owned(self.access_key_id),
            session_issued: owned(self.session_issued),
            mfa: self.mfa,
            aws_service: self.aws_service,
            invoked_by: owned(self.invoked_by),
            source_ip: owned(self.source_ip),
            user_agent: owned(self.user_agent),
            via_mcp: owned(self.via_mcp),
            agent: self.agent,
        }
    }

    /// Whether the actor is recognised as an agent.
    pub fn is_agent(&self) -> bool {
        self.agent.is_some()
    }

    /// The best short name for people: the session, the user, or the ARN.
    pub fn display_name(&self) -> String {
        match (&self.role_name, &self.session_name, &self.user_name) {
            (Some(role), Some(session), _) => format!("{role}/{session}"),
            (_, _, Some(user)) if self.kind == "IAMUser" => format!("user {user}"),
            _ if self.kind == "Root" => "root user".to_owned(),
            _ => self.arn.as_deref().or(self.invoked_by.as_deref()).unwrap_or(&self.kind).to_owned(),
        }
    }
}

/// The MCP server a call came through: `additionalEventData.CalledViaAWSMCP` (a server's service name such as
/// `aws-mcp.amazonaws.com`, or `true`), per the Agent Toolkit for AWS documentation of the `aws:CalledViaAWSMCP`
/// and `aws:ViaAWSMCPService` condition keys.
fn mcp_server(record: &CloudTrailRecord) -> Option<String> {
    let raw = record.additional_event_data.as_ref()?;
    if !raw.get().contains("ViaAWSMCP") {
        return None;
    }
    let data = record.additional_data()?;
    let value = data.get("CalledViaAWSMCP").or_else(|| data.get("ViaAWSMCPService"))?;
    match value {
        serde_json::Value::String(s) if !s.is_empty() && s != "false" => Some(s.clone()),
        serde_json::Value::Bool(true) => Some("true".to_owned()),
        _ => None,
    }
}

/// `arn:aws:sts::123456789012:assumed-role/Name/session` gives `arn:aws:iam::123456789012:role/Name` (without
/// the path, which the session ARN does not carry).
fn role_arn_from_session_arn(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":assumed-role/")?;
    let (role, _) = rest.rsplit_once('/')?;
    let account = head.rsplit(':').next()?;
    let partition = head.split(':').nth(1)?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::input::parse_record;

    fn actor(identity: &str) -> Actor<'static> {
        let record =
            format!(r#"{{"eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{identity}}}"#);
        Actor::from_record(&parse_record(&record).unwrap()).into_owned()
    }

    #[test]
    fn assumed_role_sessions_are_unpacked() {
        let a = actor(
            r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:agent-run-7","arn":"arn:aws:sts::123456789012:assumed-role/dev/agent-run-7",
                "accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role",
                "principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/team/dev","accountId":"123456789012","userName":"dev"},
                "attributes":{"creationDate":"2026-11-27T10:00:00Z","mfaAuthenticated":"false"},"sourceIdentity":"claude-code"}}"#,
        );
        assert_eq!(a.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/team/dev"));
        assert_eq!(a.role_name.as_deref(), Some("dev"));
        assert_eq!(a.session_name.as_deref(), Some("agent-run-7"));
        assert_eq!(a.source_identity.as_deref(), Some("claude-code"));
        assert!(!a.mfa);
        let m = AgentMatchers::default().recognise(&a, None, None).unwrap();
        assert_eq!((m.signal.as_str(), m.pattern.as_str()), ("source_identity", "claude*"));
    }

    #[test]
    fn aws_own_agents_are_not_ai_agents() {
        let a = actor(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/CloudWatchAgentServerRole/i-0abc",
                "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/CloudWatchAgentServerRole"}}}"#,
        );
        assert_eq!(AgentMatchers::default().recognise(&a, None, None), None);
        let tags = vec![("trailguard:agent".to_owned(), "True".to_owned())];
        assert_eq!(AgentMatchers::default().recognise(&a, Some(&tags), None).unwrap().signal, "role_tag");
    }

    #[test]
    fn an_actor_borrows_its_record_and_a_kept_copy_is_the_same() {
        // No session issuer: the role is derived from the session ARN, the one text the actor must own.
        let record = parse_record(
            r#"{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"203.0.113.7",
                "userAgent":"aws-cli/2.15.0","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:agent-run-1",
                "arn":"arn:aws:sts::123456789012:assumed-role/builder/agent-run-1","accountId":"123456789012",
                "accessKeyId":"ASIAEXAMPLE"}}"#,
        )
        .unwrap();
        let actor = Actor::from_record(&record);
        for text in [&actor.arn, &actor.account, &actor.principal_id, &actor.session_name, &actor.access_key_id] {
            assert!(matches!(text, Some(Cow::Borrowed(_))), "{text:?} was copied");
        }
        assert!(matches!(actor.kind, Cow::Borrowed("AssumedRole")));
        assert_eq!(actor.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/builder"));
        assert_eq!(actor.role_name.as_deref(), Some("builder"));
        assert_eq!(actor.session_name.as_deref(), Some("agent-run-1"));
        assert_eq!(actor.source_ip.as_deref(), Some("203.0.113.7"));
        let kept = actor.clone().into_owned();
        assert!(matches!(kept.arn, Some(Cow::Owned(_))));
        assert_eq!(kept, actor);
        assert_eq!(serde_json::to_value(&kept).unwrap(), serde_json::to_value(&actor).unwrap());
        let read_back: Actor<'static> = serde_json::from_value(serde_json::to_value(&actor).unwrap()).unwrap();
        assert_eq!(read_back, actor);
    }

    #[test]
    fn missing_identity_is_unknown() {
        let record = parse_record(r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#).unwrap();
        let a = Actor::from_record(&record);
        assert_eq!(a.kind, "Unknown");
        assert_eq!(a.display_name(), "Unknown");
    }

    #[test]
    fn mcp_marker_and_app_ids_are_signals() {
        let record = parse_record(
            r#"{"eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","userAgent":"aws-sdk-rust/1.3 app/triage-bot",
                "additionalEventData":{"CalledViaAWSMCP":"aws-mcp.amazonaws.com"},
                "userIdentity":{"type":"IAMUser","userName":"dev","accessKeyId":"AKIAEXAMPLE"}}"#,
        )
        .unwrap();
        let a = Actor::from_record(&record);
        assert_eq!(a.via_mcp.as_deref(), Some("aws-mcp.amazonaws.com"));
        let m = AgentMatchers::default().recognise(&a, None, None).unwrap();
        assert_eq!((m.signal.as_str(), m.value.as_str()), ("mcp", "aws-mcp.amazonaws.com"));
        let mut no_mcp = AgentMatchers { mcp: false, ..AgentMatchers::default() };
        assert_eq!(no_mcp.recognise(&a, None, None), None, "app ids are not a default signal");
        no_mcp.app_id = vec!["triage-*".to_owned()];
        assert_eq!(no_mcp.recognise(&a, None, None).unwrap().signal, "app_id");
    }

    #[test]
    fn a_role_tag_is_the_last_signal_and_its_agency_is_known_through_a_chain() {
        let a = actor(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/payments/worker-1",
                "accountId":"123456789012","accessKeyId":"ASIAPAY"}"#,
        );
        let matchers = AgentMatchers::default();
        let tags = [("trailguard:agent".to_owned(), "true".to_owned())];
        let by_tag = matchers.recognise(&a, Some(&tags), None).unwrap();
        assert_eq!(by_tag.signal, "role_tag");
        assert!(by_tag.rests_on_role_tag());
        let named = actor(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/payments/agent-run-1",
                "accountId":"123456789012"}"#,
        );
        let by_name = matchers.recognise(&named, Some(&tags), None).unwrap();
        assert_eq!(by_name.signal, "session_name", "a tag is consulted only when nothing else matched");
        assert!(!by_name.rests_on_role_tag());
        let child = |caller: &AgentMatch| {
            let session = Session {
                access_key_id: "ASIACHILD".into(),
                issued_by: "AssumeRole".into(),
                principal_id: None,
                arn: None,
                account: None,
                role_arn: None,
                tags: Vec::new(),
                transitive_keys: Vec::new(),
                source_identity: None,
                parent: Some("ASIAPAY".into()),
                expires: 1,
                issued: 0,
                agent: None,
            };
            matchers.recognise_session(&session, Some(caller)).unwrap()
        };
        let grandchild = child(&child(&by_tag));
        assert_eq!(grandchild.signal, "parent_session");
        assert!(grandchild.rests_on_role_tag(), "{grandchild:?}");
        assert!(!child(&by_name).rests_on_role_tag());
    }
}
