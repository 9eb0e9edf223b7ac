//! What the run report counts about the device: the model's exact
//! counters (descriptors, bytes, interrupts, faults by kind, errors), the
//! fault log (each applied fault's descriptor sequence number and its
//! parameters, from the trace events as they are drained), and the user-space exits that reached
//! each register of the device's BARs.
//!
//! The counters come from the model, which counts every event before its
//! trace buffer decides whether it has room, so they are exact whatever the
//! buffer loses. Only the fault log's sequence numbers come from the trace:
//! when `trace_lost` is not 0 it may miss some (its per-kind counts in
//! `fault_counts` stay exact).
//!
//! The fault log is bounded: a plan such as `every = 1` on a guest that
//! never stops would otherwise grow it (and every control-socket `status`
//! reply, which carries it) without end. The first [`FAULT_LOG_CAP`]
//! applied faults are logged, in `fault_log` and in `faults`; later ones
//! are only counted, in `fault_counts` (exact) and in `fault_log_omitted`
//! (the "N more" of the summary).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use device_model::fault::FaultEffect;
use device_model::regs::{self, decode_bar0, Bar0Reg};
use device_model::{Counters, EventKind, TraceEvent};
use dmalab_protocol::report::{DeviceCounters, FaultEntry};

/// Applied faults kept in the fault log; later ones are counted only.
pub const FAULT_LOG_CAP: usize = 4096;

/// Keeps the report's [`DeviceCounters`] (read through `Deref`): the
/// model's exact counters, and the fault log from the drained trace.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    counters: DeviceCounters,
}

impl std::ops::Deref for Tally {
    type Target = DeviceCounters;

    fn deref(&self) -> &DeviceCounters {
        &self.counters
    }
}

impl Tally {
    /// Takes the model's exact counters.
    pub fn set_counters(&mut self, c: &Counters) {
        let d = &mut self.counters;
        d.doorbells = c.doorbells;
        d.descriptors = c.descriptors;
        d.completions = c.completions;
        d.completion_errors = c.completion_errors;
        d.bytes = c.bytes;
        d.interrupts_sent = c.interrupts_sent;
        d.interrupts_dropped = c.interrupts_dropped();
        d.interrupts_delayed = c.interrupts_delayed();
        d.interrupts_coalesced = c.interrupts_coalesced();
        d.interrupts_masked = c.interrupts_masked;
        d.register_errors = c.register_errors;
        d.channel_errors = c.channel_errors;
        d.fault_counts = c.faults().map(|(k, n)| (k.to_string(), n)).collect();
    }

