//! CloudTrail records, the wrappings they arrive in, and the actor behind each.

pub mod actor;
pub mod error;
pub mod input;
pub mod record;

pub use actor::{Actor, AgentMatch, AgentMatchers};
pub use error::{InputError, RecordError};
pub use input::{parse_record, read_event, read_records, RecordResult};
pub use record::CloudTrailRecord;
