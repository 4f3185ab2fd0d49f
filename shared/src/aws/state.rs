//! trailguard's durable state in one DynamoDB table: per-role locks and "once per hour" de-duplication.
//!
//! One table, a string partition key `pk` and sort key `sk`, and a TTL attribute `expires_at` (epoch seconds).
//! Items are typed by the prefix of `pk`: `lock#…` (a role's revocation policy being written), `once#…` (a page
//! already sent this hour: forgeries, refusals, blind accounts). The agent-session registry adds its own prefixes
//! (`session#<access key id>`) to the same table. TTL deletes lazily (within days), so every read compares
//! `expires_at` with the clock itself: an expired item is treated as absent.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use super::error::classify;
use crate::behaviour::{Count, Crossing, EvidenceEvent};
use crate::iam::{IamError, IamErrorKind};
use crate::session::Session;

/// How long a lock is held at most: longer than any read-merge-write of one revocation policy, short enough
/// that a crashed holder does not block the next remediation for long.
const LOCK_SECONDS: i64 = 30;
/// How long a new holder waits before reading its ownership back (see [`StateTable::still_owner`]).
const LOCK_SETTLE: Duration = Duration::from_millis(100);
/// How long to wait for another holder before failing (retryably): Lambda retries the finding later.
const LOCK_WAIT: Duration = Duration::from_secs(25);

/// The state table.
#[derive(Clone, Debug)]
pub struct StateTable {
    client: Client,
    table: String,
}

impl StateTable {
    /// The table `table` through `client`.
    pub fn new(client: Client, table: &str) -> StateTable {
        StateTable { client, table: table.to_owned() }
    }

