//! Who made a call: the actor, and whether it is an AI agent.
//!
//! CloudTrail's `userIdentity` is flattened into an [`Actor`] that every finding carries. Whether the actor is
//! an agent is decided by [`AgentMatchers`] from what CloudTrail records, strongest signal first: the source
//! identity (set at the first `AssumeRole`, carried through role chaining, unchangeable by the session), then
//! the role's tags (looked up), the role name or ARN, the session name, the IAM user name.

use serde::{Deserialize, Serialize};

use super::record::CloudTrailRecord;
use crate::wildcard;

/// The principal behind a call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// `userIdentity.type` as written: `Root`, `IAMUser`, `AssumedRole`, `AWSService`, ... or `Unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The principal's ARN (for a session, the `assumed-role` ARN).
    pub arn: Option<String>,
    /// The principal's account.
    pub account: Option<String>,
    /// `userIdentity.principalId`: for a session `<role id>:<session name>`, the value of `aws:userid`.
    pub principal_id: Option<String>,
    /// For a session, the role that issued it.
    pub role_arn: Option<String>,
    /// The issuing role's name (the last part of its ARN, without path).
    pub role_name: Option<String>,
    /// The role session name (the part after the last `/` of an assumed-role ARN).
    pub session_name: Option<String>,
    /// `sessionContext.sourceIdentity`.
    pub source_identity: Option<String>,
    /// The IAM user's name, for users and root sign-ins.
    pub user_name: Option<String>,
    /// The access key that signed the call.
    pub access_key_id: Option<String>,
    /// When the session's credentials were issued.
    pub session_issued: Option<String>,
    /// Whether the session or sign-in used MFA.
    pub mfa: bool,
    /// Whether AWS itself acted (`AWSService` identity or an AWS service event).
    pub aws_service: bool,
    /// The AWS service that called on the principal's behalf.
    pub invoked_by: Option<String>,
    /// The caller's address.
    pub source_ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// Why the actor is taken for an AI agent, when it is.
    pub agent: Option<AgentMatch>,
}

/// Why an actor was recognised as an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMatch {
    /// What was matched: `source_identity`, `role_tag`, `role`, `session_name` or `user_name`.
    pub signal: String,
    /// The configured pattern that matched.
    pub pattern: String,
    /// The value it matched.
    pub value: String,
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
        }
    }
}

impl AgentMatchers {
    /// Whether matching needs the role's tags (a look-up): there are tag patterns and the actor is a session
    /// not already recognised by the free signals.
    pub fn needs_role_tags(&self, actor: &Actor) -> bool {
        !self.role_tags.is_empty() && actor.role_arn.is_some() && actor.agent.is_none()
    }

    /// Decides whether the actor is an agent; `role_tags` are the issuing role's tags, when known.
    pub fn recognise(&self, actor: &Actor, role_tags: Option<&[(String, String)]>) -> Option<AgentMatch> {
        let hit = |signal: &str, patterns: &[String], value: Option<&str>| {
            let value = value?;
            let pattern = patterns.iter().find(|p| wildcard::matches(p, value, true))?;
            Some(AgentMatch { signal: signal.to_owned(), pattern: pattern.clone(), value: value.to_owned() })
        };
        hit("source_identity", &self.source_identity, actor.source_identity.as_deref())
            .or_else(|| self.tag_match(role_tags?))
            .or_else(|| hit("role", &self.role, actor.role_name.as_deref()))
            .or_else(|| hit("role", &self.role, actor.role_arn.as_deref()))
            .or_else(|| hit("session_name", &self.session_name, actor.session_name.as_deref()))
            .or_else(|| {
                hit("user_name", &self.user_name, actor.user_name.as_deref().filter(|_| actor.kind == "IAMUser"))
            })
    }

    fn tag_match(&self, tags: &[(String, String)]) -> Option<AgentMatch> {
        self.role_tags.iter().find_map(|spec| {
            let (key, pattern) = spec.split_once('=').unwrap_or((spec.as_str(), "*"));
            tags.iter().find(|(k, v)| k == key && wildcard::matches(pattern, v, true)).map(|(k, v)| AgentMatch {
                signal: "role_tag".to_owned(),
                pattern: spec.clone(),
                value: format!("{k}={v}"),
            })
        })
    }
}

impl Actor {
    /// Reads the actor from a record. Agent recognition is separate ([`AgentMatchers::recognise`]), since it may
    /// need a look-up.
    pub fn from_record(record: &CloudTrailRecord) -> Actor {
        let id = record.identity();
        let session = id.session_context.as_ref();
        let issuer = session.and_then(|s| s.session_issuer.as_ref());
        let kind = id.kind.clone().unwrap_or_else(|| "Unknown".to_owned());
        let role_arn = issuer
            .filter(|i| i.kind.as_deref() == Some("Role"))
            .and_then(|i| i.arn.clone())
            .or_else(|| id.arn.as_deref().and_then(role_arn_from_session_arn));
        let session_name = match kind.as_str() {
            "AssumedRole" => id.arn.as_deref().and_then(|a| a.rsplit_once('/')).map(|(_, s)| s.to_owned()),
            _ => None,
        };
        let mfa_signin = record.event_name == "ConsoleLogin"
            && record.additional_data().and_then(|d| d.get("MFAUsed").and_then(|v| v.as_str().map(str::to_owned)))
                == Some("Yes".to_owned());
        Actor {
            arn: id.arn.clone(),
            account: id.account_id.clone(),
            principal_id: id.principal_id.clone(),
            role_name: role_arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_owned),
            role_arn,
            session_name,
            source_identity: session.and_then(|s| s.source_identity.clone()),
            user_name: id.user_name.clone(),
            access_key_id: id.access_key_id.clone(),
            session_issued: session.and_then(|s| s.attributes.as_ref()).and_then(|a| a.creation_date.clone()),
            mfa: mfa_signin
                || session.and_then(|s| s.attributes.as_ref()).and_then(|a| a.mfa_authenticated).unwrap_or(false),
            aws_service: kind == "AWSService" || record.is_aws_service_event(),
            invoked_by: id.invoked_by.clone(),
            source_ip: record.source_ip_address.clone(),
            user_agent: record.user_agent.clone(),
            agent: None,
            kind,
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
            _ => self.arn.clone().or_else(|| self.invoked_by.clone()).unwrap_or_else(|| self.kind.clone()),
        }
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

    fn actor(identity: &str) -> Actor {
        let record =
            format!(r#"{{"eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{identity}}}"#);
        Actor::from_record(&parse_record(&record).unwrap())
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
        let m = AgentMatchers::default().recognise(&a, None).unwrap();
        assert_eq!((m.signal.as_str(), m.pattern.as_str()), ("source_identity", "claude*"));
    }

    #[test]
    fn aws_own_agents_are_not_ai_agents() {
        let a = actor(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/CloudWatchAgentServerRole/i-0abc",
                "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/CloudWatchAgentServerRole"}}}"#,
        );
        assert_eq!(AgentMatchers::default().recognise(&a, None), None);
        let tags = vec![("trailguard:agent".to_owned(), "True".to_owned())];
        assert_eq!(AgentMatchers::default().recognise(&a, Some(&tags)).unwrap().signal, "role_tag");
    }

    #[test]
    fn missing_identity_is_unknown() {
        let record = parse_record(r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#).unwrap();
        let a = Actor::from_record(&record);
        assert_eq!(a.kind, "Unknown");
        assert_eq!(a.display_name(), "Unknown");
    }
}
