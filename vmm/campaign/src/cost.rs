//! What a scenario is expected to cost, in seconds of one core, from its
//! shape alone (no run): the boot, the requests of its workload, the
//! timing mode, and what its fault rules add (the descriptors short
//! transfers add, each followed by one for the rest of its transfer;
//! watchdog recoveries, interrupt delays that realtime waits out,
//! interrupt storms). Random mode bounds every plan by it
//! (`random::WORK_BUDGET`). Used to
//! check that shards of a campaign take similar times
//! (docs/ci-sharding.md) and to size CI budgets. The constants were fitted
//! to measured runs of random scenarios on the reference machine
//! (docs/benchmarks-campaign.md); they are an estimate, not a promise.

use device_model::fault::{FaultEffect, FaultRule};

use crate::scenario::{Scenario, Timing};

/// Boot, workload setup, report and oracle, seconds.
const BASE: f64 = 0.060;
/// One request of the workload, instant timing (8 requests of `copy`
/// with nothing going wrong: ~0.09 s in all, 32 of `stress` ~0.18 s,
/// each at `-j 2` on the reference machine's 2 cores).
const PER_IRP: f64 = 0.00375;
/// Descriptors per request (a request is cut into transfers; `copy
/// irps=8` posts ~20): what every/probability triggers count.
const DESCRIPTORS_PER_IRP: f64 = 2.5;
/// Attempts per request at most (the driver's default dmadrv.retries =
/// 3, plus the first): a rule firing on every descriptor fires this often
/// per request.
const ATTEMPTS: f64 = 4.0;
/// How much longer a request takes in realtime (device time is paced).
const REALTIME_FACTOR: f64 = 1.5;
/// The driver's default `dmadrv.timeout_ms`, seconds: a hang or a
/// missing completion is found by the watchdog this long after its
/// transfer was posted, per firing (a command line's
/// `dmadrv.timeout_ms=N` says otherwise; random plans set 20 ms).
const DEFAULT_HANG_TIMEOUT: f64 = 0.100;
/// What a watchdog timeout adds to the timeout itself: the watchdog
/// looks every 10 ms, half a period on average, and resets the channel.
const TIMEOUT_OVERHEAD: f64 = 0.005;
/// A lost interrupt: the watchdog claims the record at its second look,
/// one to two periods of 10 ms (~20 ms a recovery measured).
const WATCHDOG_RECOVERY: f64 = 0.020;
/// An error the device reports (error interrupt, reset, retry).
const ERROR_RECOVERY: f64 = 0.002;
/// One extra interrupt of a storm (a VM exit, the ISR and a DPC).
const PER_STORM_IRQ: f64 = 0.000_03;
/// A storm at most: MSIs that arrive while one is pending merge (8
/// storms of 100,000 took 0.6 s in `interrupt-storm-realtime`).
const MAX_STORM: f64 = 0.075;
/// The driver's watchdog period (`dmadrv.watchdog_ms`, 10 ms), seconds.
const WATCHDOG_PERIOD: f64 = 0.010;
/// Device cycles per second (1 GHz), for delays realtime waits out.
const CYCLES_PER_SECOND: f64 = 1e9;

/// Transfers a request is cut into at most (dmadrv.max_xfer, 64 KiB).
const MAX_XFER: f64 = 65_536.0;
/// Bytes of an average request, as a share of the workload's
/// `max_bytes` (sizes are uniform up to it, every fourth one small).
const MEAN_REQUEST_SHARE: f64 = 0.4;

/// What a run of a workload is made of, for the estimate.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    /// Requests (`irps=N`).
    pub requests: f64,
    /// Bytes of all requests together, about.
    pub bytes: f64,
    /// Descriptors the driver posts with nothing going wrong.
    pub descriptors: f64,
    pub realtime: bool,
    /// Seconds a hang or a missing completion costs (`dmadrv.timeout_ms`
    /// and the watchdog's look).
    pub hang: f64,
    /// How much longer a watchdog recovery takes: the guest's verifier
    /// holds the DPC queue `verifier.timer_dpc_delay_us` after each timer
    /// expiry, so every watchdog period (10 ms) is that much longer.
    pub watchdog_stretch: f64,
}

