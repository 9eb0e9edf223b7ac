//! Sharding a campaign over a CI matrix (docs/ci-sharding.md): 10 shards
//! of 1,000 random plans cover every plan exactly once, under every
//! scheme, and `cost` and `hash` shards have estimated times
//! (`cost::estimate`) within 1.5× of each other, for several campaign
//! seeds. `hash` deals by name, blind to cost: it balances because random
//! plans are bounded to a small `random::WORK_BUDGET` (a few plain plans'
//! worth), so no plan outweighs a shard's share of the rest. `count` is
//! printed, not bounded (below).

use dmalab_campaign::cost;
use dmalab_campaign::partition::Partition;
use dmalab_campaign::random::{self, Fixed};
use dmalab_campaign::scenario::Scenario;

const PLANS: u64 = 1_000;
const SHARDS: usize = 10;
const SEEDS: [u64; 4] = [0, 1, 42, 2026];

/// Each plan's owners (how many shards took it) and each shard's plans
/// and estimated seconds.
fn deal(scheme: &str, scenarios: &[Scenario]) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
    let mut owners = vec![0u32; scenarios.len()];
    let mut counts = vec![0u32; SHARDS];
    let mut seconds = vec![0.0f64; SHARDS];
    for m in 1..=SHARDS {
        let part: Partition = format!("{scheme}:{m}/{SHARDS}").parse().unwrap();
        for (k, keep) in part.keep(scenarios).into_iter().enumerate() {
            if keep {
                owners[k] += 1;
                counts[m - 1] += 1;
                seconds[m - 1] += cost::estimate(&scenarios[k]);
            }
        }
    }
    (owners, counts, seconds)
}

fn spread(seconds: &[f64]) -> f64 {
    let max = seconds.iter().cloned().fold(f64::MIN, f64::max);
    let min = seconds.iter().cloned().fold(f64::MAX, f64::min);
    max / min
}

#[test]
fn ten_shards_cover_every_plan_once_and_cost_and_hash_shards_balance_time() {
    for seed in SEEDS {
        let scenarios: Vec<_> = (0..PLANS)
            .map(|k| random::scenario(seed, k, &Fixed::default()))
            .collect();
        // The random mode's mix, for docs/benchmarks-campaign.md.
        let mut mix = std::collections::BTreeMap::<String, u32>::new();
        for s in &scenarios {
            let cancel = if s.cmdline.contains("cancel_every") {
                " cancel"
            } else {
                ""
            };
            *mix.entry(format!("{} {}{cancel}", s.timing.name(), s.workload))
                .or_default() += 1;
        }
        eprintln!("mix seed {seed}: {mix:?}");
        for scheme in ["hash", "count", "cost"] {
            let (owners, counts, seconds) = deal(scheme, &scenarios);
            let wrong: Vec<_> = owners
                .iter()
                .enumerate()
                .filter(|(_, &n)| n != 1)
                .map(|(k, n)| format!("random-{seed}-{k} in {n} shards"))
                .collect();
            assert!(wrong.is_empty(), "{scheme}, seed {seed}: {wrong:?}");
            eprintln!(
                "{scheme:<5} seed {seed:<4}: plans per shard {counts:?}, estimated s {:?}, max/min {:.2}",
                seconds.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>(),
                spread(&seconds)
            );
            // `count` deals by position, and the first rule's kind cycles
            // with the index (mod 15) in step with the shard (mod 10).
            if scheme != "count" {
                assert!(
                    spread(&seconds) <= 1.5,
                    "seed {seed}: {scheme} shard times {seconds:?} differ by more than 1.5x"
                );
            }
        }
    }
}

#[test]
fn hash_shards_balance_time_on_fifty_seeds() {
    // The four seeds above are printed in full; the bound must not hang
    // on them: seeds 0–49, 1,000 plans each, 10 hash shards.
    let mut spreads: Vec<(f64, u64)> = (0..50)
        .map(|seed| {
            let scenarios: Vec<_> = (0..PLANS)
                .map(|k| random::scenario(seed, k, &Fixed::default()))
                .collect();
            (spread(&deal("hash", &scenarios).2), seed)
        })
        .collect();
    spreads.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (min, median, max) = (spreads[0], spreads[25], spreads[49]);
    eprintln!(
        "hash, seeds 0-49: estimated shard time max/min {:.2} (seed {}) to {:.2} (seed {}), median {:.2}",
        min.0, min.1, max.0, max.1, median.0
    );
    assert!(
        max.0 <= 1.5,
        "seed {}: hash shard times differ by {:.2}x",
        max.1,
        max.0
    );
}
