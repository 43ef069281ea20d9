//! Which shard of a worker pool a key belongs to: hash, consistent-hash and range partitioning.
//!
//! A pool's routing outlives the process (its membership is stored, and its workers hold the
//! keys they were sent), so the key hash is fixed here, FNV-1a then a SplitMix64 finalizer,
//! never a hasher whose output may change with the Rust release or a random seed. The tests pin
//! its values.
//!
//! - `Hash`: the hash modulo the shard count. Even, and the cheapest, but changing the count
//!   moves almost every key.
//! - `ConsistentHash`: jump consistent hashing (Lamping and Veach, 2014). Going from `n` to
//!   `n + 1` shards moves only the keys the new shard takes, about `1 / (n + 1)` of them, and
//!   going back moves only the last shard's; no ring is kept.
//! - `Range`: the keys in byte order, cut at `n - 1` split points the pool is created with:
//!   shard `i` holds the keys from split point `i - 1` (included) to split point `i`
//!   (excluded). Scaling a range pool needs new split points.

use plexspaces_types::ErrorCode;

use crate::{Error, Result};

/// How a pool spreads its keys over its shards.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioning {
    /// The key hash modulo the shard count.
    Hash,
    /// Jump consistent hashing: scaling moves only the keys that must move.
    ConsistentHash,
    /// Contiguous key ranges, cut at these split points (strictly ascending, one fewer than
    /// the shards).
    Range {
        /// Where each shard after the first begins.
        split_points: Vec<String>,
    },
}

/// The most shards a pool may have.
pub const MAX_SHARDS: u32 = 65_536;

impl Partitioning {
    /// Checks that the partitioning can spread keys over `shards` shards.
    pub fn check(&self, shards: u32) -> Result<()> {
        if shards == 0 || shards > MAX_SHARDS {
            return Err(invalid(format!("a pool has 1 to {MAX_SHARDS} shards, not {shards}")));
        }
        if let Self::Range { split_points } = self {
            let expected = shards as usize - 1;
            if split_points.len() != expected {
                return Err(invalid(format!(
                    "range partitioning over {shards} shards needs {expected} split points, and \
                     {} were given",
                    split_points.len()
                )));
            }
            if let Some(pair) = split_points.windows(2).find(|pair| pair[0] >= pair[1]) {
                return Err(invalid(format!(
                    "split points must be strictly ascending: {:?} comes before {:?}",
                    pair[0], pair[1]
                )));
            }
        }
        Ok(())
    }

    /// The shard (`0..shards`) that holds `key`; `shards` has passed [`Partitioning::check`].
    pub fn shard(&self, key: &str, shards: u32) -> u32 {
        match self {
            Self::Hash => (key_hash(key) % u64::from(shards.max(1))) as u32,
            Self::ConsistentHash => jump(key_hash(key), shards.max(1)),
            Self::Range { split_points } => {
                let at = split_points.partition_point(|point| point.as_str() <= key);
                // `at` counts split points, fewer than `shards` once checked.
                u32::try_from(at).unwrap_or(u32::MAX).min(shards.saturating_sub(1))
            }
        }
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::InvalidArguments, message)
}

