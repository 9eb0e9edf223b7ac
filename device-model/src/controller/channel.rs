//! One DMA channel: its registers (spec §3.2) and its pipeline state.
//!
//! A channel holds at most one descriptor being fetched, one fetched and
//! waiting for its data phase (fence or bus), one in its data phase, and a
//! short FIFO of descriptors waiting for their completion write-back (the
//! next fetch overlaps the write-back). Each pipeline step is a timer slot:
//! the controller's scheduler takes the earliest armed slot over all
//! channels, ties broken by channel index, then slot order. No allocation
//! per descriptor: the FIFO and the delayed-interrupt list keep their
//! capacity.

use std::collections::VecDeque;

use crate::descriptor::{Completion, Descriptor};
use crate::regs::{
    STATE_BUSY, STATE_ERROR, STATE_HALTED, STATE_IDLE, STATUS_COMP_FULL, STATUS_STATE_MASK,
};

/// Timer slot: a descriptor fetch completes.
pub(super) const T_FETCH: usize = 0;
/// Timer slot: a latency spike ends; the data phase starts.
pub(super) const T_START: usize = 1;
/// Timer slot: this channel's burst on the bus ends.
pub(super) const T_BURST: usize = 2;
/// Timer slot: the front of the write-back FIFO is written.
pub(super) const T_WB: usize = 3;
/// Timer slot: the completion vector fires.
pub(super) const T_IRQ: usize = 4;
/// Timer slot: the coalescing timer expires.
pub(super) const T_COALESCE: usize = 5;
/// Timer slot: a delayed or duplicated interrupt is due.
pub(super) const T_EXTRA: usize = 6;
/// Timer slot: the next message of an interrupt storm.
pub(super) const T_STORM: usize = 7;
/// Number of timer slots.
pub(super) const N_TIMERS: usize = 8;
/// A disarmed timer.
pub(super) const NEVER: u64 = u64::MAX;

/// Fault effects folded for one descriptor (what acts after fetch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Effects {
    /// Do not signal this completion.
    pub(super) drop_irq: bool,
    /// Signal it on its own this many cycles late.
    pub(super) delay_irq: u64,
    /// Signal it twice.
    pub(super) dup_irq: bool,
    /// Extra messages after it.
    pub(super) storm: u32,
    /// Transfer error; `Some(true)` is fatal.
    pub(super) dma_error: Option<bool>,
    /// Move at most this many bytes.
    pub(super) short: Option<u32>,
    /// Bit flips in the destination.
    pub(super) corrupt: u32,
    /// Stop making progress.
    pub(super) hang: bool,
    /// Halt the channel.
    pub(super) halt: bool,
    /// The fetch fails.
    pub(super) fetch_error: bool,
    /// Write no record.
    pub(super) missing: bool,
    /// Write the previous record's contents.
    pub(super) stale: bool,
    /// Extra cycles before the data phase.
    pub(super) spike: u64,
    /// An MSI with nothing completed.
    pub(super) spurious: bool,
    /// The device disappears.
    pub(super) removal: bool,
}

/// A fetched descriptor (waiting for, or in, its data phase).
#[derive(Debug, Clone, Copy)]
pub(super) struct Active {
    /// The descriptor.
    pub(super) desc: Descriptor,
    /// Sequence number.
    pub(super) seq: u64,
    /// Ring index.
    pub(super) index: u32,
    /// Bytes moved so far.
    pub(super) moved: u32,
    /// Bytes to move in total.
    pub(super) limit: u32,
    /// Status so far.
    pub(super) status: u16,
    /// Fault effects.
    pub(super) fx: Effects,
    /// Channel error to enter after its write-back (0: none).
    pub(super) halt_code: u32,
}

/// A descriptor waiting for its completion write-back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    /// Cookie.
    pub(super) cookie: u64,
    /// Sequence number.
    pub(super) seq: u64,
    /// Ring index.
    pub(super) index: u32,
    /// Bytes moved.
    pub(super) bytes: u32,
    /// Status.
    pub(super) status: u16,
    /// Interrupt on completion.
    pub(super) ioc: bool,
    /// Fault effects.
    pub(super) fx: Effects,
    /// Channel error to enter after the write-back (0: none).
    pub(super) halt_code: u32,
    /// When it is due.
    pub(super) at: u64,
}

/// One channel.
#[derive(Debug, Clone)]
pub(super) struct Channel {
    /// `RING_BASE`.
    pub(super) ring_base: u64,
    /// `RING_SIZE`.
    pub(super) ring_size: u32,
    /// `HEAD`.
    pub(super) head: u32,
    /// `TAIL`.
    pub(super) tail: u32,
    /// `CTRL.ENABLE`.
    pub(super) enabled: bool,
    /// State `ERROR`.
    pub(super) in_error: bool,
    /// `ERROR_CODE`.
    pub(super) error_code: u32,
    /// `COMP_BASE`.
    pub(super) comp_base: u64,
    /// `COMP_HEAD`.
    pub(super) comp_head: u32,
    /// `COMP_TAIL`.
    pub(super) comp_tail: u32,
    /// Phase of the next record.
    pub(super) phase: bool,
    /// `COALESCE_COUNT`.
    pub(super) coalesce_count: u32,
    /// `COALESCE_TIME`.
    pub(super) coalesce_time: u32,
    /// `SHADOW_BASE`.
    pub(super) shadow_base: u64,
    /// `COMPLETED`.
    pub(super) completed: u32,
    /// Next ring index to fetch.
    pub(super) fetch_index: u32,
    /// A fetch is in flight.
    pub(super) fetching: bool,
    /// Fetched, waiting for the data phase.
    pub(super) fetched: Option<Active>,
    /// In the data phase (or hung, or in a latency spike).
    pub(super) active: Option<Active>,
    /// Waiting for write-back, in order.
    pub(super) wb: VecDeque<Pending>,
    /// The channel stops fetching: an error follows a write-back.
    pub(super) halting: bool,
    /// Hung by a fault.
    pub(super) hung: bool,
    /// Being stopped (abort or error flush): failures drop records instead
    /// of stopping the channel again.
    pub(super) stopping: bool,
    /// Has a burst ready for the bus.
    pub(super) wants_bus: bool,
    /// Cycle its current burst was granted the bus (for the trace).
    pub(super) burst_granted: u64,
    /// Waiting for completion-ring space.
    pub(super) comp_full: bool,
    /// Interrupting completions not yet signalled (coalescing).
    pub(super) irq_pending: u32,
    /// Due times of delayed/duplicate messages.
    pub(super) delayed: Vec<u64>,
    /// Storm messages left.
    pub(super) storm_left: u32,
    /// The last record written (for stale completions).
    pub(super) last: Completion,
    /// Timer slots.
    pub(super) timers: [u64; N_TIMERS],
}

