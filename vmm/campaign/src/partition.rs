//! `--partition`: sharding a campaign across CI runners with
//! cargo-nextest's convention, so a CI matrix of N jobs each running
//! `dmalab campaign --partition count:M/N` covers every scenario once.
//!
//! - `count:M/N`: the k-th scenario in campaign order (0-based) goes to
//!   shard `(k mod N) + 1`. Campaign order is the named scenarios sorted by
//!   name, then the random ones by index.
//! - `hash:M/N`: a scenario goes to shard `(fnv1a64(name) mod N) + 1`
//!   (FNV-1a, 64 bit, over the name's UTF-8 bytes): a scenario stays on its
//!   shard when others are added or removed.
//! - `cost:M/N`: shards of equal estimated time (`cost.rs`): scenarios
//!   are dealt, most expensive first (ties by name hash), each to the
//!   shard with the least estimated time so far (longest processing time
//!   first). Every shard loads every scenario, so every shard computes the
//!   same deal; adding a scenario may move others.
//! - `M/N` alone means `count:M/N`. `1 <= M <= N`.

use std::str::FromStr;

use crate::scenario::Scenario;

/// How scenarios are dealt to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Count,
    Hash,
    Cost,
}

/// Shard `shard` (1-based) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub scheme: Scheme,
    pub shard: u64,
    pub total: u64,
}

/// Why a `--partition` value was rejected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("'{0}' is not count:M/N, hash:M/N, cost:M/N or M/N")]
    Syntax(String),
    #[error("'{0}': the shard M must be between 1 and N")]
    Range(String),
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = match text.split_once(':') {
            Some(("count", rest)) => (Scheme::Count, rest),
            Some(("hash", rest)) => (Scheme::Hash, rest),
            Some(("cost", rest)) => (Scheme::Cost, rest),
            Some(_) => return Err(PartitionError::Syntax(text.into())),
            None => (Scheme::Count, text),
        };
        let (m, n) = rest
            .split_once('/')
            .ok_or_else(|| PartitionError::Syntax(text.into()))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| PartitionError::Syntax(text.into()))
        };
        let (shard, total) = (parse(m)?, parse(n)?);
        if shard == 0 || total == 0 || shard > total {
            return Err(PartitionError::Range(text.into()));
        }
        Ok(Partition {
            scheme,
            shard,
            total,
        })
    }
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Partition {
    /// Whether the scenario at `index` in campaign order, named `name`,
    /// belongs to this shard, for the schemes that need nothing else
    /// (`count`, `hash`); `None` for `cost`, which needs the whole list
    /// ([`Partition::keep`]).
    pub fn includes(&self, index: u64, name: &str) -> Option<bool> {
        let key = match self.scheme {
            Scheme::Count => index,
            Scheme::Hash => fnv1a64(name.as_bytes()),
            Scheme::Cost => return None,
        };
        Some(key % self.total + 1 == self.shard)
    }

    /// Which of `scenarios` (the whole campaign, in campaign order)
    /// belong to this shard.
    pub fn keep(&self, scenarios: &[Scenario]) -> Vec<bool> {
        if self.scheme != Scheme::Cost {
            return scenarios
                .iter()
                .enumerate()
                .map(|(k, s)| self.includes(k as u64, &s.name) == Some(true))
                .collect();
        }
        let costs: Vec<f64> = scenarios.iter().map(crate::cost::estimate).collect();
        let mut order: Vec<usize> = (0..scenarios.len()).collect();
        order.sort_by(|&a, &b| {
            costs[b].total_cmp(&costs[a]).then_with(|| {
                fnv1a64(scenarios[a].name.as_bytes()).cmp(&fnv1a64(scenarios[b].name.as_bytes()))
            })
        });
        // More shards than scenarios: the first ones get one each, the
        // rest nothing (and N may be any u64).
        let shards = usize::try_from(self.total)
            .unwrap_or(usize::MAX)
            .min(scenarios.len().max(1));
        let mut load = vec![0.0f64; shards];
        let mut keep = vec![false; scenarios.len()];
        for k in order {
            let (lightest, _) = load
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one shard");
            load[lightest] += costs[k];
            keep[k] = lightest as u64 + 1 == self.shard;
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nextest_syntax_parses() {
        let p: Partition = "count:2/3".parse().unwrap();
        assert_eq!((p.scheme, p.shard, p.total), (Scheme::Count, 2, 3));
        let p: Partition = "hash:1/4".parse().unwrap();
        assert_eq!((p.scheme, p.shard, p.total), (Scheme::Hash, 1, 4));
        assert_eq!("2/3".parse::<Partition>().unwrap().scheme, Scheme::Count);
        let p: Partition = "cost:3/10".parse().unwrap();
        assert_eq!((p.scheme, p.shard, p.total), (Scheme::Cost, 3, 10));
        assert_eq!(p.includes(0, "x"), None);
        for bad in ["", "3", "a/b", "slice:1/2", "1/2/3"] {
            assert!(
                matches!(bad.parse::<Partition>(), Err(PartitionError::Syntax(_))),
                "{bad}"
            );
        }
        for bad in ["0/2", "3/2", "1/0"] {
            assert!(
                matches!(bad.parse::<Partition>(), Err(PartitionError::Range(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn count_deals_round_robin_and_shards_cover_everything_once() {
        let names: Vec<String> = (0..50).map(|k| format!("random-1-{k}")).collect();
        for scheme in ["count", "hash"] {
            let mut seen = vec![0; names.len()];
            for m in 1..=3 {
                let p: Partition = format!("{scheme}:{m}/3").parse().unwrap();
                for (k, name) in names.iter().enumerate() {
                    if p.includes(k as u64, name) == Some(true) {
                        seen[k] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{scheme}: {seen:?}");
        }
        let p: Partition = "count:1/3".parse().unwrap();
        let mine: Vec<u64> = (0..7)
            .filter(|&k| p.includes(k, "") == Some(true))
            .collect();
        assert_eq!(mine, [0, 3, 6]);
    }

    #[test]
    fn hash_depends_on_the_name_only() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let p: Partition = "hash:2/5".parse().unwrap();
        assert_eq!(
            p.includes(0, "lost-interrupt"),
            p.includes(99, "lost-interrupt")
        );
    }
}
