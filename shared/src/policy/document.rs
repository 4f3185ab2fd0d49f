//! The IAM policy grammar: documents, statements, principals and conditions.
//!
//! Parsing is tolerant where IAM is (a single statement instead of a list, a string instead of a list, any key
//! order, unknown top-level keys) and strict where the meaning would otherwise be guessed: an unknown `Effect`,
//! a statement with neither `Action` nor `NotAction`, or a value of the wrong type is an error that names the
//! statement and the field. Grammar: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html>.

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::error::PolicyError;

/// A parsed policy document: identity, resource or trust policy alike.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement denies; an explicit deny always wins in IAM evaluation.
    Deny,
}

/// Which actions a statement applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Actions {
    /// `Action`: the listed patterns.
    Only(Vec<String>),
    /// `NotAction`: every action except the listed patterns.
    AllExcept(Vec<String>),
}

/// Which resources a statement applies to. A trust policy has neither element.
#[derive(Debug, Clone, PartialEq)]
pub enum Resources {
    /// `Resource`: the listed ARN patterns.
    Only(Vec<String>),
    /// `NotResource`: every resource except the listed patterns.
    AllExcept(Vec<String>),
    /// Neither element (trust and other resource-based policies).
    Unspecified,
}

/// The principals of a resource or trust policy statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Principals {
    /// `"Principal": "*"` or `{"AWS": "*"}`: anyone, in any account, signed or not.
    pub anyone: bool,
    /// Values under `AWS`: account ids, account root ARNs, role or user ARNs.
    pub aws: Vec<String>,
    /// Values under `Service`, such as `lambda.amazonaws.com`.
    pub service: Vec<String>,
    /// Values under `Federated`: SAML or OIDC provider ARNs, or web identity providers.
    pub federated: Vec<String>,
    /// Values under `CanonicalUser`.
    pub canonical_user: Vec<String>,
}

/// Whether a statement names its principals with `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalSpec {
    /// `Principal`.
    Only(Principals),
    /// `NotPrincipal`: everyone except these.
    AllExcept(Principals),
}

/// One condition: `"Operator": {"key": value-or-values}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, for example `StringEquals` or `ForAnyValue:StringLike`.
    pub operator: String,
    /// The condition key as written, for example `iam:PassedToService`.
    pub key: String,
    /// The values, as strings (booleans and numbers are written out).
    pub values: Vec<String>,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Position in the document, counting from 0.
    pub index: usize,
    /// `Sid`, when present.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Action` or `NotAction`.
    pub actions: Actions,
    /// `Resource`, `NotResource` or neither.
    pub resources: Resources,
    /// `Principal` or `NotPrincipal`, when present.
    pub principals: Option<PrincipalSpec>,
    /// Every condition of the `Condition` block.
    pub conditions: Vec<Condition>,
    /// The statement as written, for evidence.
    pub raw: Value,
}

impl PolicyDocument {
    /// Parses a policy document given as CloudTrail and IAM hand it over: JSON text, or JSON text that was
    /// URL-encoded once or more (`GetPolicyVersion` answers URL-encoded; some CloudTrail records too).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::from_value(&decode_json_text(text)?)
    }

    /// Parses a policy document that is already JSON, such as an object inside `requestParameters`.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let Value::Object(doc) = value else {
            return Err(PolicyError::NotAnObject);
        };
        let statements = match doc.get("Statement") {
            None => return Err(PolicyError::MissingStatement),
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => return Err(PolicyError::WrongType { statement: None, field: "Statement" }),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, value)| parse_statement(index, value))
            .collect::<Result<_, _>>()?;
        Ok(PolicyDocument { statements })
    }

    /// The statements that allow.
    pub fn allows(&self) -> impl Iterator<Item = &Statement> {
        self.statements.iter().filter(|s| s.effect == Effect::Allow)
    }

    /// The statements that deny.
    pub fn denies(&self) -> impl Iterator<Item = &Statement> {
        self.statements.iter().filter(|s| s.effect == Effect::Deny)
    }
}

/// Turns policy text into JSON, undoing URL encoding (up to three layers, for double-encoded input).
pub fn decode_json_text(text: &str) -> Result<Value, PolicyError> {
    let mut current = text.trim().to_owned();
    for _ in 0..4 {
        match serde_json::from_str::<Value>(&current) {
            Ok(value) => return Ok(value),
            Err(e) if current.starts_with(['{', '[']) => return Err(PolicyError::Json(e.to_string())),
            Err(_) => {}
        }
        if !current.contains('%') {
            break;
        }
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| PolicyError::Json("URL-encoded text is not UTF-8".into()))?
            .trim()
            .to_owned();
        if decoded == current {
            break;
        }
        current = decoded;
    }
    Err(PolicyError::Json("not a JSON object, even after URL-decoding".into()))
}