    /// Records `key` for `ttl`; `true` the first time within that time, `false` when it is already recorded
    /// (a conditional put, so two concurrent callers cannot both get `true`).
    pub async fn first_time(&self, key: &str, ttl: time::Duration, now: OffsetDateTime) -> Result<bool, IamError> {
        let expires = (now + ttl).unix_timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("once#{key}")))
            .item("sk", AttributeValue::S("once".to_owned()))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix_timestamp().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("dynamodb:PutItem", &e)),
        }
    }

    /// Whether `key` was recorded with [`StateTable::first_time`] and has not expired (a strongly consistent read).
    pub async fn recorded(&self, key: &str, now: OffsetDateTime) -> Result<bool, IamError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("once#{key}")))
            .key("sk", AttributeValue::S("once".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", &e))?;
        let expires = output
            .item()
            .and_then(|item| item.get("expires_at"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        Ok(expires.is_some_and(|e| e >= now.unix_timestamp()))
    }

    /// Records an agent session, and under its parent's key the link to it (the parent's lineage). Each item
    /// expires with the credentials it describes.
    pub async fn put_session(&self, session: &Session) -> Result<(), IamError> {
        let body = serde_json::to_string(session).map_err(|e| IamError {
            kind: IamErrorKind::Other,
            action: "dynamodb:PutItem".to_owned(),
            message: format!("session could not be written as JSON: {e}"),
        })?;
        let expires = AttributeValue::N(session.expires.to_string());
        let mut items = vec![(format!("session#{}", session.access_key_id), "session".to_owned())];
        if let Some(parent) = &session.parent {
            items.push((format!("session#{parent}"), format!("child#{}", session.access_key_id)));
        }
        for (pk, sk) in items {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(pk))
                .item("sk", AttributeValue::S(sk))
                .item("body", AttributeValue::S(body.clone()))
                .item("expires_at", expires.clone())
                .send()
                .await
                .map_err(|e| classify("dynamodb:PutItem", &e))?;
        }
        Ok(())
    }

    /// The agent session recorded for an access key, if its credentials were still valid at `at` (epoch seconds).
    pub async fn session(&self, access_key_id: &str, at: i64) -> Result<Option<Session>, IamError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("session#{access_key_id}")))
            .key("sk", AttributeValue::S("session".to_owned()))
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", &e))?;
        Ok(output.item.as_ref().and_then(read_session).filter(|s| s.live(at)))
    }

    /// The live sessions an agent session assumed, directly (each carries its own parent key to go further).
    pub async fn children(&self, access_key_id: &str, now: i64) -> Result<Vec<Session>, IamError> {
        let mut children = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :child)")
                .expression_attribute_values(":pk", AttributeValue::S(format!("session#{access_key_id}")))
                .expression_attribute_values(":child", AttributeValue::S("child#".to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", &e))?;
            children.extend(output.items().iter().filter_map(read_session).filter(|s| s.live(now)));
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(children);
            }
        }
    }

    /// Every live session descended from an agent session (children, their children, …), breadth first, at most
    /// [`crate::session::MAX_LINEAGE`].
    pub async fn descendants(&self, access_key_id: &str, now: i64) -> Result<Vec<Session>, IamError> {
        let mut found: Vec<Session> = Vec::new();
        let mut queue = std::collections::VecDeque::from([access_key_id.to_owned()]);
        let mut seen = std::collections::HashSet::from([access_key_id.to_owned()]);
        while let Some(key) = queue.pop_front() {
            for child in self.children(&key, now).await? {
                if found.len() >= crate::session::MAX_LINEAGE {
                    return Ok(found);
                }
                if seen.insert(child.access_key_id.clone()) {
                    queue.push_back(child.access_key_id.clone());
                    found.push(child);
                }
            }
        }
        Ok(found)
    }

    /// Counts one event atomically: `n` goes up by one and the event joins the evidence, unless the counter has
    /// already reached its limit or already holds this event (a retried invocation), or for a distinct count
    /// (`services`) already holds its value (the set `services`; the evidence is then each value's first event). Returns the evidence when
    /// this event is the one that brought the count to the limit (again so on a retry of that very event, so that
    /// a finding whose delivery failed is not lost).
    pub async fn count(&self, count: &Count) -> Result<Crossing, IamError> {
        let key =
            [("pk", AttributeValue::S(format!("count#{}", count.key))), ("sk", AttributeValue::S("count".to_owned()))];
        let event = AttributeValue::M(
            [
                ("id".to_owned(), AttributeValue::S(count.event.id.clone())),
                ("call".to_owned(), AttributeValue::S(count.event.call.clone())),
                ("time".to_owned(), AttributeValue::S(count.event.time.clone())),
            ]
            .into(),
        );
        let id = if count.event.id.is_empty() { "-".to_owned() } else { count.event.id.clone() };
        // What makes a repeat: the event itself, or for a distinct count the value it adds (a retried event adds
        // the value it added before, so it is a repeat too).
        let (set, member) = match &count.distinct {
            Some(value) => ("services", value.clone()),
            None => ("ids", id),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .update_expression(
                "ADD n :one, #set :member SET ev = list_append(if_not_exists(ev, :empty), :ev), expires_at = :expires",
            )
            .condition_expression("(attribute_not_exists(n) OR n < :limit) AND NOT contains(#set, :memberv)")
            .expression_attribute_names("#set", set)
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":member", AttributeValue::Ss(vec![member.clone()]))
            .expression_attribute_values(":memberv", AttributeValue::S(member))
            .expression_attribute_values(":ev", AttributeValue::L(vec![event]))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":expires", AttributeValue::N((count.window_end + 3600).to_string()))
            .expression_attribute_values(":limit", AttributeValue::N(count.limit.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            // A refused update returns the item as the condition saw it: no second read for a repeat (the common
            // case of a distinct count: an agent calls the same few services again and again).
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        for (name, value) in key {
            update = update.key(name, value);
        }
        let item = match update.send().await {
            Ok(output) => output.attributes,
            Err(e) if is_condition_failure(&e) => {
                let item = match e.as_service_error() {
                    Some(
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                            refused,
                        ),
                    ) => refused.item().cloned(),
                    _ => None,
                };
                // Only the event that reached the limit is answered again; any other is past it.
                let evidence = item.as_ref().map(read_evidence).unwrap_or_default();
                let last = evidence.last().map(|e| e.id.clone());
                if last.as_deref() != Some(count.event.id.as_str()) || count.event.id.is_empty() {
                    return Ok(None);
                }
                item
            }
            Err(e) => return Err(classify("dynamodb:UpdateItem", &e)),
        };
        let Some(item) = item else { return Ok(None) };
        let n: u32 = item.get("n").and_then(|n| n.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok((n == count.limit).then(|| read_evidence(&item)))
    }

    /// Remembers an agent identity's use of a region in one unconditional `UpdateItem` (the region joins the set,
    /// the first-seen time is set once, the event that added the region is kept, the memory's expiry moves on) and
    /// judges it against the item as it was before (`ALL_OLD`): atomic, and a retried event is answered as before.
    pub async fn region(&self, used: &crate::regions::RegionUse) -> Result<crate::regions::Novelty, IamError> {
        let expires = used.at.max(OffsetDateTime::now_utc().unix_timestamp()) + crate::regions::MEMORY_DAYS * 86_400;
        let id = if used.event_id.is_empty() { "-".to_owned() } else { used.event_id.clone() };
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("region#{}", used.identity)))
            .key("sk", AttributeValue::S("regions".to_owned()))
            .update_expression(
                "ADD regions :region SET first_seen = if_not_exists(first_seen, :at), #added = \
                 if_not_exists(#added, :id), expires_at = :expires",
            )
            .expression_attribute_names("#added", format!("added#{}", used.region))
            .expression_attribute_values(":region", AttributeValue::Ss(vec![used.region.clone()]))
            .expression_attribute_values(":at", AttributeValue::N(used.at.to_string()))
            .expression_attribute_values(":id", AttributeValue::S(id))
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", &e))?;
        let before = output.attributes.as_ref().map(|item| {
            let first_seen = item.get("first_seen").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
            let regions = item.get("regions").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
            let added = |region: &str| {
                item.get(&format!("added#{region}")).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
            };
            crate::regions::Remembered {
                first_seen: first_seen.unwrap_or(used.at),
                regions: regions.iter().map(|r| (r.clone(), added(r))).collect(),
            }
        });
        Ok(used.judge(before.as_ref()))
    }

    /// Takes the lock named `key`, waiting up to [`LOCK_WAIT`] for another holder; returns the owner token.
    pub async fn lock(&self, key: &str) -> Result<String, IamError> {
        let token = format!("{:x}", rand_token());
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(format!("lock#{key}")))
                .item("sk", AttributeValue::S("lock".to_owned()))
                .item("owner", AttributeValue::S(token.clone()))
                .item("expires_at", AttributeValue::N((now + LOCK_SECONDS).to_string()))
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match result {
                Ok(_) if self.still_owner(key, &token).await? => return Ok(token),
                Ok(_) => {}
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(classify("dynamodb:PutItem", &e)),
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(IamError {
                    kind: IamErrorKind::Transient,
                    action: "dynamodb:PutItem".to_owned(),
                    message: format!("lock {key} is held by another remediation; retrying later"),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Whether `token` still holds the lock a moment after taking it. DynamoDB's conditional write is atomic and
    /// needs no such check; moto's server is not (it handles requests on threads without locking its tables), so
    /// two concurrent conditional puts can both succeed there. Reading the owner back after a pause, with a
    /// strongly consistent read, lets the earlier writer see that it lost and wait like any other.
    async fn still_owner(&self, key: &str, token: &str) -> Result<bool, IamError> {
        tokio::time::sleep(LOCK_SETTLE).await;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("lock#{key}")))
            .key("sk", AttributeValue::S("lock".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", &e))?;
        Ok(out.item().and_then(|item| item.get("owner")).and_then(|v| v.as_s().ok()).is_some_and(|o| o == token))
    }

    /// Releases a lock if this token still holds it (a lock that expired and was taken by another stays).
    pub async fn unlock(&self, key: &str, token: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("lock#{key}")))
            .key("sk", AttributeValue::S("lock".to_owned()))
            .condition_expression("#owner = :token")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
            .send()
            .await;
        if let Err(e) = result {
            if !is_condition_failure(&e) {
                tracing::warn!(lock = key, error = %classify("dynamodb:DeleteItem", &e), "lock not released; it expires by itself");
            }
        }
    }
}

/// A counter's evidence events, in the order they were counted.
fn read_evidence(item: &std::collections::HashMap<String, AttributeValue>) -> Vec<EvidenceEvent> {
    let Some(Ok(list)) = item.get("ev").map(AttributeValue::as_l) else { return Vec::new() };
    list.iter()
        .filter_map(|e| e.as_m().ok())
        .map(|m| {
            let field = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            EvidenceEvent { id: field("id"), call: field("call"), time: field("time") }
        })
        .collect()
}

/// A registry item's session; an unreadable one (written by an incompatible version) counts as absent.
fn read_session(item: &std::collections::HashMap<String, AttributeValue>) -> Option<Session> {
    let body = item.get("body")?.as_s().ok()?;
    serde_json::from_str(body).ok()
}

fn is_condition_failure<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(error, aws_sdk_dynamodb::error::SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

/// A token unique to this holder: time, process and a counter, hashed (no secret needed: it only tells holders
/// apart).
fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(OffsetDateTime::now_utc().unix_timestamp_nanos().unsigned_abs());
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}