impl Default for Channel {
    fn default() -> Self {
        Channel::new()
    }
}

impl Channel {
    /// A channel at its reset values.
    pub(super) fn new() -> Channel {
        Channel {
            ring_base: 0,
            ring_size: 0,
            head: 0,
            tail: 0,
            enabled: false,
            in_error: false,
            error_code: 0,
            comp_base: 0,
            comp_head: 0,
            comp_tail: 0,
            phase: true,
            coalesce_count: 0,
            coalesce_time: 0,
            shadow_base: 0,
            completed: 0,
            fetch_index: 0,
            fetching: false,
            fetched: None,
            active: None,
            wb: VecDeque::with_capacity(4),
            halting: false,
            hung: false,
            stopping: false,
            wants_bus: false,
            burst_granted: 0,
            comp_full: false,
            irq_pending: 0,
            delayed: Vec::with_capacity(4),
            storm_left: 0,
            last: Completion::default(),
            timers: [NEVER; N_TIMERS],
        }
    }

    /// Resets to reset values, keeping allocations.
    pub(super) fn reset(&mut self) {
        let mut wb = std::mem::take(&mut self.wb);
        let mut delayed = std::mem::take(&mut self.delayed);
        wb.clear();
        delayed.clear();
        *self = Channel {
            wb,
            delayed,
            ..Channel::new()
        };
    }

    /// Whether work is posted or in flight.
    pub(super) fn busy(&self) -> bool {
        self.head != self.tail
            || self.fetching
            || self.fetched.is_some()
            || self.active.is_some()
            || !self.wb.is_empty()
    }

    /// The `STATUS` register.
    pub(super) fn status(&self) -> u32 {
        let state = if self.in_error {
            STATE_ERROR
        } else if !self.enabled {
            STATE_HALTED
        } else if self.busy() {
            STATE_BUSY
        } else {
            STATE_IDLE
        };
        state | if self.comp_full { STATUS_COMP_FULL } else { 0 }
    }

    /// The state part of `STATUS`.
    pub(super) fn state(&self) -> u32 {
        self.status() & STATUS_STATE_MASK
    }

    /// Whether the completion ring has no free slot.
    pub(super) fn comp_ring_full(&self) -> bool {
        self.ring_size != 0 && (self.comp_tail + 1) % self.ring_size == self.comp_head
    }

    /// Whether the channel may start a fetch now.
    pub(super) fn can_fetch(&self) -> bool {
        self.enabled
            && !self.halting
            && !self.hung
            && !self.fetching
            && !self.comp_full
            && self.fetched.is_none()
            && self.active.is_none()
            && self.fetch_index != self.tail
    }

    /// Arms `slot` at `at` unless it is already armed earlier.
    pub(super) fn arm_min(&mut self, slot: usize, at: u64) {
        if at < self.timers[slot] {
            self.timers[slot] = at;
        }
    }

    /// The earliest armed slot: (time, slot).
    #[inline]
    pub(super) fn next_timer(&self) -> (u64, usize) {
        let mut best = (NEVER, 0);
        for (slot, &t) in self.timers.iter().enumerate() {
            if t < best.0 {
                best = (t, slot);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_values_and_status() {
        let mut c = Channel::new();
        assert_eq!(c.status(), STATE_HALTED);
        assert!(c.phase);
        c.enabled = true;
        assert_eq!(c.status(), STATE_IDLE);
        c.tail = 1;
        assert_eq!(c.status(), STATE_BUSY);
        c.comp_full = true;
        assert_eq!(c.status(), STATE_BUSY | STATUS_COMP_FULL);
        c.in_error = true;
        assert_eq!(c.state(), STATE_ERROR);
        c.reset();
        assert_eq!(c.status(), STATE_HALTED);
        assert_eq!(c.tail, 0);
    }

    #[test]
    fn comp_ring_full_keeps_one_slot_free() {
        let mut c = Channel {
            ring_size: 4,
            ..Channel::new()
        };
        c.comp_tail = 3;
        assert!(c.comp_ring_full());
        c.comp_head = 1;
        assert!(!c.comp_ring_full());
    }

    #[test]
    fn next_timer_prefers_earliest_then_lowest_slot() {
        let mut c = Channel::new();
        assert_eq!(c.next_timer().0, NEVER);
        c.timers[T_WB] = 10;
        c.timers[T_IRQ] = 10;
        c.arm_min(T_FETCH, 12);
        assert_eq!(c.next_timer(), (10, T_WB));
        c.arm_min(T_FETCH, 5);
        c.arm_min(T_FETCH, 7);
        assert_eq!(c.next_timer(), (5, T_FETCH));
    }
}
