//! Agent sessions: what the call that issues temporary credentials says about them, and the registry that
//! remembers it for the session's later calls.
//!
//! An STS session tag is recorded by CloudTrail only in the call that issues the credentials; every later call of
//! that session carries just its temporary access key id (`userIdentity.accessKeyId`) and `principalId`. So
//! trailguard reads each issuing call ([`ISSUING_EVENTS`]) into a [`Session`], keyed by the issued access key id
//! (a `principalId` is not unique: rotating credentials and CI jobs reuse session names), and answers "is this
//! call an agent's?" for a later call by looking its access key id up. The deployed detector keeps the sessions
//! in its DynamoDB state table, the offline scanner in a [`Registry`] built in a first pass over the archive.
//!
//! Where each API writes its tags (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html>,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html>):
//! - `AssumeRole` and `GetFederationToken`: `requestParameters.tags`, a list of `{key, value}`; `AssumeRole` also
//!   `requestParameters.transitiveTagKeys` (`GetFederationToken` has no transitive keys: its credentials cannot
//!   call STS).
//! - `AssumeRoleWithSAML` and `AssumeRoleWithWebIdentity`: the tags come from the assertion or token and are
//!   logged as a `principalTags` map (read from `requestParameters` or `responseElements`, whichever has it),
//!   transitive keys as `transitiveTagKeys`.
//!
//! Only agent sessions are recorded. A session is an agent's when its own tags or source identity say so, or when
//! its caller was an agent: a chained `AssumeRole` does not repeat inherited tags, so agency is inherited through
//! the caller's registry entry (its `parent`), which is also what lineage revocation follows.
//!
//! **Invariant:** an expired session is absent. TTL deletes lazily, so every read compares the expiry itself.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{AgentMatch, CloudTrailRecord};

/// The STS calls that issue temporary credentials and may carry session tags.
pub const ISSUING_EVENTS: &[&str] =
    &["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetFederationToken"];

/// Whether a text (a log file, a line) may hold an issuing call: it names `AssumeRole` (a prefix of the other two
/// role calls) or `GetFederationToken`, or has a `\u` escape (an event name is written literally unless escaped).
/// The registry passes read only what passes this, without parsing the rest.
pub fn may_issue(text: &[u8]) -> bool {
    issuing_names().iter().any(|name| name.find(text).is_some()) || crate::prefilter::has_unicode_escape(text)
}

/// Where in `text` an issuing call may be written, in order: each place [`may_issue`] looks for (an issuing
/// event's name, a `\u` escape). A record that holds none of them cannot be an issuing call.
pub fn issuing_candidates(text: &[u8]) -> Vec<usize> {
    let names = issuing_names().iter().flat_map(|name| name.find_iter(text));
    let escapes = memchr::memchr_iter(b'\\', text).filter(|at| text.get(at + 1) == Some(&b'u'));
    let mut at: Vec<usize> = names.chain(escapes).collect();
    at.sort_unstable();
    at
}

/// The searchers for the names [`may_issue`] looks for, built once (building one costs more than a short search).
fn issuing_names() -> &'static [memchr::memmem::Finder<'static>; 2] {
    static NAMES: std::sync::OnceLock<[memchr::memmem::Finder<'static>; 2]> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        [memchr::memmem::Finder::new(b"AssumeRole"), memchr::memmem::Finder::new(b"GetFederationToken")]
    })
}

/// The event source of [`ISSUING_EVENTS`].
pub const STS: &str = "sts.amazonaws.com";

/// One session, as its issuing call describes it. Stored in the state table as JSON: the field names are a
/// contract between detector versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The issued temporary access key id (`ASIA…`): the registry's key.
    pub access_key_id: String,
    /// The issuing call (`AssumeRole`, …).
    pub issued_by: String,
    /// `<role id>:<session name>` (the session's `aws:userid`), or the federated user's id.
    pub principal_id: Option<String>,
    /// The session's ARN (`assumed-role` or `federated-user`).
    pub arn: Option<String>,
    /// The account the credentials belong to.
    pub account: Option<String>,
    /// The role assumed, for role sessions.
    pub role_arn: Option<String>,
    /// The session tags the issuing call set (not the inherited ones).
    pub tags: Vec<(String, String)>,
    /// The keys of those tags that are transitive.
    pub transitive_keys: Vec<String>,
    /// The source identity the session carries.
    pub source_identity: Option<String>,
    /// The caller's access key id when the caller is itself an agent: the parent in the lineage (whose
    /// revocation revokes this session too). `None` for a session a person or workload created.
    pub parent: Option<String>,
    /// When the credentials expire, in seconds since the epoch.
    pub expires: i64,
    /// When the credentials were issued, in seconds since the epoch.
    pub issued: i64,
    /// Why the session is an agent's.
    pub agent: Option<AgentMatch>,
}