    /// Adds a drained event's applied fault to the fault log, or counts
    /// it in `fault_log_omitted` once the log holds [`FAULT_LOG_CAP`].
    pub fn log(&mut self, event: &TraceEvent) {
        if let EventKind::FaultApplied {
            seq,
            channel,
            rule,
            effect,
        } = event.kind
        {
            if self.counters.fault_log.len() >= FAULT_LOG_CAP {
                self.counters.fault_log_omitted += 1;
                return;
            }
            self.counters
                .faults
                .entry(effect.kind_name().to_string())
                .or_default()
                .push(seq);
            self.counters
                .fault_log
                .push(entry(event.cycle, seq, channel, rule, effect));
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }
}

/// The report's entry for one applied fault, its parameters included.
fn entry(cycle: u64, seq: u64, channel: u8, rule: u32, effect: FaultEffect) -> FaultEntry {
    let mut e = FaultEntry {
        cycle,
        seq,
        channel,
        rule,
        kind: effect.kind_name().to_string(),
        ..FaultEntry::default()
    };
    match effect {
        FaultEffect::DmaError { fatal } => e.fatal = Some(fatal),
        FaultEffect::DelayInterrupt { cycles } | FaultEffect::LatencySpike { cycles } => {
            e.cycles = Some(cycles);
        }
        FaultEffect::ShortTransfer { bytes } => e.bytes = Some(bytes),
        FaultEffect::InterruptStorm { count } => e.count = Some(count),
        FaultEffect::CorruptData { flips } => e.flips = Some(flips),
        _ => {}
    }
    e
}

/// BAR0 is 4 KiB of dword registers; BAR2 is the MSI-X table and PBA.
const SLOTS: usize = 1024;

/// User-space exits per device register (lock-free: vCPU threads count).
#[derive(Debug)]
pub struct RegisterExits {
    bar0: Vec<AtomicU64>,
    bar2: Vec<AtomicU64>,
}

impl Default for RegisterExits {
    fn default() -> Self {
        Self {
            bar0: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            bar2: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl RegisterExits {
    /// Counts an exit at `offset` of BAR `bar` (0 or 2).
    pub fn count(&self, bar: u8, offset: u64) {
        let slots = if bar == 0 { &self.bar0 } else { &self.bar2 };
        let i = usize::try_from(offset / 4).unwrap_or(usize::MAX);
        if let Some(slot) = slots.get(i) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exits at BAR0 offset `offset`.
    pub fn at_bar0(&self, offset: u64) -> u64 {
        let i = usize::try_from(offset / 4).unwrap_or(usize::MAX);
        self.bar0.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Non-zero counts by register name ("ch0.TAIL", "INT_STATUS",
    /// "msix[1].ctrl", "pba", or "bar0+0x…" for a hole).
    pub fn by_register(&self, channels: u8) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (i, c) in self.bar0.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                *out.entry(bar0_name(i as u64 * 4, channels)).or_insert(0) += n;
            }
        }
        for (i, c) in self.bar2.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                *out.entry(bar2_name(i as u64 * 4)).or_insert(0) += n;
            }
        }
        out
    }
}

fn global_name(offset: u64) -> Option<&'static str> {
    Some(match offset & !3 {
        regs::ID => "ID",
        regs::VERSION => "VERSION",
        regs::CAPS => "CAPS",
        regs::MAX_XFER => "MAX_XFER",
        regs::GCTRL => "GCTRL",
        regs::CLOCK_MHZ => "CLOCK_MHZ",
        regs::INT_STATUS => "INT_STATUS",
        regs::INT_MASK => "INT_MASK",
        regs::CYCLE | regs::CYCLE_HI => "CYCLE",
        regs::TRACE_MARKER => "TRACE_MARKER",
        regs::BAD_ACCESS => "BAD_ACCESS",
        _ => return None,
    })
}

fn channel_name(reg: u64) -> Option<&'static str> {
    Some(match reg & !3 {
        regs::CH_RING_BASE | regs::CH_RING_BASE_HI => "RING_BASE",
        regs::CH_RING_SIZE => "RING_SIZE",
        regs::CH_HEAD => "HEAD",
        regs::CH_TAIL => "TAIL",
        regs::CH_CTRL => "CTRL",
        regs::CH_STATUS => "STATUS",
        regs::CH_ERROR_CODE => "ERROR_CODE",
        regs::CH_COMP_BASE | regs::CH_COMP_BASE_HI => "COMP_BASE",
        regs::CH_COMP_HEAD => "COMP_HEAD",
        regs::CH_COMP_TAIL => "COMP_TAIL",
        regs::CH_COALESCE_COUNT => "COALESCE_COUNT",
        regs::CH_COALESCE_TIME => "COALESCE_TIME",
        regs::CH_SHADOW_BASE | regs::CH_SHADOW_BASE_HI => "SHADOW_BASE",
        regs::CH_COMPLETED => "COMPLETED",
        _ => return None,
    })
}

/// The name of the register at BAR0 `offset`.
pub fn bar0_name(offset: u64, channels: u8) -> String {
    let name = match decode_bar0(offset, channels) {
        Bar0Reg::Global(o) => global_name(o).map(str::to_string),
        Bar0Reg::Channel(c, r) => channel_name(r).map(|n| format!("ch{c}.{n}")),
        Bar0Reg::None => None,
    };
    name.unwrap_or_else(|| format!("bar0+{offset:#x}"))
}

