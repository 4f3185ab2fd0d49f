//! Remediation: from a finding's suggested steps to a plan (pure), and from a plan to IAM calls.

pub mod execute;
pub mod plan;
pub mod report;
pub mod revocation;
pub mod sso;

pub use execute::{execute, Status, StepOutcome};
pub use plan::{plan, Decision, Plan};
pub use report::Report;