impl Session {
    /// Whether the credentials are still valid at `now` (epoch seconds).
    pub fn live(&self, now: i64) -> bool {
        self.expires > now
    }
}

/// What an issuing call says, before agency is decided (that needs the caller's registry entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The session, with `agent` still `None`.
    pub session: Session,
}

/// Reads a successful issuing call; `None` for any other record, a failed call, or one without issued credentials.
pub fn issued(record: &CloudTrailRecord) -> Option<Issued> {
    if record.event_source != STS || !ISSUING_EVENTS.contains(&record.event_name.as_str()) || record.failed() {
        return None;
    }
    // The typed read borrows its strings and builds no `Value` tree. It accepts only the plain shape (no null
    // where a value decides, no duplicate key, the types CloudTrail writes); anything else is read as `Value`s,
    // which is what the typed read would give on the plain shape.
    match typed_parts(record) {
        Ok(parts) => parts.map(|parts| build(record, parts)),
        Err(()) => value_parts(record),
    }
}

/// What an issuing call says about the session it created, borrowed from the record.
struct Parts<'a> {
    access_key_id: Cow<'a, str>,
    expiration: Option<Cow<'a, str>>,
    duration: Option<i64>,
    principal_id: Option<Cow<'a, str>>,
    arn: Option<Cow<'a, str>>,
    tags: Vec<(String, String)>,
    transitive_keys: Vec<String>,
    source_identity: Option<Cow<'a, str>>,
    role_arn: Option<Cow<'a, str>>,
}

/// `responseElements` of an issuing call, as far as the session needs it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    credentials: Option<Credentials<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    assumed_role_user: Option<IssuedUser<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    federated_user: Option<IssuedUser<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    source_identity: Option<Cow<'a, str>>,
    #[serde(default)]
    principal_tags: Option<Value>,
    #[serde(default)]
    transitive_tag_keys: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    expiration: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssuedUser<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    assumed_role_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    federated_user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arn: Option<Cow<'a, str>>,
}

/// `requestParameters` of an issuing call, as far as the session needs it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Params<'a> {
    #[serde(default)]
    duration_seconds: Option<i64>,
    #[serde(borrow, default)]
    role_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source_identity: Option<Cow<'a, str>>,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    principal_tags: Option<Value>,
    #[serde(default)]
    transitive_tag_keys: Option<Value>,
}

/// A field whose `null` must not read as absent (the `Value` reading stops at a present `null` rather than trying
/// the next field): `null` fails the typed read, which hands the record to the `Value` reading.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The typed read: `Err` when the record is not of the plain shape, `Ok(None)` when it issued no credentials.
fn typed_parts(record: &CloudTrailRecord) -> Result<Option<Parts<'_>>, ()> {
    let Some(raw) = record.response_elements.as_deref() else { return Ok(None) };
    let response: Option<Response> = serde_json::from_str(raw.get()).map_err(|_| ())?;
    let Some(response) = response else { return Ok(None) };
    let params: Params = match record.request_parameters.as_deref() {
        None => Params::default(),
        Some(raw) => serde_json::from_str::<Option<Params>>(raw.get()).map_err(|_| ())?.unwrap_or_default(),
    };
    let Some(credentials) = response.credentials else { return Ok(None) };
    let Some(access_key_id) = credentials.access_key_id else { return Ok(None) };
    let (principal_id, arn) = match response.assumed_role_user.or(response.federated_user) {
        Some(user) => (user.assumed_role_id.or(user.federated_user_id), user.arn),
        None => (None, None),
    };
    let mut tags = tag_list(params.tags.as_ref());
    for map in [params.principal_tags.as_ref(), response.principal_tags.as_ref()].into_iter().flatten() {
        tags.extend(tag_list(Some(map)));
    }
    Ok(Some(Parts {
        access_key_id,
        expiration: credentials.expiration,
        duration: params.duration_seconds,
        principal_id,
        arn,
        tags,
        transitive_keys: transitive_keys([params.transitive_tag_keys.as_ref(), response.transitive_tag_keys.as_ref()]),
        source_identity: response.source_identity.or(params.source_identity),
        role_arn: params.role_arn,
    }))
}

