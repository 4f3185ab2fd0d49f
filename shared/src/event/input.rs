//! Reading records out of whatever carries them.
//!
//! trailguard meets CloudTrail records in four wrappings: an EventBridge event (the record under `detail`), a
//! bare record, a CloudTrail log file (`{"Records": [...]}`, usually gzipped), and JSON lines of either of the
//! first two. Each record is parsed on its own, so one bad record is reported with its position and the rest
//! are still read.

use std::io::Read;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{InputError, RecordError};
use super::record::CloudTrailRecord;
use crate::prefilter::Prefilter;

/// A record, or why the record at that place could not be read.
pub type RecordResult = Result<CloudTrailRecord, RecordError>;

/// Just enough of a JSON object to tell the wrappings apart.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
    #[serde(rename = "detail-type", default)]
    detail_type: Option<&'a RawValue>,
}

/// What reading gave: the records to evaluate, and how many records the pre-filter passed over unparsed.
#[derive(Debug, Default)]
pub struct Reading {
    /// The records parsed (or why one could not be), in order.
    pub records: Vec<RecordResult>,
    /// Records the pre-filter proved no rule is triggered by; counted, not parsed.
    pub passed_over: usize,
    /// For JSON lines: the line ends read.
    pub lines: usize,
}

/// Reads every record in `bytes`, which may be gzipped. Fails only when the input as a whole is unreadable
/// (bad gzip, not JSON at all); a bad record inside good input comes back as an `Err` item.
pub fn read_records(bytes: &[u8]) -> Result<Vec<RecordResult>, InputError> {
    read_records_with(bytes, None).map(|reading| reading.records)
}

/// [`read_records`], passing over the records `prefilter` proves no rule is triggered by.
pub fn read_records_with(bytes: &[u8], prefilter: Option<&Prefilter>) -> Result<Reading, InputError> {
    read_plain(&inflate(bytes)?, prefilter)
}

/// The text of `bytes`: inflated when gzipped (by its magic number), else as is.
pub fn inflate(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, InputError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text).map_err(|e| InputError::Gzip(e.to_string()))?;
    Ok(std::borrow::Cow::Owned(text))
}

fn read_plain(bytes: &[u8], prefilter: Option<&Prefilter>) -> Result<Reading, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| InputError::Utf8 { offset: e.valid_up_to() })?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Ok(Reading::default());
    }
    match serde_json::from_str::<Probe>(trimmed) {
        Ok(probe) => {
            let mut reading = Reading::default();
            if probe.records.is_none() && !wanted(prefilter, trimmed) {
                reading.passed_over += 1;
            } else {
                unwrap_document(probe, trimmed, 0, prefilter, &mut reading);
            }
            Ok(reading)
        }
        Err(e) if e.is_syntax() && e.line() > 1 => Ok(read_lines(trimmed.as_bytes(), 1, prefilter)),
        Err(e) if e.is_data() && trimmed.starts_with('{') => {
            Ok(Reading { records: vec![Err(RecordError::new(None, e.to_string()))], ..Reading::default() })
        }
        Err(e) => Err(InputError::Json(e.to_string())),
    }
}

/// JSON lines: one record, event or log file per line; blank lines are skipped. `first_line` is the number of
/// the first line (a large file is read in blocks), for the messages.
pub fn read_lines(text: &[u8], first_line: usize, prefilter: Option<&Prefilter>) -> Reading {
    let mut reading = Reading::default();
    let mut number = first_line;
    let mut each_line = |line: &[u8], may_trigger: bool| {
        let at = number;
        number += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        // A line the pre-filter passes over holds one record at most (see `Prefilter::for_each_line`).
        if !may_trigger {
            reading.passed_over += 1;
            return;
        }
        read_line(line, at, prefilter, &mut reading);
    };
    match prefilter {
        Some(prefilter) => prefilter.for_each_line(text, each_line),
        None => {
            // memchr finds the line ends many bytes at a time; `split` would test every byte.
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
                each_line(text.get(start..end).unwrap_or_default(), true);
                start = end + 1;
            }
        }
    }
    // Lines are what split at line ends gives: one more than the line ends.
    reading.lines = number - first_line - 1;
    reading
}

