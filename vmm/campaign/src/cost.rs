//! What a scenario is expected to cost, in seconds of one core, from its
//! shape alone (no run): the boot, the requests of its workload, the
//! timing mode, and what its fault rules add (watchdog recoveries,
//! interrupt delays that realtime waits out, interrupt storms). Used to
//! check that shards of a campaign take similar times
//! (docs/ci-sharding.md) and to size CI budgets. The constants were fitted
//! to measured runs of random scenarios on the reference machine
//! (docs/benchmarks.md); they are an estimate, not a promise.

use device_model::fault::FaultEffect;

use crate::scenario::{Scenario, Timing};

/// Boot, workload setup, report and oracle, seconds.
const BASE: f64 = 0.020;
/// One request of the workload, instant timing (8 requests of `copy`
/// with nothing going wrong: ~0.04 s in all).
const PER_IRP: f64 = 0.0025;
/// Descriptors per request (a request is cut into transfers; `copy
/// irps=8` posts ~20): what every/probability triggers count.
const DESCRIPTORS_PER_IRP: f64 = 2.5;
/// Attempts per request at most (the driver's default dmadrv.retries =
/// 3, plus the first): a rule firing on every descriptor fires this often
/// per request.
const ATTEMPTS: f64 = 4.0;
/// How much longer a request takes in realtime (device time is paced).
const REALTIME_FACTOR: f64 = 2.0;
/// A hang or a missing completion: found by the driver's watchdog after
/// dmadrv.timeout_ms = 100 ms, per firing.
const TIMEOUT_RECOVERY: f64 = 0.100;
/// A lost interrupt: the watchdog claims the record at its second look,
/// one to two periods of 10 ms.
const WATCHDOG_RECOVERY: f64 = 0.015;
/// An error the device reports (error interrupt, reset, retry).
const ERROR_RECOVERY: f64 = 0.002;
/// One extra interrupt of a storm (a VM exit, the ISR and a DPC).
const PER_STORM_IRQ: f64 = 0.000_03;
/// A storm at most: MSIs that arrive while one is pending merge (8
/// storms of 100,000 took 0.6 s in `interrupt-storm-realtime`).
const MAX_STORM: f64 = 0.075;
/// Device cycles per second (1 GHz), for delays realtime waits out.
const CYCLES_PER_SECOND: f64 = 1e9;

/// The number of requests `cmdline` asks for (`irps=N`), 8 if not said.
fn irps(cmdline: &str) -> f64 {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("irps="))
        .and_then(|n| n.parse::<u32>().ok())
        .map_or(8.0, f64::from)
}

/// How many times a rule fires, about, in a run of `requests` requests.
fn firings(rule: &device_model::fault::FaultRule, requests: f64) -> f64 {
    let t = &rule.trigger;
    let descriptors = requests * DESCRIPTORS_PER_IRP;
    let mut n = if let Some(every) = t.every {
        descriptors / every as f64
    } else if let Some(p) = t.probability {
        descriptors * p
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
    n.clamp(1.0, requests * ATTEMPTS)
}

/// Estimated seconds of `scenario` on one core.
pub fn estimate(scenario: &Scenario) -> f64 {
    let requests = irps(&scenario.cmdline);
    let realtime = scenario.timing == Timing::Realtime;
    let mut seconds = BASE + requests * PER_IRP * if realtime { REALTIME_FACTOR } else { 1.0 };
    for rule in &scenario.plan.rules {
        let n = firings(rule, requests);
        seconds += match rule.effect {
            FaultEffect::MissingCompletion | FaultEffect::Hang => n * TIMEOUT_RECOVERY,
            FaultEffect::DropInterrupt => n * WATCHDOG_RECOVERY,
            FaultEffect::Halt | FaultEffect::FetchError | FaultEffect::DmaError { .. } => {
                n * ERROR_RECOVERY
            }
            FaultEffect::InterruptStorm { count } => {
                n * (f64::from(count) * PER_STORM_IRQ).min(MAX_STORM)
            }
            FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles }
                if realtime =>
            {
                n * cycles as f64 / CYCLES_PER_SECOND
            }
            _ => 0.0,
        };
    }
    seconds
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
        assert!(estimate(&hung) > plain + 7.0 * TIMEOUT_RECOVERY);
    }
}
