//! Policy statements compared as IAM means them, not as JSON text.
//!
//! IAM stores documents in its own canonical form: an account id principal comes back as
//! `arn:aws:iam::<id>:root`, a one-element list as a plain string, `"Principal": "*"` is `{"AWS": "*"}`, and a
//! principal whose role or user was deleted is rewritten to that entity's unique id (`AROA…`, `AIDA…`).
//! Removing "the offending statement" must find it in whichever form IAM now returns, or a step reports
//! "already done" while the open trust remains.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// SHA-256 (hex) of a JSON document in canonical form (keys sorted, no white space), so that the same
/// document hashes the same however it was written, URL-encoded or re-serialised on the way.
pub fn sha256(document: &Value) -> String {
    use sha2::{Digest, Sha256};
    // serde_json's map keeps keys sorted (no `preserve_order` feature), so `to_string` is canonical.
    Sha256::digest(document.to_string().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A statement reduced to what IAM evaluates: effect, actions, principals and conditions as sets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Normal {
    effect: String,
    actions: BTreeMap<String, BTreeSet<String>>,
    principals: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    resources: BTreeMap<String, BTreeSet<String>>,
    conditions: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// Whether `current` (as IAM returns it now) is the statement `offending` (as the event wrote it).
pub fn same_statement(offending: &Value, current: &Value) -> bool {
    let (Some(a), Some(b)) = (normalise(offending), normalise(current)) else { return offending == current };
    if a.effect != b.effect || a.actions != b.actions || a.resources != b.resources || a.conditions != b.conditions {
        return false;
    }
    if a.principals.keys().ne(b.principals.keys()) {
        return false;
    }
    a.principals.iter().all(|(element, by_type)| {
        let Some(other) = b.principals.get(element) else { return false };
        by_type.keys().eq(other.keys())
            && by_type.iter().all(|(kind, written)| other.get(kind).is_some_and(|now| same_principals(written, now)))
    })
}

/// Principals of one type: equal, or equal but for entities IAM rewrote to unique ids after they were deleted.
fn same_principals(written: &BTreeSet<String>, now: &BTreeSet<String>) -> bool {
    if written == now {
        return true;
    }
    let unmatched_written: Vec<&String> = written.difference(now).collect();
    let unmatched_now: Vec<&String> = now.difference(written).collect();
    unmatched_written.len() == unmatched_now.len()
        && unmatched_now.iter().all(|id| is_unique_id(id))
        && unmatched_written.iter().all(|arn| arn.contains(":role/") || arn.contains(":user/"))
}

/// IAM's unique ids: `AROA` (role), `AIDA` (user) and a dozen or more upper-case letters and digits.
fn is_unique_id(text: &str) -> bool {
    (text.starts_with("AROA") || text.starts_with("AIDA"))
        && text.len() >= 16
        && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn normalise(statement: &Value) -> Option<Normal> {
    let map = statement.as_object()?;
    let field = |name: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let effect = field("Effect")?.as_str()?.to_owned();
    let mut actions = BTreeMap::new();
    let mut resources = BTreeMap::new();
    for (name, lower) in [("Action", true), ("NotAction", true)] {
        if let Some(v) = field(name) {
            actions.insert(name.to_owned(), strings(v, lower));
        }
    }
    for name in ["Resource", "NotResource"] {
        if let Some(v) = field(name) {
            resources.insert(name.to_owned(), strings(v, false));
        }
    }
    let mut principals = BTreeMap::new();
    for name in ["Principal", "NotPrincipal"] {
        if let Some(v) = field(name) {
            principals.insert(name.to_owned(), principal(v));
        }
    }
    let mut conditions = BTreeMap::new();
    if let Some(Value::Object(ops)) = field("Condition") {
        for (op, keys) in ops {
            let Value::Object(keys) = keys else { continue };
            let entry: &mut BTreeMap<String, BTreeSet<String>> = conditions.entry(op.to_ascii_lowercase()).or_default();
            for (key, values) in keys {
                // Condition keys are case-insensitive; their values are compared as written.
                entry.insert(key.to_ascii_lowercase(), strings(values, false));
            }
        }
    }
    Some(Normal { effect, actions, principals, resources, conditions })
}

fn principal(value: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    match value {
        Value::String(s) if s == "*" => {
            out.insert("AWS".to_owned(), BTreeSet::from(["*".to_owned()]));
        }
        Value::Object(types) => {
            for (kind, values) in types {
                let mut set = strings(values, false);
                if kind == "AWS" {
                    set = set.into_iter().map(|v| account_root(&v)).collect();
                }
                out.insert(kind.clone(), set);
            }
        }
        other => {
            out.insert(String::new(), strings(other, false));
        }
    }
    out
}

/// An account id as IAM stores it: `arn:aws:iam::<id>:root`.
fn account_root(value: &str) -> String {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        format!("arn:aws:iam::{value}:root")
    } else {
        value.to_owned()
    }
}

fn strings(value: &Value, lower: bool) -> BTreeSet<String> {
    let one = |v: &Value| {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if lower {
            text.to_ascii_lowercase()
        } else {
            text
        }
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        single => BTreeSet::from([one(single)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iam_rewritten_forms_are_the_same_statement() {
        let written = json!({"Effect": "Allow", "Principal": {"AWS": ["999988887777"]}, "Action": ["sts:AssumeRole"]});
        let stored = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole"});
        assert!(same_statement(&written, &stored));
        let star = json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"});
        let aws_star = json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "STS:AssumeRole"});
        assert!(same_statement(&star, &aws_star));
        let role = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:role/x"}, "Action": "sts:AssumeRole"});
        let deleted =
            json!({"Effect": "Allow", "Principal": {"AWS": "AROA3XFRBF535PLBIFPI4"}, "Action": "sts:AssumeRole"});
        assert!(same_statement(&role, &deleted));
    }

    #[test]
    fn different_statements_differ() {
        let a = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole"});
        let other_account = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"});
        let conditioned = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "x"}}});
        let account_not_unique_id =
            json!({"Effect": "Allow", "Principal": {"AWS": "AROA3XFRBF535PLBIFPI4"}, "Action": "sts:AssumeRole"});
        assert!(!same_statement(&a, &other_account));
        assert!(!same_statement(&a, &conditioned));
        assert!(!same_statement(&a, &account_not_unique_id), "an account principal is never rewritten to a role id");
    }
}
