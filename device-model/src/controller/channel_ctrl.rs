//! What `CTRL` does to a channel (spec §3.2): enable (rings checked
//! first), abort (complete what was accepted, as `ABORTED` where in
//! flight), channel reset (discard); and entering `ERROR` (abort, then the
//! error code and the error vector), and surprise removal.

use vm_memory::GuestMemory;

use super::channel::{Effects, Pending, NEVER, T_BURST, T_COALESCE, T_FETCH, T_START, T_WB};
use super::Controller;
use crate::interrupt_sink::InterruptSink;
use crate::regs::{self, error_code, status, STATE_HALTED};
use crate::trace::EventKind;

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    /// `CTRL.ENABLE`: checks the rings, then starts fetching.
    pub(super) fn enable(&mut self, c: u8) {
        if let Err(code) = self.validate_rings(c) {
            return self.enter_error(c, code);
        }
        let ch = &mut self.channels[usize::from(c)];
        ch.enabled = true;
        ch.fetch_index = ch.head;
        let state = ch.state();
        self.trace.push(
            self.now,
            EventKind::ChannelState {
                channel: c,
                state,
                error: 0,
            },
        );
        self.kick(c);
    }

    fn validate_rings(&self, c: u8) -> Result<(), u32> {
        let ch = &self.channels[usize::from(c)];
        let size = ch.ring_size;
        if !size.is_power_of_two() || !(2..=self.cfg.max_ring_size).contains(&size) {
            return Err(error_code::RING_SIZE);
        }
        if [ch.head, ch.tail, ch.comp_head, ch.comp_tail]
            .iter()
            .any(|&i| i >= size)
        {
            return Err(error_code::RING_SIZE);
        }
        let aligned = ch.ring_base % regs::RING_ALIGN == 0
            && ch.comp_base % regs::RING_ALIGN == 0
            && ch.shadow_base % regs::SHADOW_ALIGN == 0;
        if !aligned {
            return Err(error_code::RING_ALIGN);
        }
        let bytes = u64::from(size) * crate::descriptor::DESCRIPTOR_SIZE;
        let shadow_ok = ch.shadow_base == 0 || self.guest.in_ram(ch.shadow_base, 8);
        if !self.guest.in_ram(ch.ring_base, bytes)
            || !self.guest.in_ram(ch.comp_base, bytes)
            || !shadow_ok
        {
            return Err(error_code::RING_ADDR);
        }
        Ok(())
    }

    pub(super) fn release_bus(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        ch.wants_bus = false;
        ch.timers[T_BURST] = NEVER;
        if self.bus_owner == Some(c) {
            self.bus_owner = None;
            self.arbitrate(c);
        }
    }

    /// Completes everything accepted and in flight now: write-backs with
    /// their own status, the data phase and the fetched descriptor as
    /// `ABORTED`; forgets a fetch in flight; flushes coalesced interrupts.
    pub(super) fn flush_in_flight(&mut self, c: u8) {
        self.release_bus(c);
        let ch = &mut self.channels[usize::from(c)];
        ch.stopping = true;
        ch.fetching = false;
        ch.hung = false;
        ch.comp_full = false;
        for slot in [T_FETCH, T_START, T_WB, T_COALESCE] {
            ch.timers[slot] = NEVER;
        }
        let active = ch.active.take();
        let fetched = ch.fetched.take();
        while let Some(p) = self.channels[usize::from(c)].wb.pop_front() {
            self.flush_one(c, Pending { halt_code: 0, ..p });
        }
        for a in [active, fetched].into_iter().flatten() {
            let p = Pending {
                cookie: a.desc.cookie,
                seq: a.seq,
                index: a.index,
                bytes: a.moved,
                status: status::ABORTED,
                ioc: false,
                fx: Effects::default(),
                halt_code: 0,
                at: self.now,
            };
            self.flush_one(c, p);
        }
        let ch = &mut self.channels[usize::from(c)];
        ch.fetch_index = ch.head;
        ch.halting = false;
        ch.stopping = false;
        if ch.irq_pending > 0 {
            ch.irq_pending = 0;
            self.fire(u16::from(c));
        }
    }

    /// Writes one record during a flush, or drops it (the ring is full or
    /// the channel is not enabled): `HEAD` advances either way.
    pub(super) fn flush_one(&mut self, c: u8, p: Pending) {
        if self.channels[usize::from(c)].enabled && self.has_comp_space(c) {
            self.complete(c, p);
            return;
        }
        let ch = &mut self.channels[usize::from(c)];
        ch.head = (p.index + 1) % ch.ring_size.max(1);
        self.trace_completion(c, &p, false);
    }

    /// `CTRL.ABORT` (or clearing `ENABLE`).
    pub(super) fn abort(&mut self, c: u8) {
        self.flush_in_flight(c);
        self.channels[usize::from(c)].enabled = false;
        let error = 0;
        self.trace.push(
            self.now,
            EventKind::ChannelState {
                channel: c,
                state: STATE_HALTED,
                error,
            },
        );
    }

    /// `CTRL.RESET`: discard everything, back to reset values.
    pub(super) fn channel_reset(&mut self, c: u8) {
        self.release_bus(c);
        self.channels[usize::from(c)].reset();
        let error = 0;
        self.trace.push(
            self.now,
            EventKind::ChannelState {
                channel: c,
                state: STATE_HALTED,
                error,
            },
        );
    }

    /// Stops channel `c` in `ERROR` with `code` and raises the error vector.
    pub(super) fn enter_error(&mut self, c: u8, code: u32) {
        if self.channels[usize::from(c)].enabled {
            self.flush_in_flight(c);
        }
        let ch = &mut self.channels[usize::from(c)];
        (ch.enabled, ch.in_error, ch.error_code) = (false, true, code);
        let state = ch.state();
        self.trace.push(
            self.now,
            EventKind::ChannelState {
                channel: c,
                state,
                error: code,
            },
        );
        self.fire(self.error_vector());
    }

    /// Surprise removal: nothing runs any more.
    pub(super) fn remove(&mut self) {
        self.removed = true;
        self.bus_owner = None;
        for ch in &mut self.channels {
            ch.timers = [NEVER; super::channel::N_TIMERS];
            ch.wants_bus = false;
        }
        self.trace.push(self.now, EventKind::Removed);
    }
}
