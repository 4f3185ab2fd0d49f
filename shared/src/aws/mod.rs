//! Everything that talks to AWS: IAM look-ups and actions, delivery, and the two Lambda pipelines.
//!
//! **Invariant:** this module (feature `aws`) and the binaries are the only code that does I/O; it calls into
//! the pure library and never decides anything the library could decide.

pub mod accounts;
pub mod delivery;
pub mod detect;
pub mod error;
pub mod iam;
pub mod lambda;
pub mod mac;
pub mod remediate;
pub mod ssoadmin;
pub mod state;

pub use accounts::Accounts;
pub use delivery::Delivery;
pub use detect::{DetectError, Detector};
pub use iam::SdkIam;
pub use mac::MacKey;
pub use remediate::{RemediateError, Remediator};
pub use ssoadmin::SdkSsoAdmin;
pub use state::StateTable;