/// `key=N` of `cmdline`.
fn arg(cmdline: &str, key: &str) -> Option<f64> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse::<u32>().ok())
        .map(f64::from)
}

/// The number of requests `cmdline` asks for (`irps=N`), 8 if not said.
fn irps(cmdline: &str) -> f64 {
    arg(cmdline, "irps").unwrap_or(8.0)
}

impl Work {
    /// The work of guest scenario `workload` run with `cmdline`: its
    /// requests' size is `max_bytes=N`, else the scenario's default
    /// (guest-driver/kernel/scenarios/).
    pub fn of(workload: &str, cmdline: &str, timing: Timing) -> Work {
        let default_max = match workload {
            "fill" | "demo" => 196_608.0,
            "stress" => 131_072.0,
            _ => 262_144.0,
        };
        let requests = irps(cmdline);
        let dpc_delay = arg(cmdline, "verifier.timer_dpc_delay_us").unwrap_or(0.0) / 1e6;
        let watchdog_stretch = 1.0 + dpc_delay / WATCHDOG_PERIOD;
        let max_bytes = arg(cmdline, "max_bytes").unwrap_or(default_max);
        let bytes = requests * (MEAN_REQUEST_SHARE * max_bytes).max(1.0);
        Work {
            requests,
            bytes,
            descriptors: requests
                .max(bytes / MAX_XFER)
                .max(requests * DESCRIPTORS_PER_IRP),
            realtime: timing == Timing::Realtime,
            // A hang is found at a watchdog run: up to a period after
            // the timeout, each run up to the delay late.
            hang: arg(cmdline, "dmadrv.timeout_ms").map_or(DEFAULT_HANG_TIMEOUT, |ms| ms / 1000.0)
                + TIMEOUT_OVERHEAD
                + 2.0 * dpc_delay,
            watchdog_stretch,
        }
    }
}

/// The share of descriptors a rule's trigger picks, at most (`every`,
/// `probability`; `nth` alone picks one, counted by [`firings`]).
fn share(rule: &FaultRule) -> f64 {
    let t = &rule.trigger;
    if let Some(every) = t.every {
        1.0 / every.max(1) as f64
    } else {
        t.probability.unwrap_or(0.0)
    }
}

/// Descriptors a `short-transfer` rule adds: each short one is followed
/// by one more for the rest of its transfer, so `share` of all
/// descriptors (`share = 1`: every transfer moves `bytes` at a time; 0
/// bytes: retried up to the bound, then the request fails).
fn short_descriptors(rule: &FaultRule, bytes: u32, work: &Work) -> f64 {
    let f = share(rule);
    let by_progress = if bytes == 0 {
        work.requests * ATTEMPTS
    } else {
        work.bytes / f64::from(bytes)
    };
    let mut n = if f >= 1.0 {
        by_progress
    } else if rule.trigger.every.is_some() || f > 0.0 {
        (work.descriptors * f / (1.0 - f)).min(by_progress)
    } else {
        1.0
    };
    if let Some(max) = rule.trigger.max_times {
        n = n.min(max as f64);
    }
    n.max(1.0)
}

/// Descriptors a run of `rules` posts, about: the workload's plus what
/// short transfers add.
fn descriptors(rules: &[FaultRule], work: &Work) -> f64 {
    work.descriptors
        + rules
            .iter()
            .map(|r| match r.effect {
                FaultEffect::ShortTransfer { bytes } => short_descriptors(r, bytes, work),
                _ => 0.0,
            })
            .sum::<f64>()
}

