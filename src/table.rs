//! A bounded map for per-client and per-fingerprint state, split into shards so that no lock
//! is shared by every request, which forgets the entries that matter least when it is full
//! and never empties itself.
//!
//! Shards are picked with a randomly keyed hash, so a client cannot aim every entry it makes
//! at one shard. A full shard first forgets the entries that are spent (a new entry would be
//! the same), then those worth least, until an eighth of it is free: the scan is paid once
//! per eighth of a shard, not on every new key.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What an entry is worth keeping.
pub(crate) trait Worth {
    /// `None` when forgetting the entry at `now` (a [`Clock`] reading) loses nothing; else
    /// how much it would lose (the least worth is forgotten first).
    fn worth(&self, now: u64) -> Option<u64>;
}

/// Nanoseconds since a table's owner was made: plain integers, so that no setting, however
/// large, can overflow an `Instant` (they saturate after 584 years).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    pub(crate) fn at(self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// At most `max_entries` entries, in shards of their own lock.
#[derive(Debug)]
pub(crate) struct Table<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    per_shard: usize,
    hasher: RandomState,
}

/// Shards hold at least this many entries, so that small tables are not split so fine that
/// one busy shard evicts while others are empty.
const MIN_PER_SHARD: usize = 256;
const MAX_SHARDS: usize = 64;

impl<K: Hash + Eq + Copy, V: Worth> Table<K, V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        let shards = (max_entries / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_entries / shards,
            hasher: RandomState::new(),
        }
    }

    /// Runs `f` on the entry of `key`, made by `new` when there is none; a full shard
    /// first makes room.
    pub(crate) fn with<R>(
        &self,
        key: K,
        now: u64,
        new: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        // The shard count is at most 64: the cast cannot truncate it.
        let shard = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        let mut map = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            make_room(&mut map, self.per_shard, now);
        }
        f(map.entry(key).or_insert_with(new))
    }

    /// How many entries are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Forgets the spent entries of a full shard, then the least worth, until an eighth is free.
fn make_room<K: Hash + Eq + Copy, V: Worth>(map: &mut HashMap<K, V>, per_shard: usize, now: u64) {
    let keep = per_shard - (per_shard / 8).max(1);
    map.retain(|_, entry| entry.worth(now).is_some());
    if map.len() <= keep {
        return;
    }
    let mut ranked: Vec<(u64, K)> = map
        .iter()
        .map(|(key, entry)| (entry.worth(now).unwrap_or(0), *key))
        .collect();
    let forget = map.len() - keep;
    ranked.select_nth_unstable_by_key(forget - 1, |(worth, _)| *worth);
    for (_, key) in &ranked[..forget] {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worth its value; spent at 0.
    struct Value(u64);

    impl Worth for Value {
        fn worth(&self, _: u64) -> Option<u64> {
            (self.0 > 0).then_some(self.0)
        }
    }

    #[test]
    fn stays_within_its_bound() {
        let now = 0;
        for max in [0, 1, 2, 7, 255, 256, 1_000, 20_000] {
            let table = Table::new(max);
            for key in 0..(3 * max as u64 + 10) {
                table.with(key, now, || Value(key + 1), |_| ());
                if key % 97 == 0 {
                    assert!(table.len() <= max.max(1), "{max}: {}", table.len());
                }
            }
            assert!(table.len() <= max.max(1), "{max}: {}", table.len());
        }
    }

    #[test]
    fn forgets_the_spent_then_the_least_worth() {
        let now = 0;
        // One shard of 256.
        let table = Table::new(256);
        table.with(u64::MAX, now, || Value(1_000_000), |_| ());
        for key in 0..10_000 {
            // Every third entry is spent at once.
            table.with(key, now, || Value(if key % 3 == 0 { 0 } else { 1 }), |_| ());
        }
        let kept = table.with(u64::MAX, now, || Value(0), |v| v.0);
        assert_eq!(kept, 1_000_000, "the entry worth most was forgotten");
    }
}
