//! Reports of one digest or alert, grouped by fingerprint.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::{Fingerprint, Report};

/// The reports of one violation (one fingerprint) in a batch.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) count: u64,
    pub(super) first_seen: Timestamp,
    pub(super) last_seen: Timestamp,
    /// The first report of the group, shown as the example.
    pub(super) example: Report,
}

/// Reports grouped by fingerprint, in order of first appearance. A batch is bounded by its
/// sink's queue, so the groups are too.
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    index: HashMap<Fingerprint, usize>,
    groups: Vec<Group>,
    reports: u64,
}

impl Groups {
    /// Counts a report in its group, starting the group if needed.
    pub(super) fn add(&mut self, report: &Report) {
        self.reports += 1;
        if let Some(&i) = self.index.get(&report.fingerprint) {
            let group = &mut self.groups[i];
            group.count += 1;
            group.first_seen = group.first_seen.min(report.received_at);
            group.last_seen = group.last_seen.max(report.received_at);
        } else {
            self.index.insert(report.fingerprint, self.groups.len());
            self.groups.push(Group {
                count: 1,
                first_seen: report.received_at,
                last_seen: report.received_at,
                example: report.clone(),
            });
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.reports == 0
    }

    /// Every report counted.
    pub(super) fn reports(&self) -> u64 {
        self.reports
    }

    /// The fingerprints of the groups.
    pub(super) fn fingerprints(&self) -> impl Iterator<Item = Fingerprint> + '_ {
        self.groups.iter().map(|group| group.example.fingerprint)
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
}

impl<'a> FromIterator<&'a Report> for Groups {
    fn from_iter<T: IntoIterator<Item = &'a Report>>(reports: T) -> Self {
        let mut groups = Self::default();
        for report in reports {
            groups.add(report);
        }
        groups
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
        let reports: Vec<Report> = [
            "https://a.example/1",
            "https://b.example/",
            "https://a.example/2",
            "https://a.example/3",
        ]
        .into_iter()
        .map(report)
        .collect();
        let groups: Groups = reports.iter().collect();
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
        assert_eq!(groups.fingerprints().count(), 2);
    }
}
