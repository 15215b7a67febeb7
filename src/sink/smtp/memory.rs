//! The bounded memory of fingerprints already mailed in `new_only` mode.

use std::collections::{HashMap, VecDeque};

use crate::Fingerprint;

/// Remembers up to `capacity` fingerprints, forgetting the least recently seen first, so a
/// violation that keeps happening stays known however many others come and go.
#[derive(Debug)]
pub(super) struct SeenFingerprints {
    /// Fingerprint -> the tick it was last seen at.
    last_seen: HashMap<Fingerprint, u64>,
    /// Every sighting in order; entries whose tick is no longer current are skipped when
    /// evicting, which keeps each sighting O(1).
    order: VecDeque<(Fingerprint, u64)>,
    tick: u64,
    capacity: usize,
}

impl SeenFingerprints {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            last_seen: HashMap::new(),
            order: VecDeque::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Whether the fingerprint is remembered (without counting a sighting).
    pub(super) fn contains(&self, fingerprint: Fingerprint) -> bool {
        self.last_seen.contains_key(&fingerprint)
    }

    /// Records a sighting; returns whether the fingerprint was new.
    pub(super) fn see(&mut self, fingerprint: Fingerprint) -> bool {
        self.tick += 1;
        let new = self.last_seen.insert(fingerprint, self.tick).is_none();
        self.order.push_back((fingerprint, self.tick));
        while self.last_seen.len() > self.capacity {
            let Some((old, tick)) = self.order.pop_front() else {
                break;
            };
            if self.last_seen.get(&old) == Some(&tick) {
                self.last_seen.remove(&old);
            }
        }
        if self.order.len() > self.capacity.saturating_mul(4).max(64) {
            self.compact();
        }
        new
    }

    /// Drops the stale sightings from `order`.
    fn compact(&mut self) {
        let last_seen = &self.last_seen;
        self.order
            .retain(|(fingerprint, tick)| last_seen.get(fingerprint) == Some(tick));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last_seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_least_recently_seen() {
        let mut seen = SeenFingerprints::new(2);
        assert!(seen.see(Fingerprint(1)));
        assert!(seen.see(Fingerprint(2)));
        assert!(!seen.see(Fingerprint(1)));
        // 2 is now the least recently seen.
        assert!(seen.see(Fingerprint(3)));
        assert!(!seen.see(Fingerprint(1)));
        assert!(seen.see(Fingerprint(2)));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_steady_violation_stays_known_and_order_stays_bounded() {
        let mut seen = SeenFingerprints::new(3);
        assert!(seen.see(Fingerprint(0)));
        for i in 1..10_000 {
            assert!(!seen.see(Fingerprint(0)));
            seen.see(Fingerprint(i));
        }
        assert!(seen.order.len() <= 64 + 1);
    }
}
