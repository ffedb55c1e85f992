//! Statement records by class, for `/metrics`: how many succeeded and
//! failed, and how long they took. Kept by the audit writer after
//! classification, so the relay pays nothing for it.

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One class's counts and durations.
#[derive(Debug, Clone)]
pub struct PerClass {
    pub succeeded: u64,
    pub failed: u64,
    /// Seconds, from the records' `duration_us`.
    pub duration: Histogram,
}

impl Default for PerClass {
    fn default() -> Self {
        PerClass {
            succeeded: 0,
            failed: 0,
            // 50 µs .. 13 s: a cached point query through a local server
            // takes about 100 µs, a report minutes.
            duration: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
        }
    }
}

#[derive(Debug, Default)]
pub struct ClassStats {
    by_class: Mutex<BTreeMap<String, PerClass>>,
}

impl ClassStats {
    /// Counts one statement record. Looks the class up by `&str`, so only
    /// a class's first statement allocates.
    pub fn count(&self, class: &str, success: bool, duration_us: u64) {
        let mut map = self.by_class.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match map.get_mut(class) {
            Some(e) => e,
            None => map.entry(class.to_string()).or_default(),
        };
        if success {
            entry.succeeded += 1;
        } else {
            entry.failed += 1;
        }
        entry.duration.observe(duration_us as f64 / 1e6);
    }

    /// Every class seen so far, in name order (histograms share their
    /// counts with the live ones).
    pub fn snapshot(&self) -> Vec<(String, PerClass)> {
        let map = self.by_class.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_success_with_durations() {
        let stats = ClassStats::default();
        stats.count("read", true, 120);
        stats.count("read", false, 30);
        stats.count("write", true, 2_000_000);
        let snap = stats.snapshot();
        assert_eq!(snap.len(), 2);
        let (class, read) = &snap[0];
        assert_eq!(
            (class.as_str(), read.succeeded, read.failed),
            ("read", 1, 1)
        );
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("d", "d", snap[1].1.duration.clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("d_count 1"), "{text}");
        assert!(text.contains("d_sum 2.0"), "{text}");
    }
}
