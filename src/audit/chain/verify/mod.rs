//! `pgtrail verify`: walks a trail's chain again, from JSON Lines files
//! (`jsonl`) or ClickHouse (`clickhouse`, its rows made canonical bytes by
//! `rowbinary`), checks checkpoints against the public key and the copies
//! kept outside the trail, and reports what does not hold (`findings`).
//! The walk itself is `walk`; `item` is what it needs of a record.

pub mod clickhouse;
pub mod findings;
pub mod item;
pub mod jsonl;
pub mod rowbinary;
pub mod walk;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use findings::{Finding, InstanceReport, Kind, Report, Severity};
use item::Item;

use super::signing::PublicKey;

/// What to verify and against what.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    pub instance: Option<String>,
    /// Seqs from and to (inclusive).
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub public_key: Option<PublicKey>,
    /// Copies of the checkpoints kept outside the trail.
    pub checkpoints: Vec<PathBuf>,
}

impl VerifyOptions {
    fn wants(&self, instance: &str, seq: u64) -> bool {
        self.instance.as_deref().is_none_or(|i| i == instance)
            && self.from.is_none_or(|f| seq >= f)
            && self.to.is_none_or(|t| seq <= t)
    }

    /// The outside checkpoints, by instance.
    fn outside(&self) -> std::io::Result<BTreeMap<String, Vec<Item>>> {
        let mut out: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        for path in &self.checkpoints {
            for item in jsonl::read_file(path)? {
                let item = item?;
                if self.wants(&item.instance_id, item.seq) {
                    out.entry(item.instance_id.clone()).or_default().push(item);
                }
            }
        }
        Ok(out)
    }
}

/// Walks the lines of a JSON Lines trail (each instance's records in seq
/// order, or nearly) per instance. A line that is no record is reported
/// with the instance of the record before it.
pub fn walk_all(
    lines: impl Iterator<Item = std::io::Result<jsonl::Line>>,
    options: &VerifyOptions,
) -> std::io::Result<Report> {
    let mut outside = options.outside()?;
    let mut walkers: BTreeMap<String, walk::Walker<'_>> = BTreeMap::new();
    let mut last_instance = String::from("(unknown)");
    for line in lines {
        let item = match line? {
            jsonl::Line::Record(item) => item,
            jsonl::Line::Malformed { at, why, torn } => {
                if options
                    .instance
                    .as_deref()
                    .is_some_and(|i| i != last_instance)
                {
                    continue;
                }
                let walker = walkers.entry(last_instance.clone()).or_insert_with(|| {
                    walk::Walker::new(&last_instance, options.public_key.as_ref(), Vec::new())
                });
                walker.malformed(&at, &why, torn);
                continue;
            }
        };
        last_instance.clone_from(&item.instance_id);
        if !options.wants(&item.instance_id, item.seq) {
            continue;
        }
        let walker = match walkers.get_mut(&item.instance_id) {
            Some(w) => w,
            None => {
                let cps = outside.remove(&item.instance_id).unwrap_or_default();
                walkers.entry(item.instance_id.clone()).or_insert_with(|| {
                    walk::Walker::new(&item.instance_id, options.public_key.as_ref(), cps)
                })
            }
        };
        walker.push(item);
    }
    // Instances that only the outside copy names: the whole trail is gone.
    for (instance, cps) in outside {
        walkers.insert(
            instance.clone(),
            walk::Walker::new(&instance, options.public_key.as_ref(), cps),
        );
    }
    Ok(Report::new(
        walkers.into_values().map(walk::Walker::finish).collect(),
    ))
}

#[cfg(test)]
mod tests;
