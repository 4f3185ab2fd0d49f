//! The revocation policy: one inline policy on a role that denies chosen sessions.
//!
//! IAM cannot end a session; it can deny it. trailguard writes, per role, one inline policy (named in the
//! configuration, `trailguard-revocations` by default) whose statements each deny one session
//! (`aws:userid` = `<role id>:<session name>`), every session of one source identity, or every session, and
//! only for credentials issued before the revocation (`aws:TokenIssueTime`), so a fresh, legitimate session
//! works. Entries older than the role's maximum session duration are pruned, since the credentials they deny
//! have expired; if the policy still exceeds the room the role's other inline policies leave (IAM counts all
//! of a role's inline policies together), the entries collapse into one "every session issued before now"
//! statement, which denies a superset and so never un-revokes anything.
//!
//! Credentials that rotate under the same session name (EC2 instance profiles, ECS tasks, Lambda functions)
//! come back with a new issue time and the same `aws:userid`, so an issue-time bound would lift itself at the
//! next rotation. Those sessions are quarantined instead: denied outright until an explicit expiry
//! (`aws:CurrentTime`), and such an entry is pruned by that expiry alone.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html>

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// IAM's limit on all inline policies of a role together, in characters without white space.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>
pub const ROLE_INLINE_BUDGET: usize = 10_240;
/// IAM's limit on all inline policies of a user together.
pub const USER_INLINE_BUDGET: usize = 2_048;
/// IAM's limit on one managed policy document.
pub const MANAGED_POLICY_BUDGET: usize = 6_144;

/// The prefix of every statement id trailguard writes; other statements in the policy are left alone.
pub const SID_PREFIX: &str = "TrailguardRevoke";

/// Whom to deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One session: `aws:userid` = `<role id>:<session name>`.
    Session(String),
    /// Every session carrying this source identity.
    SourceIdentity(String),
    /// Every session of the role.
    AllSessions,
    /// One session whose credentials rotate under the same `aws:userid`: denied whatever its issue time, until
    /// the given time.
    Quarantine {
        /// `<role id>:<session name>`.
        user_id: String,
        /// When the quarantine ends.
        until: OffsetDateTime,
    },
}

/// The merged policy and whether it differs from what was there.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The policy document to write.
    pub document: Value,
    /// Whether writing it changes anything (false: the revocation was already in force).
    pub changed: bool,
    /// Entries pruned because their credentials have expired.
    pub pruned: usize,
    /// Whether the entries had to collapse into one deny of all older sessions to fit the size limit.
    pub collapsed: bool,
    /// Whether the document fits the room it was given (false: not even the collapsed form fits).
    pub fits: bool,
}

