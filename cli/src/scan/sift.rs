//! One read of a plain JSON-lines file for both passes.
//!
//! The first pass must read every input before the evaluating pass starts (the registry must be complete), and on
//! most lines the evaluating pass only runs the pre-filter, which needs no registry but for one question: whether
//! the line's access key is a registered agent session's ([`Prefilter::reads_access_keys`]). So, for a block of a
//! plain file (one that can be read again at an offset), the first pass also runs the pre-filter without the
//! registry and keeps what the evaluating pass needs ([`Sifted`]): the lines it passes on, and the access keys
//! written in the block. Once the registry is known, a block holding none of its keys has exactly the same lines
//! passed on with the registry as without it, and only those are read again, by offset; any other block (a
//! registered or unreadable key, or too many lines passed on) is read again whole and judged as before.
//! A file changed between the passes is read as it is then: its lines may fail to parse, and are reported so.
//!
//! The sift also keeps, rather than parses, the issuing calls that show no agent signal ([`Deferred`]): the
//! registry pass reads them only if a key they name turns out to be an agent session's.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;

use trailguard_core::event::{read_lines, Reading};
use trailguard_core::prefilter::Prefilter;
use trailguard_core::session::Registry;

/// Above this share of a block's bytes passed on, the block is read again whole: one read is cheaper than many.
const PICKED_SHARE: usize = 4;

/// What the first pass learnt of one block of a plain JSON-lines file.
#[derive(Debug)]
pub struct Sifted {
    /// Where the block starts in its file, and its length.
    pub at: u64,
    pub len: usize,
    /// How many lines it holds, as [`read_lines`] counts them.
    pub lines: usize,
    /// Non-empty lines the pre-filter passed over without the registry.
    passed_over: usize,
    /// The lines it passed on, in order; `None` when they are too many to read one by one.
    picked: Option<Vec<Picked>>,
    /// The hashes of the access keys written in the block (sorted), when a registry may change a verdict.
    keys: Vec<u64>,
    /// Some access key could not be read literally.
    opaque_key: bool,
}

/// One line to read again: where it starts in its block, its length and its number in the block (from 1).
#[derive(Debug, Clone, Copy)]
struct Picked {
    offset: usize,
    len: usize,
    number: usize,
}

/// A line that may issue credentials but shows no agent signal
/// ([`trailguard_core::prefilter::Verdict::shows_agent`]): its session is an agent's only if its caller is, so it is
/// read (again, by offset) only if one of the access keys it names is an agent session's.
#[derive(Debug)]
pub struct Deferred {
    /// Where the line is in its file, and its length.
    pub at: u64,
    pub len: usize,
    /// The hashes of the access keys written in it (the caller's among them).
    pub keys: Vec<u64>,
}

/// Sifts one block that starts at `at` in its file. `issuing` is called with each line that may issue credentials
/// ([`trailguard_core::prefilter::Verdict::may_issue`]) and shows an agent signal (or whose keys cannot all be
/// read); the others are returned, deferred.
pub fn sift<'t>(
    prefilter: &Prefilter,
    block: &'t [u8],
    at: u64,
    mut issuing: impl FnMut(&'t [u8]),
) -> (Sifted, Vec<Deferred>) {
    let mut deferred = Vec::new();
    let (mut number, mut offset, mut passed_over, mut picked, mut picked_bytes) = (0, 0, 0, Vec::new(), 0);
    let (mut keys, mut opaque_key) = (Vec::new(), false);
    let mut last_key = None;
    prefilter.lines(block, |line| {
        number += 1;
        let start = offset;
        offset += line.text.len() + 1;
        if line.text.trim_ascii().is_empty() {
            return;
        }
        for key in line.access_keys() {
            match key {
                // A session's calls come in runs: the same key as the line before is not hashed again.
                Some(key) if last_key == Some(key) => {}
                Some(key) => {
                    keys.push(hash(key));
                    last_key = Some(key);
                }
                None => opaque_key = true,
            }
        }
        if line.verdict.may_issue {
            let keys: Option<Vec<u64>> = line.access_keys().map(|key| key.map(hash)).collect();
            match keys.filter(|_| !line.verdict.shows_agent && prefilter.reads_access_keys()) {
                Some(keys) => deferred.push(Deferred { at: at + start as u64, len: line.text.len(), keys }),
                None => issuing(line.text),
            }
        }
        if line.verdict.may_trigger {
            picked.push(Picked { offset: start, len: line.text.len(), number });
            picked_bytes += line.text.len();
        } else {
            passed_over += 1;
        }
    });
    keys.sort_unstable();
    keys.dedup();
    let picked = (picked_bytes * PICKED_SHARE <= block.len()).then_some(picked);
    (Sifted { at, len: block.len(), lines: number - 1, passed_over, picked, keys, opaque_key }, deferred)
}

/// A key's hash, the same in every thread.
fn hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(key)
}

/// The registry's access keys, as the sifts hold them.
pub struct RegisteredKeys {
    hashes: HashSet<u64>,
}

impl RegisteredKeys {
    pub fn new(registry: &Registry) -> RegisteredKeys {
        RegisteredKeys { hashes: registry.sessions().map(|s| hash(s.access_key_id.as_bytes())).collect() }
    }

    /// Whether a deferred line names one of the keys.
    pub fn named_in(&self, deferred: &Deferred) -> bool {
        deferred.keys.iter().any(|key| self.hashes.contains(key))
    }
}

/// Reads one deferred line again from `file`.
pub fn read_deferred(file: &std::fs::File, deferred: &Deferred) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    read_at(file, deferred.at, deferred.len, &mut line)?;
    Ok(line)
}

impl Sifted {
    /// Whether the block must be read again whole: the registry may pass on lines the sift passed over (the
    /// block holds one of its keys, or a key that could not be read), or the lines passed on are many.
    pub fn whole(&self, registered: &RegisteredKeys) -> bool {
        let registry_matters = !registered.hashes.is_empty()
            && (self.opaque_key || self.keys.iter().any(|k| registered.hashes.contains(k)));
        self.picked.is_none() || registry_matters
    }

    /// Reads the block again from `file` (into `buffer`), `whole` or only the lines passed on, and reads its records
    /// with `prefilter` (the registry's). The lines passed on alone give the same reading as the whole block,
    /// when no other line can be passed on ([`Sifted::whole`] is `false`).
    pub fn read_again(
        &self,
        file: &std::fs::File,
        whole: bool,
        buffer: &mut Vec<u8>,
        prefilter: Option<&Prefilter>,
    ) -> std::io::Result<Reading> {
        if whole {
            read_at(file, self.at, self.len, buffer)?;
            return Ok(read_lines(buffer, 1, prefilter));
        }
        let mut reading = Reading { passed_over: self.passed_over, lines: self.lines, ..Reading::default() };
        for picked in self.picked.iter().flatten() {
            read_at(file, self.at + picked.offset as u64, picked.len, buffer)?;
            let read = read_lines(buffer, picked.number, prefilter);
            reading.records.extend(read.records);
            reading.passed_over += read.passed_over;
        }
        Ok(reading)
    }
}

/// Reads `len` bytes at `at` of `file` into `buffer`.
fn read_at(file: &std::fs::File, at: u64, len: usize, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    buffer.clear();
    buffer.resize(len, 0);
    file.read_exact_at(buffer, at)
}