/// The `Value` reading, for any shape the typed read refuses.
fn value_parts(record: &CloudTrailRecord) -> Option<Issued> {
    let response = record.response()?;
    let params = record.params().ok().flatten().unwrap_or(Value::Null);
    let credentials = response.get("credentials")?;
    let access_key_id = credentials.get("accessKeyId")?.as_str()?;
    let (principal_id, arn) = match response.get("assumedRoleUser").or_else(|| response.get("federatedUser")) {
        Some(user) => (
            user.get("assumedRoleId").or_else(|| user.get("federatedUserId")).and_then(Value::as_str),
            user.get("arn").and_then(Value::as_str),
        ),
        None => (None, None),
    };
    let mut tags = tag_list(params.get("tags"));
    for map in [params.get("principalTags"), response.get("principalTags")].into_iter().flatten() {
        tags.extend(tag_list(Some(map)));
    }
    let parts = Parts {
        access_key_id: access_key_id.into(),
        expiration: credentials.get("expiration").and_then(Value::as_str).map(Cow::from),
        duration: params.get("durationSeconds").and_then(Value::as_i64),
        principal_id: principal_id.map(Cow::from),
        arn: arn.map(Cow::from),
        tags,
        transitive_keys: transitive_keys([params.get("transitiveTagKeys"), response.get("transitiveTagKeys")]),
        source_identity: response
            .get("sourceIdentity")
            .or_else(|| params.get("sourceIdentity"))
            .and_then(Value::as_str)
            .map(Cow::from),
        role_arn: params.get("roleArn").and_then(Value::as_str).map(Cow::from),
    };
    Some(build(record, parts))
}

/// The transitive tag keys of the lists given (request and response), sorted, once each.
fn transitive_keys(lists: [Option<&Value>; 2]) -> Vec<String> {
    let mut keys: Vec<String> = lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The session from what the issuing call said.
fn build(record: &CloudTrailRecord, parts: Parts<'_>) -> Issued {
    let issued = record.event_time.as_deref().and_then(parse_time).unwrap_or(0);
    let default_seconds = if record.event_name == "GetFederationToken" { 43_200 } else { 3_600 };
    let duration = parts.duration.unwrap_or(default_seconds);
    let expires = parts.expiration.as_deref().and_then(parse_time).unwrap_or_else(|| issued.saturating_add(duration));
    let mut tags = parts.tags;
    tags.sort();
    tags.dedup();
    let source_identity = parts
        .source_identity
        .map(Cow::into_owned)
        .or_else(|| record.identity().session_context.as_ref().and_then(|s| s.source_identity.clone()));
    let account = parts.arn.as_deref().and_then(|a| a.split(':').nth(4)).filter(|a| !a.is_empty()).map(str::to_owned);
    let parent = record.identity().access_key_id.clone().filter(|k| !k.is_empty());
    Issued {
        session: Session {
            access_key_id: parts.access_key_id.into_owned(),
            issued_by: record.event_name.clone(),
            principal_id: parts.principal_id.map(Cow::into_owned),
            arn: parts.arn.map(Cow::into_owned),
            account: account.or_else(|| record.account().map(str::to_owned)),
            role_arn: parts.role_arn.map(Cow::into_owned),
            tags,
            transitive_keys: parts.transitive_keys,
            source_identity,
            parent,
            expires,
            issued,
            agent: None,
        },
    }
}

/// Tags as a list of `{key, value}` (any case of the two names) or as a `{key: value}` map.
pub(crate) fn tag_list(value: Option<&Value>) -> Vec<(String, String)> {
    let field = |tag: &Value, names: [&str; 2]| {
        names.iter().find_map(|n| tag.get(*n)).and_then(Value::as_str).map(str::to_owned)
    };
    match value {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|tag| Some((field(tag, ["key", "Key"])?, field(tag, ["value", "Value"]).unwrap_or_default())))
            .collect(),
        Some(Value::Object(map)) => {
            map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
        }
        _ => Vec::new(),
    }
}

