//! The per-descriptor pipeline and its event handlers (spec §7, §8):
//! fetch → data phase (bursts on the shared bus) → write-back → interrupt,
//! with the fault effects applied where they act.
//!
//! Interrupt causes are in `interrupts.rs`, abort/reset/error in
//! `channel_ctrl.rs`. Each handler runs at `self.now`, may arm timer slots of
//! its channel (or grant the bus to another), and never loops over
//! guest-controlled counts except the bounded fault parameters (bit flips;
//! storm messages go one per event). Bus arbitration is round-robin: when a burst ends the scan for
//! the next owner starts after the channel that just used the bus.

use vm_memory::GuestMemory;

use super::channel::{
    Active, Effects, Pending, T_BURST, T_COALESCE, T_EXTRA, T_FETCH, T_IRQ, T_START, T_STORM, T_WB,
};
use super::Controller;
use crate::descriptor::{Completion, Descriptor, COMP_PHASE, DESCRIPTOR_SIZE, OP_COPY, OP_FILL};
use crate::fault::{DescriptorContext, FaultEffect};
use crate::interrupt_sink::InterruptSink;
use crate::regs::{error_code, lo32, status};
use crate::trace::EventKind;

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    /// Runs the handler of timer `slot` of channel `c` (already disarmed).
    pub(super) fn dispatch(&mut self, c: u8, slot: usize) {
        match slot {
            T_FETCH => self.on_fetch(c),
            T_START => self.begin_data(c),
            T_BURST => self.on_burst_end(c),
            T_WB => self.on_writeback(c),
            T_IRQ => self.fire(u16::from(c)),
            T_COALESCE => self.on_coalesce(c),
            T_EXTRA => self.on_extra(c),
            T_STORM => self.on_storm(c),
            _ => {}
        }
    }

    /// Starts a descriptor fetch if the channel can take one.
    pub(super) fn kick(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        if self.removed || !ch.can_fetch() {
            return;
        }
        ch.fetching = true;
        ch.timers[T_FETCH] = self.now.saturating_add(self.cfg.timing.fetch_latency);
        let index = ch.fetch_index;
        self.trace
            .push(self.now, EventKind::FetchStart { channel: c, index });
    }

    fn on_fetch(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        ch.fetching = false;
        let index = ch.fetch_index;
        let addr = ch
            .ring_base
            .wrapping_add(u64::from(index) * DESCRIPTOR_SIZE);
        let mut raw = [0u8; 32];
        if let Err(e) = self.guest.read(self.pci.config_mut(), addr, &mut raw) {
            return self.enter_error(c, e.channel_code(error_code::FETCH));
        }
        let desc = Descriptor::from_bytes(&raw);
        let seq = self.next_seq;
        self.next_seq += 1;
        let ch = &mut self.channels[usize::from(c)];
        ch.fetch_index = (index + 1) % ch.ring_size.max(1);
        self.trace.push(
            self.now,
            EventKind::DescriptorFetch {
                channel: c,
                index,
                seq,
                len: desc.len,
            },
        );
        let fx = self.consult_faults(c, seq);
        if fx.removal {
            return self.remove();
        }
        if fx.spurious {
            self.fire(u16::from(c));
        }
        let reject = if fx.fetch_error {
            Some(status::ERR_FETCH)
        } else {
            self.validate(&desc)
        };
        let active = Active {
            desc,
            seq,
            index,
            moved: 0,
            limit: desc.len,
            status: status::OK,
            fx,
            halt_code: 0,
        };
        if let Some(st) = reject {
            // A failed fetch has no cookie; a rejected descriptor keeps its own.
            let cookie = if fx.fetch_error { 0 } else { desc.cookie };
            let pending = Active {
                status: st,
                limit: 0,
                desc: Descriptor { cookie, ..desc },
                ..active
            };
            self.push_wb(c, pending);
            return self.kick(c);
        }
        let limit = fx.short.map_or(desc.len, |b| b.min(desc.len));
        self.channels[usize::from(c)].fetched = Some(Active { limit, ..active });
        self.try_start(c);
    }

    fn consult_faults(&mut self, c: u8, seq: u64) -> Effects {
        let mut fx = Effects::default();
        if self.faults.is_disabled() {
            return fx;
        }
        let mut applied = std::mem::take(&mut self.fault_buf);
        let ctx = DescriptorContext {
            seq,
            channel: c,
            cycle: self.now,
        };
        self.faults.on_descriptor(&ctx, &mut applied);
        for a in &applied {
            let rule = u32::try_from(a.rule).unwrap_or(u32::MAX);
            let effect = a.effect;
            self.trace.push(
                self.now,
                EventKind::FaultApplied {
                    seq,
                    channel: c,
                    rule,
                    effect,
                },
            );
            fold(&mut fx, effect);
        }
        self.fault_buf = applied;
        fx
    }

    /// Checks a descriptor; `Some(status)` rejects it.
    fn validate(&mut self, d: &Descriptor) -> Option<u16> {
        if d.op != OP_COPY && d.op != OP_FILL {
            return Some(status::ERR_OP);
        }
        if d.len == 0 || d.len > self.cfg.max_transfer {
            return Some(status::ERR_LEN);
        }
        let len = u64::from(d.len);
        if d.op == OP_COPY && !self.guest.in_ram_for_bursts(d.src, len) {
            self.pci
                .config_mut()
                .flag_status(crate::pci::config::STS_RECEIVED_MASTER_ABORT);
            return Some(status::ERR_SRC);
        }
        if !self.guest.in_ram_for_bursts(d.dst, len) {
            self.pci
                .config_mut()
                .flag_status(crate::pci::config::STS_RECEIVED_MASTER_ABORT);
            return Some(status::ERR_DST);
        }
        None
    }

    /// Moves the fetched descriptor into its data phase when allowed.
    pub(super) fn try_start(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        let Some(f) = ch.fetched else { return };
        if ch.active.is_some() || (f.desc.fence() && !ch.wb.is_empty()) {
            return;
        }
        ch.fetched = None;
        let mut a = f;
        if a.fx.hang {
            ch.active = Some(a);
            ch.hung = true;
            return;
        }
        if a.fx.halt {
            (a.status, a.limit, a.halt_code) = (status::ERR_HALTED, 0, error_code::HALT);
        } else if let Some(fatal) = a.fx.dma_error {
            (a.status, a.limit) = (status::ERR_DMA, 0);
            a.halt_code = if fatal { error_code::DMA_FATAL } else { 0 };
        }
        if a.halt_code != 0 {
            ch.halting = true;
        }
        ch.active = Some(a);
        if a.limit > 0 && a.fx.spike > 0 {
            ch.timers[T_START] = self.now.saturating_add(a.fx.spike);
            return;
        }
        self.begin_data(c);
    }

    fn begin_data(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        let Some(a) = ch.active else { return };
        if a.moved >= a.limit {
            return self.finish_data(c);
        }
        ch.wants_bus = true;
        if self.bus_owner.is_none() {
            self.grant(c);
        }
    }

    fn grant(&mut self, c: u8) {
        let burst = self.cfg.timing.burst_bytes;
        let ch = &mut self.channels[usize::from(c)];
        let Some(a) = ch.active else { return };
        let bytes = (a.limit - a.moved).min(burst);
        let cycles = if bytes == burst {
            self.full_burst_cycles
        } else {
            self.cfg.timing.burst_cycles(bytes)
        };
        ch.timers[T_BURST] = self.now.saturating_add(cycles);
        ch.burst_granted = self.now;
        self.bus_owner = Some(c);
    }

    fn on_burst_end(&mut self, c: u8) {
        self.bus_owner = None;
        if let Some(a) = self.channels[usize::from(c)].active {
            self.move_burst(c, a);
        }
        self.arbitrate(c);
    }

    fn move_burst(&mut self, c: u8, mut a: Active) {
        let bytes = (a.limit - a.moved).min(self.cfg.timing.burst_bytes);
        let dst = a.desc.dst.wrapping_add(u64::from(a.moved));
        let r = if a.desc.op == OP_FILL {
            self.guest
                .fill(self.pci.config_mut(), dst, a.moved, bytes, a.desc.src)
                .map_err(|e| (e, false))
        } else {
            let src = a.desc.src.wrapping_add(u64::from(a.moved));
            self.guest.copy(self.pci.config_mut(), src, dst, bytes)
        };
        match r {
            Ok(()) => a.moved += bytes,
            Err((super::guest_mem::DmaError::NoBusMaster, _)) => {
                self.channels[usize::from(c)].active = Some(a);
                return self.enter_error(c, error_code::NO_BUS_MASTER);
            }
            Err((_, src)) => {
                a.status = if src {
                    status::ERR_SRC
                } else {
                    status::ERR_DST
                };
                a.limit = a.moved;
            }
        }
        let ch = &mut self.channels[usize::from(c)];
        self.trace
            .push_burst(ch.burst_granted, self.now, c, a.seq, bytes);
        ch.active = Some(a);
        if a.moved >= a.limit {
            ch.wants_bus = false;
            self.finish_data(c);
        }
    }

    /// Grants the bus to the next channel after `last` with a burst ready.
    pub(super) fn arbitrate(&mut self, last: u8) {
        if self.bus_owner.is_some() {
            return;
        }
        let n = self.cfg.channels;
        let mut c = last;
        for _ in 0..n {
            c = if c + 1 >= n { 0 } else { c + 1 };
            let ch = &self.channels[usize::from(c)];
            if ch.wants_bus && ch.active.is_some() {
                return self.grant(c);
            }
        }
    }

    fn finish_data(&mut self, c: u8) {
        let Some(mut a) = self.channels[usize::from(c)].active.take() else {
            return;
        };
        self.channels[usize::from(c)].wants_bus = false;
        if a.fx.corrupt > 0 && a.moved > 0 {
            let bits = u64::from(a.moved) * 8;
            for i in 0..a.fx.corrupt {
                let pos = self.faults.effect_random(a.seq, u64::from(i)) % bits;
                if self
                    .guest
                    .flip(
                        self.pci.config_mut(),
                        a.desc.dst.wrapping_add(pos / 8),
                        (pos % 8) as u32,
                    )
                    .is_err()
                {
                    break;
                }
            }
        }
        if a.status == status::OK && a.moved < a.desc.len {
            a.status = status::SHORT;
        }
        self.push_wb(c, a);
        self.try_start(c);
        self.kick(c);
    }

    fn push_wb(&mut self, c: u8, a: Active) {
        let at = self.now.saturating_add(self.cfg.timing.writeback_latency);
        let p = Pending {
            cookie: a.desc.cookie,
            seq: a.seq,
            index: a.index,
            bytes: a.moved,
            status: a.status,
            ioc: a.desc.ioc(),
            fx: a.fx,
            halt_code: a.halt_code,
            at,
        };
        let ch = &mut self.channels[usize::from(c)];
        ch.wb.push_back(p);
        if ch.wb.len() == 1 && !ch.comp_full {
            ch.timers[T_WB] = at;
        }
    }

    fn on_writeback(&mut self, c: u8) {
        if !self.has_comp_space(c) {
            self.channels[usize::from(c)].comp_full = true;
            return;
        }
        let Some(p) = self.channels[usize::from(c)].wb.pop_front() else {
            return;
        };
        if !self.complete(c, p) {
            return;
        }
        if p.halt_code != 0 {
            return self.enter_error(c, p.halt_code);
        }
        let now = self.now;
        let ch = &mut self.channels[usize::from(c)];
        if let Some(next) = ch.wb.front() {
            ch.timers[T_WB] = next.at.max(now);
        }
        self.try_start(c);
        self.kick(c);
    }

    /// Whether a completion record fits, re-reading the shadow's
    /// `comp_head` when the ring looks full.
    pub(super) fn has_comp_space(&mut self, c: u8) -> bool {
        let ch = &self.channels[usize::from(c)];
        if !ch.comp_ring_full() {
            return true;
        }
        if ch.shadow_base == 0 {
            return false;
        }
        if let Some((_, head)) = self.read_shadow(c) {
            self.apply_comp_head(c, head);
        }
        let ch = &self.channels[usize::from(c)];
        ch.enabled && !ch.comp_ring_full()
    }

    /// Writes `p`'s record (unless a fault suppresses it), advances the
    /// indices and applies its interrupt. Returns false if the channel
    /// stopped.
    pub(super) fn complete(&mut self, c: u8, p: Pending) -> bool {
        let now = self.now;
        let ch = &mut self.channels[usize::from(c)];
        let size = ch.ring_size.max(1);
        let rec = Completion {
            cookie: p.cookie,
            bytes_done: p.bytes,
            status: p.status,
            flags: if ch.phase { COMP_PHASE } else { 0 },
            channel: c,
            timestamp: now,
            seq: lo32(p.seq),
            index: u16::try_from(p.index).unwrap_or(u16::MAX),
        };
        let written = if p.fx.stale {
            Completion {
                cookie: ch.last.cookie,
                bytes_done: ch.last.bytes_done,
                status: ch.last.status,
                seq: ch.last.seq,
                ..rec
            }
        } else {
            rec
        };
        let addr = ch
            .comp_base
            .wrapping_add(u64::from(ch.comp_tail) * DESCRIPTOR_SIZE);
        ch.last = rec;
        let write = !p.fx.missing && ch.enabled;
        if write {
            if let Err(e) = self
                .guest
                .write(self.pci.config_mut(), addr, &written.to_bytes())
            {
                self.trace_completion(c, &p, false);
                if !self.channels[usize::from(c)].stopping {
                    self.enter_error(c, e.channel_code(error_code::COMP_WRITE));
                    return false;
                }
                let ch = &mut self.channels[usize::from(c)];
                ch.head = (p.index + 1) % size;
                return true;
            }
        }
        let ch = &mut self.channels[usize::from(c)];
        ch.comp_tail = (ch.comp_tail + 1) % size;
        if ch.comp_tail == 0 {
            ch.phase = !ch.phase;
        }
        ch.head = (p.index + 1) % size;
        ch.completed = ch.completed.wrapping_add(1);
        self.trace_completion(c, &p, write);
        self.completion_irq(c, &p);
        true
    }

    pub(super) fn trace_completion(&mut self, c: u8, p: &Pending, written: bool) {
        let kind = EventKind::Completion {
            channel: c,
            seq: p.seq,
            index: p.index,
            status: p.status,
            bytes: p.bytes,
            written,
        };
        self.trace.push(self.now, kind);
    }
}

