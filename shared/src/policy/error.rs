//! Why a policy document could not be read.

use thiserror::Error;

/// A policy document that could not be parsed. The analyzer never sees such a document; callers report it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The text is not JSON, even after URL-decoding.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("policy document is not a JSON object")]
    NotAnObject,
    /// There is no `Statement` element.
    #[error("policy document has no `Statement`")]
    MissingStatement,
    /// A required element of a statement is missing.
    #[error("statement {statement} has no `{field}`")]
    Missing {
        /// Position of the statement.
        statement: usize,
        /// The element.
        field: &'static str,
    },
    /// An element and its `Not` form are both present.
    #[error("statement {statement} has both `{field}` and its `Not` form")]
    Both {
        /// Position of the statement.
        statement: usize,
        /// The element.
        field: &'static str,
    },
    /// `Effect` is neither `Allow` nor `Deny`.
    #[error("statement {statement} has unknown `Effect` `{effect}`")]
    UnknownEffect {
        /// Position of the statement.
        statement: usize,
        /// What was written.
        effect: String,
    },
    /// An element has a JSON type IAM does not accept there.
    #[error("{}`{field}` has the wrong type", statement.map(|s| format!("statement {s}: ")).unwrap_or_default())]
    WrongType {
        /// Position of the statement, when the problem is inside one.
        statement: Option<usize>,
        /// The element.
        field: &'static str,
    },
}