fn parse_statement(index: usize, value: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(map) = value else {
        return Err(PolicyError::WrongType { statement: Some(index), field: "Statement" });
    };
    let wrong = |field| PolicyError::WrongType { statement: Some(index), field };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(PolicyError::UnknownEffect { statement: index, effect: other.to_owned() }),
        None => return Err(PolicyError::Missing { statement: index, field: "Effect" }),
    };
    let actions = match (map.get("Action"), map.get("NotAction")) {
        (Some(v), None) => Actions::Only(strings(v).ok_or_else(|| wrong("Action"))?),
        (None, Some(v)) => Actions::AllExcept(strings(v).ok_or_else(|| wrong("NotAction"))?),
        (Some(_), Some(_)) => return Err(PolicyError::Both { statement: index, field: "Action" }),
        (None, None) => return Err(PolicyError::Missing { statement: index, field: "Action" }),
    };
    let resources = match (map.get("Resource"), map.get("NotResource")) {
        (Some(v), None) => Resources::Only(strings(v).ok_or_else(|| wrong("Resource"))?),
        (None, Some(v)) => Resources::AllExcept(strings(v).ok_or_else(|| wrong("NotResource"))?),
        (Some(_), Some(_)) => return Err(PolicyError::Both { statement: index, field: "Resource" }),
        (None, None) => Resources::Unspecified,
    };
    let principals = match (map.get("Principal"), map.get("NotPrincipal")) {
        (Some(v), None) => Some(PrincipalSpec::Only(principals(v).ok_or_else(|| wrong("Principal"))?)),
        (None, Some(v)) => Some(PrincipalSpec::AllExcept(principals(v).ok_or_else(|| wrong("NotPrincipal"))?)),
        (Some(_), Some(_)) => return Err(PolicyError::Both { statement: index, field: "Principal" }),
        (None, None) => None,
    };
    let conditions = match map.get("Condition") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(block)) => conditions(block).ok_or_else(|| wrong("Condition"))?,
        Some(_) => return Err(wrong("Condition")),
    };
    let sid = map.get("Sid").and_then(Value::as_str).map(str::to_owned);
    Ok(Statement { index, sid, effect, actions, resources, principals, conditions, raw: value.clone() })
}

/// A string or a list of strings, as IAM allows for most elements.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn principals(value: &Value) -> Option<Principals> {
    let mut out = Principals::default();
    match value {
        Value::String(s) if s == "*" => out.anyone = true,
        Value::Object(map) => {
            for (kind, v) in map {
                let list = strings(v)?;
                match kind.as_str() {
                    "AWS" => {
                        out.anyone |= list.iter().any(|p| p == "*");
                        out.aws.extend(list);
                    }
                    "Service" => out.service.extend(list),
                    "Federated" => out.federated.extend(list),
                    "CanonicalUser" => out.canonical_user.extend(list),
                    _ => return None,
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

fn conditions(block: &Map<String, Value>) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    for (operator, keys) in block {
        let Value::Object(keys) = keys else { return None };
        for (key, values) in keys {
            let values = match values {
                Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>()?,
                single => vec![scalar(single)?],
            };
            out.push(Condition { operator: operator.clone(), key: key.clone(), values });
        }
    }
    Some(out)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_statement_and_strings_are_accepted() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(doc.statements.len(), 1);
        assert_eq!(doc.statements[0].actions, Actions::Only(vec!["s3:GetObject".into()]));
    }

    #[test]
    fn url_encoded_and_double_encoded_documents_parse() {
        let plain = r#"{"Statement":[{"Effect":"Deny","NotAction":["iam:*"],"NotResource":"arn:aws:s3:::b"}]}"#;
        let once: String = percent_encoding::utf8_percent_encode(plain, percent_encoding::NON_ALPHANUMERIC).collect();
        let twice: String = percent_encoding::utf8_percent_encode(&once, percent_encoding::NON_ALPHANUMERIC).collect();
        for text in [plain, &once, &twice] {
            let doc = PolicyDocument::parse(text).unwrap();
            assert_eq!(doc.statements[0].effect, Effect::Deny);
            assert!(matches!(doc.statements[0].resources, Resources::AllExcept(_)));
        }
    }

    #[test]
    fn principals_and_conditions_are_read() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["*"],"Service":"ec2.amazonaws.com"},
               "Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":true},
               "StringEquals":{"sts:ExternalId":["a","b"]}}}]}"#,
        )
        .unwrap();
        let s = &doc.statements[0];
        let Some(PrincipalSpec::Only(p)) = &s.principals else { panic!("principal") };
        assert!(p.anyone);
        assert_eq!(p.service, vec!["ec2.amazonaws.com"]);
        assert_eq!(s.conditions.len(), 2);
        assert!(s.conditions.iter().any(|c| c.key == "aws:MultiFactorAuthPresent" && c.values == ["true"]));
    }

    #[test]
    fn errors_name_the_statement_and_field() {
        for (text, expected) in [
            (r#"[]"#, "policy document is not a JSON object"),
            (r#"{"Version":"2012-10-17"}"#, "policy document has no `Statement`"),
            (r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#, "statement 0 has unknown `Effect` `Maybe`"),
            (r#"{"Statement":[{"Effect":"Allow","Action":5}]}"#, "statement 0: `Action` has the wrong type"),
            (r#"{"Statement":[{"Effect":"Allow"}]}"#, "statement 0 has no `Action`"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*"}]}"#,
                "statement 0 has both `Action` and its `Not` form",
            ),
            ("not json", "policy document is not valid JSON: not a JSON object, even after URL-decoding"),
        ] {
            assert_eq!(PolicyDocument::parse(text).unwrap_err().to_string(), expected);
        }
    }
}