/// Reads a time as CloudTrail writes it: RFC 3339 (`eventTime`), or STS's `expiration` form
/// (`Nov 29, 2026, 5:16:19 PM`, the comma after the year optional). Epoch seconds, UTC.
pub fn parse_time(text: &str) -> Option<i64> {
    // RFC 3339 starts with the year's digit, STS's form with the month's letter: each parser reads only its own.
    if !text.trim_start().starts_with(|c: char| c.is_ascii_alphabetic()) {
        let rfc_3339 = || time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok();
        return utc_seconds(text).or_else(|| rfc_3339().map(|t| t.unix_timestamp()));
    }
    let mut parts = text.split(|c: char| c == ',' || c.is_whitespace()).filter(|part| !part.is_empty());
    let month = match parts.next()?.get(..3)? {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let day: u8 = parts.next()?.parse().ok()?;
    let year: i32 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let mut hour: u8 = clock.next()?.parse().ok()?;
    let minute: u8 = clock.next()?.parse().ok()?;
    let second: u8 = clock.next().unwrap_or("0").parse().ok()?;
    match parts.next() {
        Some("PM") if hour < 12 => hour += 12,
        Some("AM") if hour == 12 => hour = 0,
        _ => {}
    }
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let at = date.with_hms(hour, minute, second).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

/// The one shape CloudTrail writes `eventTime` in, `2026-11-29T17:16:19Z`, read without the general RFC 3339
/// parser (this runs for most records an evaluation reads). `None` for any other shape, valid or not.
fn utc_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b.get(range).map(|digits| digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
    };
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::from(number(0..4)?), month, u8::try_from(number(8..10)?).ok()?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let at = date.ok()?.with_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, u8::try_from(second).ok()?);
    Some(at.ok()?.assume_utc().unix_timestamp())
}