/// Folds one applied effect into a descriptor's effects.
fn fold(fx: &mut Effects, effect: FaultEffect) {
    match effect {
        FaultEffect::DropInterrupt => fx.drop_irq = true,
        FaultEffect::DelayInterrupt { cycles } => {
            fx.delay_irq = fx.delay_irq.saturating_add(cycles)
        }
        FaultEffect::DuplicateInterrupt => fx.dup_irq = true,
        FaultEffect::SpuriousInterrupt => fx.spurious = true,
        FaultEffect::InterruptStorm { count } => fx.storm = fx.storm.saturating_add(count),
        FaultEffect::DmaError { fatal } => fx.dma_error = Some(fatal || fx.dma_error == Some(true)),
        FaultEffect::ShortTransfer { bytes } => {
            fx.short = Some(fx.short.map_or(bytes, |b| b.min(bytes)))
        }
        FaultEffect::CorruptData { flips } => {
            fx.corrupt = fx.corrupt.saturating_add(flips).min(1 << 16)
        }
        FaultEffect::Hang => fx.hang = true,
        FaultEffect::Halt => fx.halt = true,
        FaultEffect::FetchError => fx.fetch_error = true,
        FaultEffect::MissingCompletion => fx.missing = true,
        FaultEffect::StaleCompletion => fx.stale = true,
        FaultEffect::LatencySpike { cycles } => fx.spike = fx.spike.saturating_add(cycles),
        FaultEffect::SurpriseRemoval => fx.removal = true,
    }
}
