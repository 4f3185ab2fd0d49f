//! Whether a policy's Deny statements deny one request: enough of IAM's evaluation to check trailguard's own
//! revocation policies (which session they deny, and which they leave alone).
//!
//! Supported condition operators: the `String*`, `Arn*`, `Date*`, `Bool` and `Null` families, with
//! `...IfExists`. A condition on a key the request does not carry is false (true for `...IfExists`), as in IAM.
//! An operator outside these makes the statement not apply, so a check built on this errs towards "not denied".
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>

use std::collections::HashMap;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::document::{Actions, Condition, Effect, PolicyDocument, Resources};
use crate::wildcard;

/// One request as IAM sees it: the action, the resource and the context keys.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN.
    pub resource: String,
    /// Context keys (any case), each with its values.
    pub keys: HashMap<String, Vec<String>>,
}

impl Request {
    /// A request for an action on a resource, with no context keys yet.
    pub fn new(action: &str, resource: &str) -> Request {
        Request { action: action.to_owned(), resource: resource.to_owned(), keys: HashMap::new() }
    }

    /// Adds a context key.
    pub fn with(mut self, key: &str, value: &str) -> Request {
        self.keys.entry(key.to_ascii_lowercase()).or_default().push(value.to_owned());
        self
    }
}

/// Whether some Deny statement of the policy applies to the request.
pub fn denies(doc: &PolicyDocument, request: &Request) -> bool {
    doc.denies().any(|s| {
        let action = match &s.actions {
            Actions::Only(p) => p.iter().any(|a| wildcard::matches(a, &request.action, true)),
            Actions::AllExcept(p) => !p.iter().any(|a| wildcard::matches(a, &request.action, true)),
        };
        let resource = match &s.resources {
            Resources::Only(p) => p.iter().any(|r| wildcard::matches(r, &request.resource, false)),
            Resources::AllExcept(p) => !p.iter().any(|r| wildcard::matches(r, &request.resource, false)),
            Resources::Unspecified => true,
        };
        s.effect == Effect::Deny && action && resource && s.conditions.iter().all(|c| holds(c, request))
    })
}

fn holds(condition: &Condition, request: &Request) -> bool {
    let operator = condition.operator.trim_start_matches("ForAnyValue:").trim_start_matches("ForAllValues:");
    let (operator, if_exists) = match operator.strip_suffix("IfExists") {
        Some(op) => (op, true),
        None => (operator, false),
    };
    let present = request.keys.get(&condition.key.to_ascii_lowercase());
    if operator == "Null" {
        let want_null = condition.values.iter().any(|v| v == "true");
        return want_null == present.is_none();
    }
    let Some(values) = present else { return if_exists };
    let any = |test: &dyn Fn(&str, &str) -> bool| {
        values.iter().any(|have| condition.values.iter().any(|want| test(have, want)))
    };
    let date = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    let compare = |have: &str, want: &str, ord: &dyn Fn(std::cmp::Ordering) -> bool| {
        date(have).zip(date(want)).is_some_and(|(h, w)| ord(h.cmp(&w)))
    };
    match operator {
        "StringEquals" | "ArnEquals" => any(&|h, w| h == w),
        "StringEqualsIgnoreCase" => any(&|h, w| h.eq_ignore_ascii_case(w)),
        "StringLike" | "ArnLike" => any(&|h, w| wildcard::matches(w, h, false)),
        "StringNotEquals" | "ArnNotEquals" => !any(&|h, w| h == w),
        "StringNotEqualsIgnoreCase" => !any(&|h, w| h.eq_ignore_ascii_case(w)),
        "StringNotLike" | "ArnNotLike" => !any(&|h, w| wildcard::matches(w, h, false)),
        "Bool" => any(&|h, w| h.eq_ignore_ascii_case(w)),
        "DateLessThan" => any(&|h, w| compare(h, w, &|o| o.is_lt())),
        "DateLessThanEquals" => any(&|h, w| compare(h, w, &|o| o.is_le())),
        "DateGreaterThan" => any(&|h, w| compare(h, w, &|o| o.is_gt())),
        "DateGreaterThanEquals" => any(&|h, w| compare(h, w, &|o| o.is_ge())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_statement_denies_only_its_session_before_the_bound() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{
                "StringEquals":{"aws:userid":"AROAEXAMPLE:agent-1"},
                "DateLessThan":{"aws:TokenIssueTime":"2026-11-27T10:00:00Z"}}}]}"#,
        )
        .unwrap();
        let request = |user: &str, issued: &str| {
            Request::new("s3:GetObject", "arn:aws:s3:::b/k").with("aws:userid", user).with("aws:TokenIssueTime", issued)
        };
        assert!(denies(&doc, &request("AROAEXAMPLE:agent-1", "2026-11-27T09:00:00Z")));
        assert!(!denies(&doc, &request("AROAEXAMPLE:agent-2", "2026-11-27T09:00:00Z")), "other session");
        assert!(!denies(&doc, &request("AROAOTHER:agent-1", "2026-11-27T09:00:00Z")), "other role");
        assert!(!denies(&doc, &request("AROAEXAMPLE:agent-1", "2026-11-27T10:00:01Z")), "fresh session");
        assert!(!denies(&doc, &Request::new("s3:GetObject", "*")), "keys missing");
    }

    #[test]
    fn if_exists_and_null() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{
                "StringNotEqualsIfExists":{"aws:SourceIdentity":"trusted"},"Null":{"aws:MultiFactorAuthAge":"true"}}}]}"#,
        )
        .unwrap();
        assert!(denies(&doc, &Request::new("iam:CreateUser", "*")));
        assert!(!denies(&doc, &Request::new("iam:CreateUser", "*").with("aws:SourceIdentity", "trusted")));
        assert!(!denies(&doc, &Request::new("iam:CreateUser", "*").with("aws:MultiFactorAuthAge", "30")));
        assert!(!denies(&doc, &Request::new("s3:GetObject", "*")));
    }
}