/// How many times a rule fires, about, over `descriptors` descriptors.
fn firings(rule: &FaultRule, work: &Work, descriptors: f64) -> f64 {
    let t = &rule.trigger;
    let mut n = if t.every.is_some() || t.probability.is_some() {
        descriptors * share(rule)
    } else {
        1.0
    };
    if t.channel.is_some() || t.window.is_some() {
        // Only part of the run passes the filters.
        n /= 2.0;
    }
    if let Some(max) = t.max_times {
        n = n.min(max as f64);
    }
    n.clamp(1.0, descriptors.max(work.requests * ATTEMPTS))
}

/// Estimated seconds one rule adds to a run of `work` that posts
/// `descriptors` descriptors.
fn rule_seconds(rule: &FaultRule, work: &Work, descriptors: f64) -> f64 {
    let n = firings(rule, work, descriptors);
    match rule.effect {
        FaultEffect::MissingCompletion | FaultEffect::Hang => n * work.hang,
        FaultEffect::DropInterrupt => n * WATCHDOG_RECOVERY * work.watchdog_stretch,
        FaultEffect::Halt | FaultEffect::FetchError | FaultEffect::DmaError { .. } => {
            n * ERROR_RECOVERY
        }
        FaultEffect::InterruptStorm { count } => {
            n * (f64::from(count) * PER_STORM_IRQ).min(MAX_STORM)
        }
        FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles }
            if work.realtime =>
        {
            n * cycles as f64 / CYCLES_PER_SECOND
        }
        _ => 0.0,
    }
}

/// Estimated seconds of a run of `work` under `rules` on one core, and
/// what each rule adds to it (its short transfers' descriptors
/// included), in rule order.
pub fn estimate_rules(rules: &[FaultRule], work: &Work) -> (f64, Vec<f64>) {
    let per_descriptor =
        PER_IRP / DESCRIPTORS_PER_IRP * if work.realtime { REALTIME_FACTOR } else { 1.0 };
    let all = descriptors(rules, work);
    let parts: Vec<f64> = rules
        .iter()
        .map(|r| {
            let own = match r.effect {
                FaultEffect::ShortTransfer { bytes } => {
                    short_descriptors(r, bytes, work) * per_descriptor
                }
                _ => 0.0,
            };
            own + rule_seconds(r, work, all)
        })
        .collect();
    let seconds = BASE + work.descriptors * per_descriptor + parts.iter().sum::<f64>();
    (seconds, parts)
}

/// Estimated seconds of `scenario` on one core.
pub fn estimate(scenario: &Scenario) -> f64 {
    let work = Work::of(&scenario.workload, &scenario.cmdline, scenario.timing);
    estimate_rules(&scenario.plan.rules, &work).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{self, Fixed};

    #[test]
    fn more_requests_realtime_and_recoveries_cost_more() {
        assert_eq!(irps("irps=32 cancel_every=3"), 32.0);
        assert_eq!(irps(""), 8.0);
        let fixed = Fixed::default();
        let mut s = random::scenario(1, 0, &fixed);
        s.plan.rules.clear();
        s.cmdline = "irps=8".into();
        s.timing = Timing::Instant;
        let plain = estimate(&s);
        s.timing = Timing::Realtime;
        let realtime = estimate(&s);
        s.cmdline = "irps=32".into();
        let more = estimate(&s);
        assert!(
            plain < realtime && realtime < more,
            "{plain} {realtime} {more}"
        );
        let mut hung = random::scenario(1, 0, &fixed);
        hung.plan.rules.clear();
        hung.cmdline = "irps=8".into();
        hung.timing = Timing::Instant;
        hung.plan.rules.push(device_model::fault::FaultRule {
            name: None,
            trigger: device_model::fault::Trigger {
                every: Some(1),
                ..Default::default()
            },
            effect: FaultEffect::Hang,
        });
        assert!(estimate(&hung) > plain + 7.0 * DEFAULT_HANG_TIMEOUT);
        // A shorter dmadrv.timeout_ms makes each hang cheaper.
        let default = estimate(&hung);
        hung.cmdline = "irps=8 dmadrv.timeout_ms=20".into();
        let short = estimate(&hung);
        assert!(short < default / 3.0, "{short} {default}");
    }
}
