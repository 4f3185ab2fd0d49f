//! trailguard's library: everything the Lambdas and the command line share.
//!
//! A CloudTrail record goes in ([`event`]); the [`engine`] picks the [`rules`] it triggers, reads the policy
//! change it makes ([`change`]), has the [`policy`] analyzer say what the policy grants, and turns the rules'
//! verdicts into [`finding`]s. **Invariant:** nothing here calls AWS, reads the environment or the clock; look-ups
//! are declared by [`engine::Engine::needs`] and answered by the caller.
#![warn(missing_docs)]

pub mod authenticity;
#[cfg(feature = "aws")]
pub mod aws;
pub mod backtest;
pub mod behaviour;
pub mod canary;
pub mod change;
pub mod config;
pub mod engine;
pub mod event;
pub mod finding;
pub mod iam;
pub mod patterns;
pub mod policy;
pub mod prefilter;
pub mod regions;
pub mod remediation;
pub mod rules;
pub mod session;
pub mod synth;
pub mod wildcard;

pub use config::Config;
pub use engine::{Engine, Evaluation, Need, Resolved};
pub use finding::{Finding, Severity};
