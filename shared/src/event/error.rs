//! Why input or a record could not be read.

use std::fmt;

use thiserror::Error;

/// The input as a whole could not be read; no record in it was looked at.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The input starts like gzip but does not decompress.
    #[error("input is not valid gzip: {0}")]
    Gzip(String),
    /// The input is not UTF-8.
    #[error("input is not UTF-8 (first bad byte at offset {offset})")]
    Utf8 {
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// The input is not JSON, nor JSON lines.
    #[error("input is not JSON: {0}")]
    Json(String),
}

/// One record could not be read. Says where it was and, for a wrong type, which field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Line of a JSON-lines input, counting from 1.
    pub line: Option<usize>,
    /// Position in a log file's `Records`, counting from 0.
    pub record: Option<usize>,
    /// Whether the record was the `detail` of an EventBridge event.
    pub in_detail: bool,
    /// The field's path inside the record, such as `userIdentity.type`.
    pub field: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl RecordError {
    pub(crate) fn new(line: Option<usize>, message: String) -> Self {
        RecordError { line, record: None, in_detail: false, field: None, message }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    pub(crate) fn at_record(mut self, line: Option<usize>, record: usize) -> Self {
        self.line = line;
        self.record = Some(record);
        self
    }

    pub(crate) fn in_detail(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self.in_detail = true;
        self
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(line) = self.line {
            place.push(format!("line {line}"));
        }
        if let Some(record) = self.record {
            place.push(format!("record {record}"));
        }
        if self.in_detail {
            place.push("event `detail`".to_owned());
        }
        if !place.is_empty() {
            write!(f, "{}: ", place.join(", "))?;
        }
        match &self.field {
            Some(field) => write!(f, "`{}`: {}", field.trim_start_matches("detail."), self.message),
            None => write!(f, "{}", self.message),
        }
    }
}
