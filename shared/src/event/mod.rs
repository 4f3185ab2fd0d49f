//! CloudTrail records, the wrappings they arrive in, and the actor behind each.

pub mod actor;
pub mod error;
pub mod input;
pub mod record;

pub use actor::{Actor, AgentMatch, AgentMatchers};
pub use error::{InputError, RecordError};
pub use input::{
    inflate, parse_record, read_event, read_lines, read_records, read_records_where, read_records_with, Reading,
    RecordResult,
};
pub use record::CloudTrailRecord;
