//! Reports of one digest or alert, grouped by fingerprint.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::{Fingerprint, Report};

/// The reports of one violation (one fingerprint) seen in a window.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) count: u64,
    pub(super) first_seen: Timestamp,
    pub(super) last_seen: Timestamp,
    /// The first report of the group, shown as the example.
    pub(super) example: Report,
}

/// Reports grouped by fingerprint, in order of first appearance, holding at most `max_groups`
/// groups: reports of further violations are only counted, so a flood of distinct reports
/// cannot exhaust memory.
#[derive(Debug, Clone)]
pub(super) struct Groups {
    index: HashMap<Fingerprint, usize>,
    groups: Vec<Group>,
    reports: u64,
    overflow_reports: u64,
    max_groups: usize,
}

impl Groups {
    pub(super) fn new(max_groups: usize) -> Self {
        Self {
            index: HashMap::new(),
            groups: Vec::new(),
            reports: 0,
            overflow_reports: 0,
            max_groups: max_groups.max(1),
        }
    }

    /// Counts a report in its group, starting the group if there is room.
    pub(super) fn add(&mut self, report: &Report) {
        self.reports += 1;
        if let Some(&i) = self.index.get(&report.fingerprint) {
            let group = &mut self.groups[i];
            group.count += 1;
            group.first_seen = group.first_seen.min(report.received_at);
            group.last_seen = group.last_seen.max(report.received_at);
        } else if self.groups.len() < self.max_groups {
            self.index.insert(report.fingerprint, self.groups.len());
            self.groups.push(Group {
                count: 1,
                first_seen: report.received_at,
                last_seen: report.received_at,
                example: report.clone(),
            });
        } else {
            self.overflow_reports += 1;
        }
    }

    /// Whether a group for this fingerprint is open.
    pub(super) fn contains(&self, fingerprint: Fingerprint) -> bool {
        self.index.contains_key(&fingerprint)
    }

    /// Whether there is room for another group.
    pub(super) fn has_room(&self) -> bool {
        self.groups.len() < self.max_groups
    }

    pub(super) fn is_empty(&self) -> bool {
        self.reports == 0
    }

    /// Every report counted, overflow included.
    pub(super) fn reports(&self) -> u64 {
        self.reports
    }

    /// Reports not kept in a group because there were already `max_groups` groups.
    pub(super) fn overflow_reports(&self) -> u64 {
        self.overflow_reports
    }

    /// The groups, most frequent first, then in order of first appearance.
    pub(super) fn sorted(&self) -> Vec<&Group> {
        let mut sorted: Vec<&Group> = self.groups.iter().collect();
        // A stable sort keeps first-appearance order among equal counts.
        sorted.sort_by_key(|group| std::cmp::Reverse(group.count));
        sorted
    }

    /// When the first and last reports were received.
    pub(super) fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.groups.iter().map(|g| g.first_seen).min()?;
        let last = self.groups.iter().map(|g| g.last_seen).max()?;
        Some((first, last))
    }

    /// Takes the groups out, leaving an empty set with the same limit.
    pub(super) fn take(&mut self) -> Self {
        std::mem::replace(self, Self::new(self.max_groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(blocked: &str) -> Report {
        Report::csp("https://example.com/page", "img-src", blocked)
    }

    #[test]
    fn groups_by_fingerprint_and_counts() {
        let mut groups = Groups::new(10);
        for blocked in [
            "https://a.example/1",
            "https://b.example/",
            "https://a.example/2",
            "https://a.example/3",
        ] {
            groups.add(&report(blocked));
        }
        assert_eq!(groups.reports(), 4);
        let sorted = groups.sorted();
        assert_eq!(sorted.len(), 2);
        assert_eq!(sorted[0].count, 3);
        assert_eq!(
            sorted[0].example.blocked_uri.as_deref(),
            Some("https://a.example/1")
        );
        assert_eq!(sorted[1].count, 1);
        assert!(sorted[0].first_seen <= sorted[0].last_seen);
    }

    #[test]
    fn counts_past_the_group_limit_without_keeping_them() {
        let mut groups = Groups::new(2);
        for blocked in [
            "https://a.example/",
            "https://b.example/",
            "https://c.example/",
            "https://a.example/",
        ] {
            groups.add(&report(blocked));
        }
        assert_eq!(groups.sorted().len(), 2);
        assert_eq!(groups.reports(), 4);
        assert_eq!(groups.overflow_reports(), 1);
        assert!(!groups.has_room());
        let taken = groups.take();
        assert!(groups.is_empty());
        assert_eq!(taken.reports(), 4);
    }
}
