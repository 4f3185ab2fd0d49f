//! The regions each agent identity has used, for `agent-new-region`: an agent that starts calling AWS in a region
//! it never used is worth a look (an attacker holding its credentials works where nobody watches).
//!
//! Remembered per agent identity, the most stable name a record gives: the role ARN (every run of an agent on
//! that role), else the source identity, else the user's ARN. One item per identity: the set of regions, when the
//! identity was first seen, and for each region the event that added it (so that a retried event is answered as
//! the first time). The memory lasts [`MEMORY_DAYS`] after the identity's last call that reached the detector.
//!
//! Learning: for the identity's first `learning_days` (7 by default; counted from the first call seen), regions are
//! recorded silently: a new deployment of an agent settles into its regions in days, and paging for each of them
//! would teach people to ignore the rule. Afterwards, each region not in the set pages once.
//!
//! Global services are not a region's use: IAM, Organizations, CloudFront, Route 53, and the others CloudTrail
//! records in `us-east-1` whatever the caller's region, and STS's global endpoint (`sts.amazonaws.com`, recorded in
//! `us-east-1`); STS's regional endpoint in `us-east-1` is a use of `us-east-1`.

use std::collections::HashMap;
use std::sync::Mutex;

/// How long an identity's regions are remembered after its last call, in days (the item's TTL).
pub const MEMORY_DAYS: i64 = 90;

/// Services whose calls CloudTrail records in `us-east-1` whatever the caller's region (global services).
const GLOBAL_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "organizations.amazonaws.com",
    "cloudfront.amazonaws.com",
    "route53.amazonaws.com",
    "route53domains.amazonaws.com",
    "support.amazonaws.com",
    "budgets.amazonaws.com",
    "ce.amazonaws.com",
    "account.amazonaws.com",
    "health.amazonaws.com",
    "shield.amazonaws.com",
    "waf.amazonaws.com",
    "globalaccelerator.amazonaws.com",
    "billingconsole.amazonaws.com",
    "signin.amazonaws.com",
];

/// One call's use of a region by an agent identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegionUse {
    /// The identity remembered: role ARN, else source identity, else user ARN.
    pub identity: String,
    /// `awsRegion`.
    pub region: String,
    /// The event's time, epoch seconds.
    pub at: i64,
    /// `eventID` (a retried event is answered as before).
    pub event_id: String,
    /// How long after the identity is first seen regions are learnt silently, in seconds.
    pub learning: i64,
}

/// A region the identity had not used, after its learning period: the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegion {
    /// The new region.
    pub region: String,
    /// The regions it used before, sorted.
    pub known: Vec<String>,
    /// When the identity was first seen, epoch seconds.
    pub first_seen: i64,
}

/// The answer to a [`RegionUse`]: `Some` only for the first use of a region after learning.
pub type Novelty = Option<NewRegion>;

/// What the identity's memory held before this call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    /// When the identity was first seen.
    pub first_seen: i64,
    /// Its regions, each with the event that added it.
    pub regions: Vec<(String, String)>,
}

impl RegionUse {
    /// Judges this use against what was remembered before it (`None`: the identity was unknown, and learning
    /// starts now). A retry of the event that added the region is answered as that event was.
    pub fn judge(&self, before: Option<&Remembered>) -> Novelty {
        let before = before?;
        match before.regions.iter().find(|(region, _)| *region == self.region) {
            Some((_, added_by)) if *added_by != self.event_id || self.event_id.is_empty() => return None,
            _ => {}
        }
        if self.at - before.first_seen < self.learning {
            return None;
        }
        let mut known: Vec<String> =
            before.regions.iter().filter(|(r, _)| *r != self.region).map(|(r, _)| r.clone()).collect();
        known.sort();
        Some(NewRegion { region: self.region.clone(), known, first_seen: before.first_seen })
    }
}

/// The region this agent's call uses, if it is a regional call with an identity to remember.
pub fn observe(
    record: &crate::event::CloudTrailRecord,
    actor: &crate::event::Actor,
    learning_days: u32,
) -> Option<RegionUse> {
    let region = record.aws_region.as_deref().filter(|r| !r.is_empty())?;
    if global(record) {
        return None;
    }
    let user = actor.arn.as_deref().filter(|_| actor.kind == "IAMUser");
    let identity = actor.role_arn.as_deref().or(actor.source_identity.as_deref()).or(user)?;
    Some(RegionUse {
        identity: identity.to_owned(),
        region: region.to_owned(),
        at: crate::session::parse_time(record.event_time.as_deref()?)?,
        event_id: record.event_id.clone().unwrap_or_default(),
        learning: i64::from(learning_days) * 86_400,
    })
}

/// Whether the call went to a global service (recorded in `us-east-1` whatever the caller's region).
pub fn global(record: &crate::event::CloudTrailRecord) -> bool {
    if GLOBAL_SOURCES.contains(&record.event_source.as_str()) {
        return true;
    }
    // STS: the global endpoint is recorded in us-east-1; the regional one names its region in the host.
    record.event_source == "sts.amazonaws.com"
        && record.aws_region.as_deref() == Some("us-east-1")
        && record.host_header().is_none_or(|host| !host.starts_with("sts.us-east-1."))
}

/// The regions in memory (the offline scanner): the same semantics as the detector's table.
#[derive(Debug, Default)]
pub struct Regions(Mutex<HashMap<String, Remembered>>);

impl Regions {
    /// Records one use; the page when it is the first use of a region after learning.
    pub fn see(&self, used: &RegionUse) -> Novelty {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.get(&used.identity).cloned();
        let answer = used.judge(before.as_ref());
        let entry = map
            .entry(used.identity.clone())
            .or_insert_with(|| Remembered { first_seen: used.at, ..Remembered::default() });
        if !entry.regions.iter().any(|(r, _)| *r == used.region) {
            entry.regions.push((used.region.clone(), used.event_id.clone()));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(region: &str, day: i64, id: &str) -> RegionUse {
        RegionUse {
            identity: "arn:aws:iam::123456789012:role/agent-ops".to_owned(),
            region: region.to_owned(),
            at: 1_700_000_000 + day * 86_400,
            event_id: id.to_owned(),
            learning: 7 * 86_400,
        }
    }

    #[test]
    fn regions_are_learnt_for_seven_days_then_each_new_one_pages_once() {
        let regions = Regions::default();
        assert_eq!(regions.see(&used("eu-west-1", 0, "a")), None, "the first call ever is learnt");
        assert_eq!(regions.see(&used("eu-central-1", 6, "b")), None, "day 6: still learning");
        assert_eq!(regions.see(&used("eu-west-1", 8, "c")), None, "a known region");
        let page = regions.see(&used("ap-southeast-2", 8, "d")).unwrap();
        assert_eq!(page.known, ["eu-central-1", "eu-west-1"]);
        assert_eq!(regions.see(&used("ap-southeast-2", 9, "e")), None, "once");
        // The detector's retry of the page's event is answered again (judged against the memory before it).
        let before = Remembered { first_seen: 1_700_000_000, regions: vec![("ap-southeast-2".into(), "d".into())] };
        assert!(used("ap-southeast-2", 8, "d").judge(Some(&before)).is_some());
        assert!(used("ap-southeast-2", 8, "x").judge(Some(&before)).is_none());
    }
}