/// The name of the MSI-X table field or PBA at BAR2 `offset`.
pub fn bar2_name(offset: u64) -> String {
    if offset >= 0x800 {
        return "pba".to_string();
    }
    let field = match offset % 16 {
        0 => "addr_lo",
        4 => "addr_hi",
        8 => "data",
        _ => "ctrl",
    };
    format!("msix[{}].{field}", offset / 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_names() {
        assert_eq!(bar0_name(0x110, 4), "ch0.TAIL");
        assert_eq!(bar0_name(0x190, 4), "ch1.TAIL");
        assert_eq!(bar0_name(0x018, 4), "INT_STATUS");
        assert_eq!(bar0_name(0x300, 4), "bar0+0x300");
        assert_eq!(bar2_name(0x1c), "msix[1].ctrl");
        assert_eq!(bar2_name(0x800), "pba");
    }

    #[test]
    fn exits_are_counted_per_register() {
        let e = RegisterExits::default();
        e.count(0, 0x110);
        e.count(0, 0x110);
        e.count(2, 0x0c);
        e.count(0, 0x5000); // outside: ignored
        assert_eq!(e.at_bar0(0x110), 2);
        let m = e.by_register(4);
        assert_eq!(m.get("ch0.TAIL"), Some(&2));
        assert_eq!(m.get("msix[0].ctrl"), Some(&1));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn tally_takes_exact_counters_and_logs_fault_sequence_numbers() {
        let mut counters = Counters::new(4);
        let mut t = Tally::default();
        let ev = |kind| TraceEvent { cycle: 0, kind };
        let completion = |seq| EventKind::Completion {
            channel: 0,
            seq,
            index: 0,
            status: 0,
            bytes: 64,
            written: true,
        };
        let drop = EventKind::FaultApplied {
            seq: 2,
            channel: 0,
            rule: 0,
            effect: FaultEffect::DropInterrupt,
        };
        for kind in [
            completion(1),
            completion(2),
            EventKind::MsiRaised { vector: 0 },
            EventKind::MsiDelivered { vector: 0, slot: 0 },
            drop,
            completion(3),
            completion(4),
            EventKind::MsiRaised { vector: 0 },
        ] {
            counters.count(&kind);
        }
        t.set_counters(&counters);
        t.log(&ev(drop));
        t.log(&ev(completion(5)));
        assert_eq!((t.completions, t.bytes), (4, 256));
        assert_eq!((t.interrupts_sent, t.interrupts_dropped), (1, 1));
        assert_eq!(
            t.interrupts_coalesced, 1,
            "4 completions, 2 raised, 1 dropped"
        );
        assert_eq!(t.fault_counts.get("drop-interrupt"), Some(&1));
        assert_eq!(t.faults.get("drop-interrupt"), Some(&vec![2]));
        assert_eq!(t.fault_log.len(), 1);
        assert_eq!(
            t.fault_log[0].to_string(),
            "seq 2 ch 0 @0 rule 1 drop-interrupt"
        );
        t.log(&ev(EventKind::FaultApplied {
            seq: 6,
            channel: 2,
            rule: 1,
            effect: FaultEffect::DmaError { fatal: true },
        }));
        assert!(t.fault_log[1].is_fatal_error());
        assert_eq!(t.faults_applied(), 1);
    }

    #[test]
    fn the_fault_log_is_capped_and_counts_what_it_left_out() {
        let mut counters = Counters::new(4);
        let mut t = Tally::default();
        let extra = 10;
        let total = FAULT_LOG_CAP + extra;
        for seq in 1..=total as u64 {
            let kind = EventKind::FaultApplied {
                seq,
                channel: 1,
                rule: 0,
                effect: FaultEffect::DropInterrupt,
            };
            counters.count(&kind);
            t.log(&TraceEvent { cycle: seq, kind });
        }
        t.set_counters(&counters);
        assert_eq!(t.fault_counts.get("drop-interrupt"), Some(&(total as u64)));
        assert_eq!(t.faults_applied(), total as u64, "counts stay exact");
        assert_eq!(t.fault_log.len(), FAULT_LOG_CAP);
        assert_eq!(t.faults["drop-interrupt"].len(), FAULT_LOG_CAP);
        assert_eq!(t.fault_log_omitted, extra as u64);
        // The first faults are the ones kept, in order.
        assert_eq!(t.fault_log[0].seq, 1);
        assert_eq!(t.fault_log[FAULT_LOG_CAP - 1].seq, FAULT_LOG_CAP as u64);
    }
}