impl Revocation {
    fn sid(&self) -> String {
        let (kind, value) = match self {
            Revocation::Session(id) => ("Session", id.as_str()),
            Revocation::SourceIdentity(id) => ("Source", id.as_str()),
            Revocation::Quarantine { user_id, .. } => ("Quarantine", user_id.as_str()),
            Revocation::AllSessions => return format!("{SID_PREFIX}AllOlder"),
        };
        let digest = Sha256::digest(value.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{SID_PREFIX}{kind}{hex}")
    }

    /// The deny statement for credentials issued before `before`.
    pub fn statement(&self, before: OffsetDateTime) -> Value {
        let time = rfc3339(before);
        let date = json!({"aws:TokenIssueTime": time});
        let condition = match self {
            Revocation::Session(id) => json!({"StringEquals": {"aws:userid": id}, "DateLessThan": date}),
            Revocation::SourceIdentity(id) => json!({"StringEquals": {"aws:SourceIdentity": id}, "DateLessThan": date}),
            Revocation::AllSessions => json!({"DateLessThan": date}),
            Revocation::Quarantine { user_id, until } => json!({"StringEquals": {"aws:userid": user_id},
                "DateLessThan": {"aws:CurrentTime": rfc3339(*until)}}),
        };
        json!({"Sid": self.sid(), "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition})
    }
}

/// Formats a time as IAM's date condition values expect (`2026-11-27T10:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// The `aws:TokenIssueTime` bound of one of trailguard's statements.
fn bound(statement: &Value) -> Option<OffsetDateTime> {
    let text = statement.pointer("/Condition/DateLessThan/aws:TokenIssueTime")?.as_str()?;
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The `aws:CurrentTime` expiry of one of trailguard's quarantine statements.
fn expiry(statement: &Value) -> Option<OffsetDateTime> {
    let text = statement.pointer("/Condition/DateLessThan/aws:CurrentTime")?.as_str()?;
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Adds a revocation to the role's existing revocation policy (if any).
///
/// `issued_before_event` is the latest time the offending credentials can have been issued (the event's time):
/// an existing entry for the same session bounded at or after it already denies them, so nothing changes.
/// `now` bounds the new entry; `max_session` is the role's maximum session duration; `room` is how many
/// characters the policy may take (IAM's aggregate budget less the role's other inline policies).
pub fn merge(
    existing: Option<&Value>,
    revocation: &Revocation,
    issued_before_event: Option<OffsetDateTime>,
    now: OffsetDateTime,
    max_session: Duration,
    room: usize,
) -> Merged {
    let mut statements: Vec<Value> = match existing.and_then(|d| d.get("Statement")) {
        Some(Value::Array(items)) => items.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => Vec::new(),
    };
    let ours = |s: &Value| s.get("Sid").and_then(Value::as_str).is_some_and(|sid| sid.starts_with(SID_PREFIX));
    let before = statements.len();
    // An issue-time entry is spent once every credential it denies has expired; a quarantine at its own expiry.
    statements.retain(|s| {
        !ours(s)
            || match expiry(s) {
                Some(until) => until > now,
                None => bound(s).is_none_or(|b| b + max_session > now),
            }
    });
    let pruned = before - statements.len();

    let sid = revocation.sid();
    let covering = |s: &Value| {
        let sid_of = s.get("Sid").and_then(Value::as_str);
        match revocation {
            Revocation::Quarantine { until, .. } => {
                sid_of == Some(sid.as_str()) && expiry(s).is_some_and(|e| e >= *until)
            }
            _ => {
                let sid_matches =
                    sid_of == Some(sid.as_str()) || sid_of == Some(Revocation::AllSessions.sid().as_str());
                sid_matches && bound(s).zip(issued_before_event).is_some_and(|(b, event)| b >= event)
            }
        }
    };
    if statements.iter().any(covering) {
        let doc = document(statements);
        let fits = compact_len(&doc) <= room;
        return Merged { document: doc, changed: pruned > 0, pruned, collapsed: false, fits };
    }
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid.as_str()));
    statements.push(revocation.statement(now));
    let mut doc = document(statements.clone());
    let mut collapsed = false;
    if compact_len(&doc) > room {
        // Issue-time entries collapse into one that denies a superset; quarantines are kept, since rotated
        // credentials are issued after any bound.
        statements.retain(|s| !ours(s) || expiry(s).is_some());
        if !matches!(revocation, Revocation::Quarantine { .. }) {
            statements.push(Revocation::AllSessions.statement(now));
        }
        doc = document(statements);
        collapsed = true;
    }
    let fits = compact_len(&doc) <= room;
    Merged { document: doc, changed: true, pruned, collapsed, fits }
}

fn document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Size as IAM counts it: characters without white space outside strings (compact JSON is that).
pub fn compact_len(doc: &Value) -> usize {
    doc.to_string().chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const HOUR: Duration = Duration::hours(1);

    #[test]
    fn first_revocation_writes_one_bounded_deny() {
        let now = datetime!(2026-11-27 10:00:00 UTC);
        let m = merge(
            None,
            &Revocation::Session("AROAEXAMPLE:agent-1".into()),
            Some(now - HOUR),
            now,
            HOUR,
            ROLE_INLINE_BUDGET,
        );
        assert!(m.changed);
        let s = &m.document["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Condition"]["StringEquals"]["aws:userid"], "AROAEXAMPLE:agent-1");
        assert_eq!(s["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2026-11-27T10:00:00Z");
    }

    #[test]
    fn same_revocation_twice_changes_nothing() {
        let now = datetime!(2026-11-27 10:00:00 UTC);
        let event = now - Duration::minutes(1);
        let r = Revocation::Session("AROAEXAMPLE:agent-1".into());
        let first = merge(None, &r, Some(event), now, HOUR, ROLE_INLINE_BUDGET);
        let second =
            merge(Some(&first.document), &r, Some(event), now + Duration::seconds(30), HOUR, ROLE_INLINE_BUDGET);
        assert!(!second.changed);
        assert_eq!(second.document, first.document);
    }

    #[test]
    fn expired_entries_are_pruned_and_others_kept() {
        let t0 = datetime!(2026-11-27 00:00:00 UTC);
        let old = merge(None, &Revocation::Session("AROA:old".into()), Some(t0), t0, HOUR, ROLE_INLINE_BUDGET);
        let mut doc = old.document.clone();
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Sid": "SomeoneElses", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}));
        let later = t0 + Duration::hours(3);
        let m =
            merge(Some(&doc), &Revocation::Session("AROA:new".into()), Some(later), later, HOUR, ROLE_INLINE_BUDGET);
        assert_eq!(m.pruned, 1);
        let sids: Vec<&str> =
            m.document["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        assert_eq!(sids.len(), 2);
        assert!(sids.contains(&"SomeoneElses"));
    }

    #[test]
    fn too_many_entries_collapse_to_all_older_sessions() {
        let now = datetime!(2026-11-27 10:00:00 UTC);
        let mut doc: Option<Value> = None;
        let mut collapsed = false;
        for i in 0..100 {
            let m = merge(
                doc.as_ref(),
                &Revocation::Session(format!("AROAEXAMPLE:session-{i}")),
                Some(now),
                now,
                Duration::hours(12),
                6_000,
            );
            collapsed |= m.collapsed;
            assert!(m.fits && compact_len(&m.document) <= 6_000);
            doc = Some(m.document);
        }
        assert!(collapsed);
        let statements = doc.unwrap()["Statement"].as_array().unwrap().clone();
        assert!(statements.iter().any(|s| s["Sid"] == "TrailguardRevokeAllOlder"));
    }

    #[test]
    fn quarantine_has_no_issue_time_bound_and_is_pruned_at_its_own_expiry() {
        let now = datetime!(2026-11-27 10:00:00 UTC);
        let q = Revocation::Quarantine { user_id: "AROAEXAMPLE:i-0abc".into(), until: now + Duration::hours(24) };
        let m = merge(None, &q, Some(now), now, HOUR, ROLE_INLINE_BUDGET);
        let s = &m.document["Statement"][0];
        assert!(s["Condition"]["DateLessThan"].get("aws:TokenIssueTime").is_none());
        assert_eq!(s["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-28T10:00:00Z");
        // Twelve hours later (past the role's session duration) it still stands; a day and a minute later it goes.
        let later = merge(
            Some(&m.document),
            &Revocation::Session("AROA:x".into()),
            None,
            now + Duration::hours(12),
            HOUR,
            ROLE_INLINE_BUDGET,
        );
        assert_eq!(later.pruned, 0);
        let gone = merge(
            Some(&m.document),
            &Revocation::Session("AROA:x".into()),
            None,
            now + Duration::hours(24) + Duration::minutes(1),
            HOUR,
            ROLE_INLINE_BUDGET,
        );
        assert_eq!(gone.pruned, 1);
    }

    #[test]
    fn a_role_whose_other_policies_leave_no_room_is_told() {
        let now = datetime!(2026-11-27 10:00:00 UTC);
        let m = merge(None, &Revocation::Session("AROAEXAMPLE:agent-1".into()), Some(now), now, HOUR, 140);
        assert!(m.collapsed && !m.fits, "{}", compact_len(&m.document));
        let roomy = merge(None, &Revocation::Session("AROAEXAMPLE:agent-1".into()), Some(now), now, HOUR, 400);
        assert!(roomy.fits && !roomy.collapsed);
    }
}