/// The stable 64-bit hash of a key: FNV-1a, then SplitMix64's finalizer (FNV alone leaves the
/// low bits of similar keys correlated, and `Hash` takes them modulo the shard count).
pub fn key_hash(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Jump consistent hash: the bucket of `key` among `buckets`, with the property that growing
/// the count by one moves a key only to the new bucket.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut bucket, mut next) = (-1i64, 0i64);
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let scaled = ((bucket + 1) as f64) * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64);
        next = scaled as i64;
    }
    bucket as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("key-{i:05}")).collect()
    }

    #[test]
    fn the_key_hash_never_changes() {
        // Stored pools route by these values: a change here moves every key of every pool.
        // The expected values come from an independent implementation (Python, the same
        // published constants).
        let pinned = [
            ("", 0xf52a_15e9_a9b5_e89b_u64, 3, 16, 81),
            ("key-00000", 0x89a9_bdf3_f636_c337, 3, 0, 96),
            ("order-42", 0x586d_07f2_8908_894f, 7, 8, 118),
        ];
        for (key, hash, hash_of_20, jump_of_20, jump_of_200) in pinned {
            assert_eq!(key_hash(key), hash, "{key:?}");
            assert_eq!(Partitioning::Hash.shard(key, 20), hash_of_20, "{key:?}");
            assert_eq!(Partitioning::ConsistentHash.shard(key, 20), jump_of_20, "{key:?}");
            assert_eq!(Partitioning::ConsistentHash.shard(key, 200), jump_of_200, "{key:?}");
        }
    }

    #[test]
    fn hash_spreads_keys_evenly() {
        let mut counts = [0u32; 20];
        for key in keys(10_000) {
            counts[Partitioning::Hash.shard(&key, 20) as usize] += 1;
        }
        // 500 each on average; a fair spread keeps every shard within 20 % of it.
        assert!(counts.iter().all(|&n| (400..=600).contains(&n)), "{counts:?}");
    }

    #[test]
    fn consistent_hash_moves_only_the_keys_the_new_shard_takes() {
        let all = keys(10_000);
        let moved: Vec<&String> = all
            .iter()
            .filter(|key| {
                Partitioning::ConsistentHash.shard(key, 20)
                    != Partitioning::ConsistentHash.shard(key, 21)
            })
            .collect();
        assert!(moved.iter().all(|key| Partitioning::ConsistentHash.shard(key, 21) == 20));
        // About 1/21 of them (476): far fewer than the ~95 % plain hashing moves.
        assert!((350..=600).contains(&moved.len()), "{} moved", moved.len());
        let rehashed = all
            .iter()
            .filter(|key| Partitioning::Hash.shard(key, 20) != Partitioning::Hash.shard(key, 21));
        assert!(rehashed.count() > 9_000);
    }

    #[test]
    fn ranges_cut_at_their_split_points() {
        let range = Partitioning::Range { split_points: vec!["g".into(), "n".into()] };
        range.check(3).unwrap();
        let shards: Vec<u32> = ["", "a", "fzz", "g", "g0", "mmm", "n", "zzz"]
            .iter()
            .map(|key| range.shard(key, 3))
            .collect();
        assert_eq!(shards, [0, 0, 0, 1, 1, 1, 2, 2]);
    }

    #[test]
    fn bad_shapes_are_refused_with_the_reason() {
        let refused = |partitioning: Partitioning, shards| {
            let error = partitioning.check(shards).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidArguments);
            error.message
        };
        assert!(refused(Partitioning::Hash, 0).contains("1 to 65536 shards"));
        assert!(refused(Partitioning::ConsistentHash, MAX_SHARDS + 1).contains("not 65537"));
        let short = Partitioning::Range { split_points: vec!["m".into()] };
        assert!(refused(short, 3).contains("needs 2 split points, and 1 were given"));
        let unordered = Partitioning::Range { split_points: vec!["n".into(), "g".into()] };
        assert!(refused(unordered, 3).contains("strictly ascending"));
        let repeated = Partitioning::Range { split_points: vec!["g".into(), "g".into()] };
        assert!(refused(repeated, 3).contains("strictly ascending"));
    }

    proptest! {
        #[test]
        fn every_key_lands_on_one_shard_in_range(key in ".{0,40}", shards in 1u32..500) {
            for partitioning in [Partitioning::Hash, Partitioning::ConsistentHash] {
                let shard = partitioning.shard(&key, shards);
                prop_assert!(shard < shards);
                prop_assert_eq!(shard, partitioning.shard(&key, shards));
            }
        }

        #[test]
        fn growing_by_one_moves_a_key_only_to_the_new_shard(key in ".{0,40}", shards in 1u32..500) {
            let before = Partitioning::ConsistentHash.shard(&key, shards);
            let after = Partitioning::ConsistentHash.shard(&key, shards + 1);
            prop_assert!(after == before || after == shards, "{before} -> {after}");
        }
    }
}
