//! IAM policies: the grammar, the action catalogue, and what a document grants.
//!
//! **Invariant:** everything here is pure; documents come in as text or JSON, answers go out as data.

pub mod analysis;
pub mod canonical;
pub mod catalogue;
pub mod document;
pub mod error;
pub mod eval;
pub mod managed;
pub mod trust;

pub use analysis::{analyze, Grants};
pub use document::PolicyDocument;
pub use error::PolicyError;
pub use trust::{analyze_trust, Known, TrustIssue};