fn read_line(line: &[u8], number: usize, prefilter: Option<&Prefilter>, reading: &mut Reading) {
    let Ok(line) = std::str::from_utf8(line) else {
        reading.records.push(Err(RecordError::new(Some(number), "not UTF-8 text".to_owned())));
        return;
    };
    // The block's search has judged the line's calls; service traffic is common enough to be judged before the
    // look at the wrapping too.
    if prefilter.is_some_and(|p| p.made_by_aws_service(line)) {
        reading.passed_over += 1;
        return;
    }
    // Most lines are bare records: parsed once, as the record, unless the object holds a wrapping's key (an
    // EventBridge event, which starts with its `version`, is not tried as a record). Only a record that parses
    // takes this path, so a bad line is reported as it always was.
    if line.starts_with('{') && !line.starts_with("{\"version\"") {
        let record = serde_json::from_str::<CloudTrailRecord>(line).ok().filter(|record| !record.wrapping_key);
        if let Some(record) = record {
            reading.records.push(Ok(record));
            return;
        }
    }
    match serde_json::from_str::<Probe>(line) {
        Ok(probe) => unwrap_document(probe, line, number, prefilter, reading),
        Err(e) => reading.records.push(Err(RecordError::new(Some(number), e.to_string()))),
    }
}

/// Whether the pre-filter (if any) leaves one record's text to be parsed.
fn wanted(prefilter: Option<&Prefilter>, json: &str) -> bool {
    prefilter.is_none_or(|p| p.may_trigger(json.as_bytes()) && !p.made_by_aws_service(json))
}

/// The records of one document the caller has already judged as a whole; a log file's records are judged here,
/// one by one.
fn unwrap_document(probe: Probe, whole: &str, line: usize, prefilter: Option<&Prefilter>, reading: &mut Reading) {
    let at = (line > 0).then_some(line);
    if let Some(records) = probe.records {
        for (i, raw) in records.iter().enumerate() {
            if wanted(prefilter, raw.get()) {
                reading.records.push(parse_record(raw.get()).map_err(|e| e.at_record(at, i)));
            } else {
                reading.passed_over += 1;
            }
        }
    } else if let (Some(detail), Some(_)) = (probe.detail, probe.detail_type) {
        reading.records.push(parse_record(detail.get()).map_err(|e| e.in_detail(at)));
    } else {
        reading.records.push(parse_record(whole).map_err(|e| e.at_line(at)));
    }
}

/// The records of one JSON document (a log file, an event, a bare record; inflated already) whose own text
/// `wanted` keeps, parsed; the others are not parsed. For a pass that needs a few records and no account of the
/// rest (the scan's registry pass): a record that cannot be read is left out. `None` when the text is not one
/// JSON document (JSON lines, say: [`read_records`] reads those).
pub fn read_records_where(text: &str, wanted: impl Fn(&str) -> bool) -> Option<Vec<CloudTrailRecord>> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let probe = serde_json::from_str::<Probe>(text).ok()?;
    let texts: Vec<&str> = match (probe.records, probe.detail, probe.detail_type) {
        (Some(records), _, _) => records.iter().map(|r| r.get()).collect(),
        (None, Some(detail), Some(_)) => vec![detail.get()],
        _ => vec![text],
    };
    Some(texts.into_iter().filter(|t| wanted(t)).filter_map(|t| parse_record(t).ok()).collect())
}

/// Parses one record; a wrong type names the field's path (`userIdentity.type`).
pub fn parse_record(json: &str) -> Result<CloudTrailRecord, RecordError> {
    // Tracking the path costs time on every field; only a record that fails pays for it, on a second parse.
    if let Ok(record) = serde_json::from_str(json) {
        return Ok(record);
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let path = (path != ".").then_some(path);
        RecordError { line: None, record: None, in_detail: false, field: path, message }
    })
}

