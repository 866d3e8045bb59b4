//! Sharding a batch across machines: `--shard K/N` keeps the inputs whose id hashes to shard K.
//!
//! The choice depends on the input's id alone (its path inside the folder given, or a feed's row
//! id), never on the other inputs or their order, so every copy of a job agrees on the split without
//! talking to the others, and adding inputs moves none of the existing ones. The id's sha256 goes
//! through Lamping and Veach's jump consistent hash, so that changing N moves only about 1/N of the
//! inputs (a plain `hash % N` would move almost all of them).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The environment variable a Kubernetes Indexed Job sets in each pod: the pod's 0-based index.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// One share of a sharded run: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0}: expected K/N with 1 <= K <= N, e.g. 2/8")]
    Syntax(String),
    #[error("--shards {count}: the shard comes from JOB_COMPLETION_INDEX, which is not set")]
    NoIndex { count: u32 },
    #[error("JOB_COMPLETION_INDEX={value}: expected a number from 0 to {} for --shards {count}", .count.saturating_sub(1))]
    BadIndex { value: String, count: u32 },
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count >= 1 && (1..=count).contains(&index)).then_some(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job's pod: `--shards N` with the 0-based
    /// `JOB_COMPLETION_INDEX` (passed in, so callers and tests choose where it comes from).
    pub fn from_completion_index(count: u32, value: Option<&str>) -> Result<Shard, ShardError> {
        let value = value.ok_or(ShardError::NoIndex { count })?;
        let bad = || ShardError::BadIndex {
            value: value.to_string(),
            count,
        };
        let zero_based: u32 = value.trim().parse().map_err(|_| bad())?;
        zero_based
            .checked_add(1)
            .and_then(|index| Shard::new(index, count))
            .ok_or_else(bad)
    }

    /// Whether the input with this id belongs to this shard.
    pub fn contains(&self, id: &[u8]) -> bool {
        shard_of(id, self.count) == self.index
    }

    /// For file names: `shard-2-of-8`.
    pub fn file_tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(syntax)?;
        let k: u32 = k.trim().parse().map_err(|_| syntax())?;
        let n: u32 = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(k, n).ok_or_else(syntax)
    }
}

/// The shard (1-based, of `count`) an input id falls in.
pub fn shard_of(id: &[u8], count: u32) -> u32 {
    let digest = Sha256::digest(id);
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    jump_consistent_hash(u64::from_le_bytes(key), count.max(1)) + 1
}

/// Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014): a bucket in
/// 0..buckets such that going from n to n+1 buckets moves only the keys that land in the new one.
fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // b is in 0..buckets, which fits u32.
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("catalogue/sku-{i:05}.jpg")).collect()
    }

    #[test]
    fn every_input_falls_in_exactly_one_shard() {
        let ids = ids(2000);
        for count in [1u32, 2, 3, 7, 16] {
            let mut per_shard = vec![0usize; count as usize];
            for id in &ids {
                let owners: Vec<u32> = (1..=count)
                    .filter(|&k| Shard::new(k, count).expect("valid").contains(id.as_bytes()))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} of {count}: {owners:?}");
                per_shard[(owners[0] - 1) as usize] += 1;
            }
            // Not a timing: a fixed set of ids, so a fixed split; it must not starve any shard.
            let fair = ids.len() / count as usize;
            for (k, &n) in per_shard.iter().enumerate() {
                assert!(
                    n * 10 >= fair * 7 && n * 10 <= fair * 13,
                    "shard {}/{count} holds {n} of {} inputs: {per_shard:?}",
                    k + 1,
                    ids.len()
                );
            }
        }
    }

    #[test]
    fn the_split_is_stable_and_a_new_shard_takes_only_its_share() {
        let ids = ids(3000);
        // The same id always goes to the same shard, whatever else is in the run.
        let alone = shard_of(b"catalogue/sku-00042.jpg", 5);
        assert_eq!(alone, shard_of(ids[42].as_bytes(), 5));
        // Going from 4 to 5 machines moves only what the fifth takes (about a fifth).
        let moved: Vec<&String> = ids
            .iter()
            .filter(|id| shard_of(id.as_bytes(), 4) != shard_of(id.as_bytes(), 5))
            .collect();
        assert!(
            moved.iter().all(|id| shard_of(id.as_bytes(), 5) == 5),
            "only moves into the new shard"
        );
        assert!(
            moved.len() * 10 < ids.len() * 3,
            "{} of {} moved",
            moved.len(),
            ids.len()
        );
    }

    #[test]
    fn shards_are_parsed_strictly_and_read_from_an_indexed_job() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            Shard::from_completion_index(3, Some("0")),
            Ok(Shard { index: 1, count: 3 })
        );
        assert_eq!(
            Shard::from_completion_index(3, Some("2")),
            Ok(Shard { index: 3, count: 3 })
        );
        assert!(matches!(
            Shard::from_completion_index(3, Some("3")),
            Err(ShardError::BadIndex { .. })
        ));
        assert_eq!(
            Shard::from_completion_index(3, None),
            Err(ShardError::NoIndex { count: 3 })
        );
        assert_eq!(Shard { index: 2, count: 8 }.file_tag(), "shard-2-of-8");
    }
}