/// The sessions known offline, by access key id: what the state table holds for the detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    /// Hashed with foldhash, seeded per process: the default hasher cost most of each look-up (two per record an
    /// evaluation reads), and the keys are issued by STS.
    sessions: HashMap<String, Session, foldhash::fast::RandomState>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Records a session (an agent's; the caller decides).
    pub fn insert(&mut self, session: Session) {
        self.sessions.insert(session.access_key_id.clone(), session);
    }

    /// The session with this access key, if it was live at `at` (epoch seconds): an expired one is absent.
    pub fn get(&self, access_key_id: &str, at: i64) -> Option<&Session> {
        self.sessions.get(access_key_id).filter(|s| s.live(at))
    }

    /// The session with this access key, whatever its expiry (for building the lineage).
    pub fn entry(&self, access_key_id: &str) -> Option<&Session> {
        self.sessions.get(access_key_id)
    }

    /// How many sessions it holds.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The sessions, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

/// The most sessions one lineage revocation follows: an agent that chains further than this is reported, and
/// its deeper descendants are left to their own findings.
pub const MAX_LINEAGE: usize = 50;

/// Hands a finding on to the sessions its agent session assumed: when the finding revokes the actor's session,
/// each live descendant (`descendants`, found through the registry) is revoked too, each by its own `aws:userid`
/// on its own role in its own account. Sessions without a role (federation tokens) cannot be revoked this way
/// and are named in a note. Revoking the parent alone would leave its chained sessions working.
pub fn hand_on(finding: &mut crate::finding::Finding, descendants: &[Session]) {
    use crate::finding::Remediation;
    let revokes = finding.remediation.iter().any(|r| matches!(r, Remediation::RevokeSession { .. }));
    if !revokes || descendants.is_empty() {
        return;
    }
    for child in descendants {
        let role_name = child.role_arn.as_deref().and_then(|a| a.rsplit('/').next()).filter(|n| !n.is_empty());
        match (role_name, &child.account) {
            (Some(role_name), Some(account)) => {
                finding.evidence.notes.push(format!(
                    "descendant session {} (key {}, parent {}) is revoked with it",
                    child.arn.as_deref().unwrap_or(role_name),
                    child.access_key_id,
                    child.parent.as_deref().unwrap_or("?"),
                ));
                finding.remediation.push(Remediation::RevokeSession {
                    account: account.clone(),
                    role_name: role_name.to_owned(),
                    user_id: child.principal_id.clone(),
                    source_identity: child.source_identity.clone(),
                    rotating: None,
                });
            }
            _ => finding.evidence.notes.push(format!(
                "descendant session {} (key {}) has no role to revoke it on: revoke its issuer by hand",
                child.arn.as_deref().unwrap_or("?"),
                child.access_key_id
            )),
        }
    }
    if descendants.len() >= MAX_LINEAGE {
        finding.evidence.notes.push(format!(
            "the lineage was followed for {MAX_LINEAGE} sessions only: deeper descendants are not revoked here"
        ));
    }
    finding.remediable = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::input::parse_record;

    #[test]
    fn each_registry_hashes_access_keys_with_its_own_seed() {
        // Access keys crafted to collide in one registry's table do not collide in another's: the seed is random
        // per registry, not fixed (a fixed hasher gives one value here).
        use std::hash::BuildHasher;
        let hashes: std::collections::BTreeSet<u64> =
            (0..8).map(|_| Registry::new().sessions.hasher().hash_one("ASIAEXAMPLE0000001")).collect();
        assert!(hashes.len() > 1, "{hashes:?}");
    }

    fn record(name: &str, params: &str, response: &str) -> CloudTrailRecord {
        parse_record(&format!(
            r#"{{"eventSource":"sts.amazonaws.com","eventName":"{name}","eventTime":"2026-11-29T10:00:00Z",
               "userIdentity":{{"type":"AssumedRole","accessKeyId":"ASIAPARENT","accountId":"123456789012"}},
               "requestParameters":{params},"responseElements":{response}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_typed_read_gives_what_the_value_reading_gives_and_hands_it_every_other_shape() {
        let user =
            r#""assumedRoleUser":{"assumedRoleId":"AROAX:s","arn":"arn:aws:sts::111122223333:assumed-role/r/s"}"#;
        let cases = [
            // The plain shape, with tags, transitive keys and escapes: read typed.
            (
                r#"{"roleArn":"arn:aws:iam::111122223333:role/r","durationSeconds":900,"tags":[{"key":"ai-agent","value":"true"}],"transitiveTagKeys":["ai-agent"]}"#,
                format!(r#"{{"credentials":{{"accessKeyId":"ASIA\u0041","expiration":"Nov 29, 2026, 5:16:19 PM"}},{user}}}"#),
                true,
            ),
            // A present null stops the reading at that field (federatedUser is not tried): not the typed shape.
            (
                "{}",
                r#"{"credentials":{"accessKeyId":"ASIAB"},"assumedRoleUser":null,"federatedUser":{"federatedUserId":"123456789012:f","arn":"arn:aws:sts::123456789012:federated-user/f"}}"#.to_owned(),
                false,
            ),
            // A duplicate key (the last wins in a Value), a number where a string was, a fractional duration.
            (r#"{"roleArn":"a","roleArn":"b"}"#, format!(r#"{{"credentials":{{"accessKeyId":"ASIAC"}},{user}}}"#), false),
            ("{}", format!(r#"{{"credentials":{{"accessKeyId":"ASIAD","expiration":5}},{user}}}"#), false),
            (r#"{"durationSeconds":900.5}"#, format!(r#"{{"credentials":{{"accessKeyId":"ASIAE"}},{user}}}"#), false),
            // Nothing issued: no credentials, or no key.
            ("{}", format!("{{{user}}}"), true),
            ("null", r#"{"credentials":{"expiration":"x"}}"#.to_owned(), true),
        ];
        for (params, response, plain) in cases {
            let record = record("AssumeRole", params, &response);
            assert_eq!(typed_parts(&record).is_ok(), plain, "{params} {response}");
            assert_eq!(issued(&record), value_parts(&record), "{params} {response}");
        }
        let plain = issued(&record("AssumeRole", cases_first_params(), &cases_first_response(user))).unwrap().session;
        assert_eq!(plain.access_key_id, "ASIAA");
        assert_eq!(plain.tags, vec![("ai-agent".to_owned(), "true".to_owned())]);
        assert_eq!(plain.account.as_deref(), Some("111122223333"));
    }

    fn cases_first_params() -> &'static str {
        r#"{"roleArn":"arn:aws:iam::111122223333:role/r","tags":[{"key":"ai-agent","value":"true"}]}"#
    }

    fn cases_first_response(user: &str) -> String {
        format!(r#"{{"credentials":{{"accessKeyId":"ASIA\u0041"}},{user}}}"#)
    }

    #[test]
    fn assume_role_tags_and_transitive_keys_are_read() {
        let r = record(
            "AssumeRole",
            r#"{"roleArn":"arn:aws:iam::123456789012:role/dev","roleSessionName":"run-1",
                "tags":[{"key":"trailguard:agent","value":"true"},{"key":"team","value":"ml"}],
                "transitiveTagKeys":["trailguard:agent"]}"#,
            r#"{"credentials":{"accessKeyId":"ASIACHILD","expiration":"Nov 29, 2026, 11:00:00 AM"},
                "assumedRoleUser":{"assumedRoleId":"AROADEV:run-1","arn":"arn:aws:sts::123456789012:assumed-role/dev/run-1"}}"#,
        );
        let s = issued(&r).unwrap().session;
        assert_eq!(s.access_key_id, "ASIACHILD");
        assert_eq!(s.principal_id.as_deref(), Some("AROADEV:run-1"));
        assert_eq!(s.tags, [("team".into(), "ml".into()), ("trailguard:agent".into(), "true".into())]);
        assert_eq!(s.transitive_keys, ["trailguard:agent"]);
        assert_eq!(s.parent.as_deref(), Some("ASIAPARENT"));
        assert_eq!(s.expires - s.issued, 3600);
    }

    #[test]
    fn saml_and_web_identity_tags_are_a_map() {
        for name in ["AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"] {
            let r = record(
                name,
                r#"{"roleArn":"arn:aws:iam::123456789012:role/fed","principalTags":{"ai-agent":"true"},
                    "transitiveTagKeys":["ai-agent"]}"#,
                r#"{"credentials":{"accessKeyId":"ASIAFED","expiration":"2026-11-29T11:00:00Z"},
                    "assumedRoleUser":{"assumedRoleId":"AROAFED:x","arn":"arn:aws:sts::123456789012:assumed-role/fed/x"}}"#,
            );
            let s = issued(&r).unwrap().session;
            assert_eq!(s.tags, [("ai-agent".into(), "true".into())], "{name}");
            assert_eq!(s.transitive_keys, ["ai-agent"], "{name}");
        }
    }

    #[test]
    fn federation_tokens_have_tags_but_no_transitive_keys() {
        let r = record(
            "GetFederationToken",
            r#"{"name":"bot","tags":[{"key":"ai-agent","value":"true"}]}"#,
            r#"{"credentials":{"accessKeyId":"ASIAFEDUSER"},
                "federatedUser":{"federatedUserId":"123456789012:bot","arn":"arn:aws:sts::123456789012:federated-user/bot"}}"#,
        );
        let s = issued(&r).unwrap().session;
        assert_eq!(s.principal_id.as_deref(), Some("123456789012:bot"));
        assert!(s.transitive_keys.is_empty());
        assert_eq!(s.expires - s.issued, 43_200);
    }

    #[test]
    fn failed_or_other_calls_issue_nothing() {
        let mut r = record("AssumeRole", "{}", r#"{"credentials":{"accessKeyId":"ASIAX"}}"#);
        assert!(issued(&r).is_some());
        r.error_code = Some("AccessDenied".into());
        assert!(issued(&r).is_none());
        assert!(issued(&record("GetCallerIdentity", "{}", r#"{"credentials":{"accessKeyId":"ASIAX"}}"#)).is_none());
    }

    #[test]
    fn expired_sessions_are_absent() {
        let r = record("AssumeRole", "{}", r#"{"credentials":{"accessKeyId":"ASIAX"}}"#);
        let mut registry = Registry::new();
        let s = issued(&r).unwrap().session;
        let (issued_at, expires) = (s.issued, s.expires);
        registry.insert(s);
        assert!(registry.get("ASIAX", issued_at + 10).is_some());
        assert!(registry.get("ASIAX", expires).is_none());
        assert!(registry.entry("ASIAX").is_some());
    }

    #[test]
    fn sts_expiration_form_is_read() {
        assert_eq!(parse_time("Nov 29, 2026, 11:00:00 AM"), parse_time("2026-11-29T11:00:00Z"));
        assert_eq!(parse_time("Nov 29, 2026 12:30:00 PM"), parse_time("2026-11-29T12:30:00Z"));
        assert_eq!(parse_time("Nov 29, 2026 12:30:00 AM"), parse_time("2026-11-29T00:30:00Z"));
        assert_eq!(parse_time("yesterday"), None);
    }

    proptest::proptest! {
        /// The short path for `eventTime` reads what the RFC 3339 parser reads, and leaves to it what it cannot
        /// read (a second 60, a 30 February, fractions, offsets, lower case).
        #[test]
        fn event_times_read_as_rfc_3339_reads_them(
            date in "(19|20|99)[0-9]{2}-[01][0-9]-[0-3][0-9]",
            clock in "[0-2][0-9]:[0-6][0-9]:[0-6][0-9]",
            tail in "(Z|z|\\.123Z|\\+01:00|)",
            t in "[Tt ]",
        ) {
            let text = format!("{date}{t}{clock}{tail}");
            let rfc = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok();
            proptest::prop_assert_eq!(parse_time(&text), rfc.map(|t| t.unix_timestamp()), "{}", text);
            if let Some(seconds) = utc_seconds(&text) {
                proptest::prop_assert_eq!(Some(seconds), rfc.map(|t| t.unix_timestamp()), "{}", text);
            }
        }
    }

    fn line(identity_key: &str, name: &str, params: &str, response: &str, time: &str) -> CloudTrailRecord {
        parse_record(&format!(
            r#"{{"eventSource":"{source}","eventName":"{name}","eventTime":"{time}","eventID":"{name}-{identity_key}",
               "userIdentity":{{"type":"AssumedRole","accessKeyId":"{identity_key}","accountId":"123456789012",
                 "principalId":"AROAX:s","arn":"arn:aws:sts::123456789012:assumed-role/plain/s"}},
               "requestParameters":{params},"responseElements":{response}}}"#,
            source = if name.starts_with("Assume") { STS } else { "iam.amazonaws.com" },
        ))
        .unwrap()
    }

    #[test]
    fn offline_verdicts_do_not_depend_on_the_order_of_records() {
        let engine = crate::Engine::new(crate::config::Config::default());
        let records = [
            line(
                "ASIAPERSON",
                "AssumeRole",
                r#"{"roleArn":"arn:aws:iam::123456789012:role/plain","tags":[{"key":"ai-agent","value":"true"}]}"#,
                r#"{"credentials":{"accessKeyId":"ASIATAGGED","expiration":"2026-11-29T11:00:00Z"}}"#,
                "2026-11-29T10:00:00Z",
            ),
            line(
                "ASIATAGGED",
                "AssumeRole",
                r#"{"roleArn":"arn:aws:iam::123456789012:role/other"}"#,
                r#"{"credentials":{"accessKeyId":"ASIACHILD","expiration":"2026-11-29T11:00:00Z"}}"#,
                "2026-11-29T10:05:00Z",
            ),
            line("ASIACHILD", "CreateUser", r#"{"userName":"x"}"#, "null", "2026-11-29T10:10:00Z"),
            line("ASIACHILD", "CreateUser", r#"{"userName":"late"}"#, "null", "2026-11-29T12:00:00Z"),
        ];
        let verdicts = |order: &[usize]| {
            let calls: Vec<_> = order.iter().filter_map(|i| engine.issuing_offline(&records[*i])).collect();
            let registry = engine.build_registry(&calls);
            order
                .iter()
                .map(|i| {
                    (
                        *i,
                        engine
                            .evaluate_registered(&records[*i], &registry, &crate::behaviour::Counters::default())
                            .findings
                            .len(),
                    )
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let forward = verdicts(&[0, 1, 2, 3]);
        assert_eq!(forward, verdicts(&[3, 2, 1, 0]));
        assert_eq!(forward, verdicts(&[2, 0, 3, 1]));
        assert_eq!(forward[&2], 1, "the chained child's call is an agent's");
        assert_eq!(forward[&3], 0, "after the credentials expired, the key is no agent's");
        let calls: Vec<_> = records.iter().filter_map(|r| engine.issuing_offline(r)).collect();
        let registry = engine.build_registry(&calls);
        assert_eq!(registry.entry("ASIACHILD").unwrap().parent.as_deref(), Some("ASIATAGGED"));
        assert_eq!(registry.entry("ASIATAGGED").unwrap().parent, None, "a person's session is no parent");
        assert_eq!(engine.evaluate_offline(&records[2]).findings.len(), 0, "without the registry, no agent");
    }
}