/// Reads one EventBridge event (as the detector Lambda receives it) or a bare record.
pub fn read_event(json: &str) -> Result<CloudTrailRecord, RecordError> {
    let probe: Probe = serde_json::from_str(json).map_err(|e| RecordError::new(None, e.to_string()))?;
    match (probe.detail, probe.detail_type) {
        (Some(detail), Some(_)) => parse_record(detail.get()).map_err(|e| e.in_detail(None)),
        _ => parse_record(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","arn":"arn:aws:iam::123456789012:root"},
        "eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","unknownField":[1,2]}"#;

    #[test]
    fn every_wrapping_is_read() {
        let event =
            format!(r#"{{"version":"0","detail-type":"AWS Console Sign In via CloudTrail","detail":{RECORD}}}"#);
        let log = format!(r#"{{"Records":[{RECORD},{RECORD}]}}"#);
        let lines = format!("{}\n\n{}\n", RECORD.replace('\n', ""), event.replace('\n', ""));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(log.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        for (input, count) in
            [(RECORD.as_bytes(), 1), (event.as_bytes(), 1), (log.as_bytes(), 2), (lines.as_bytes(), 2), (&gz[..], 2)]
        {
            let records = read_records(input).unwrap();
            assert_eq!(records.len(), count);
            for r in records {
                assert_eq!(r.unwrap().event_name, "ConsoleLogin");
            }
        }
    }

    #[test]
    fn a_line_with_a_wrappings_key_is_read_as_the_wrapping_however_it_is_spelt() {
        let record = RECORD.replace('\n', "");
        // Each line also has the fields of a record at its top, so it parses as one too.
        let top = r#""eventSource":"s3.amazonaws.com","eventName":"ListBuckets""#;
        let lines = [
            format!(r#"{{{top},"Records":[{record},{record}]}}"#),
            format!(r#"{{{top},"\u0052ecords":[{record},{record}]}}"#),
            format!(r#"{{{top},"detail-type":"AWS API Call via CloudTrail","detail":{record}}}"#),
            format!(r#"{{{top},"\u0064etail-type":"AWS API Call via CloudTrail","detai\u006c":{record}}}"#),
        ];
        let reading = read_lines(lines.join("\n").as_bytes(), 1, None);
        let names: Vec<String> = reading.records.into_iter().map(|r| r.unwrap().event_name).collect();
        assert_eq!(names, ["ConsoleLogin"; 6]);
        // A `detail` without `detail-type` wraps nothing: the line is the record.
        let alone = format!(r#"{{{top},"detail":{record}}}"#);
        let reading = read_lines(alone.as_bytes(), 1, None);
        assert_eq!(reading.records.into_iter().map(|r| r.unwrap().event_name).collect::<Vec<_>>(), ["ListBuckets"]);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let bad = r#"{"eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{"type":5}}"#;
        let err = parse_record(bad).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("userIdentity.type"));
        assert!(err.to_string().starts_with("`userIdentity.type`: invalid type: integer `5`"), "{err}");
        let missing = parse_record(r#"{"eventSource":"iam.amazonaws.com"}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `eventName`"), "{missing}");
    }

    #[test]
    fn one_bad_record_does_not_hide_the_others() {
        let log = format!(r#"{{"Records":[{RECORD},{{"eventName":3}},{RECORD}]}}"#);
        let records = read_records(log.as_bytes()).unwrap();
        assert_eq!(records.iter().filter(|r| r.is_ok()).count(), 2);
        let err = records[1].as_ref().unwrap_err();
        assert_eq!(err.record, Some(1));
    }

    #[test]
    fn unreadable_input_is_an_error() {
        assert!(matches!(read_records(b"\x1f\x8b\x08garbage"), Err(InputError::Gzip(_))));
        assert!(matches!(read_records(b"\xff\xfe"), Err(InputError::Utf8 { .. })));
        assert!(matches!(read_records(b"[1,2"), Err(InputError::Json(_))));
        assert!(read_records(b"  ").unwrap().is_empty());
    }
}
