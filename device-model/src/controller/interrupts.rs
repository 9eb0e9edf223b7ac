//! Interrupt causes (spec §6): which completions signal, coalescing by
//! count and time, fault-made extra/delayed/dropped messages, and the
//! `INT_STATUS`/`INT_MASK` gate in front of the PCI function's MSI-X/MSI
//! decision.

use vm_memory::GuestMemory;

use super::channel::{Pending, NEVER, T_COALESCE, T_EXTRA, T_IRQ, T_STORM};
use super::Controller;
use crate::interrupt_sink::InterruptSink;
use crate::regs::{self, status};
use crate::trace::{DropReason, EventKind};

/// `INT_STATUS` (causes latched) and `INT_MASK` (causes that send nothing).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Causes {
    status: u32,
    mask: u32,
}

impl Causes {
    /// `INT_STATUS`.
    pub(super) fn status(&self) -> u32 {
        self.status
    }

    /// `INT_MASK`.
    pub(super) fn mask(&self) -> u32 {
        self.mask
    }

    /// A W1C write of `INT_STATUS`.
    pub(super) fn acknowledge(&mut self, bits: u32) {
        self.status &= !bits;
    }

    fn latch(&mut self, bit: u32) {
        self.status |= bit;
    }

    fn masked(&self, bit: u32) -> bool {
        self.mask & bit != 0
    }

    /// Sets `INT_MASK`; returns the latched causes it unmasked.
    fn set_mask(&mut self, mask: u32) -> u32 {
        let released = self.mask & !mask & self.status;
        self.mask = mask;
        released
    }
}

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    pub(super) fn completion_irq(&mut self, c: u8, p: &Pending) {
        let error = status::is_error(p.status);
        if error {
            self.fire(self.error_vector());
        }
        let irq_at = self.now.saturating_add(self.cfg.timing.irq_latency);
        let ch = &mut self.channels[usize::from(c)];
        if p.fx.storm > 0 {
            ch.storm_left = ch.storm_left.saturating_add(p.fx.storm);
            ch.arm_min(T_STORM, self.now.saturating_add(1));
        }
        if !(p.ioc || error) || p.fx.drop_irq {
            return;
        }
        if p.fx.delay_irq > 0 {
            ch.delayed.push(irq_at.saturating_add(p.fx.delay_irq));
            return ch.arm_min(T_EXTRA, irq_at.saturating_add(p.fx.delay_irq));
        }
        if p.fx.dup_irq {
            (ch.irq_pending, ch.timers[T_COALESCE]) = (0, NEVER);
            ch.arm_min(T_IRQ, irq_at);
            ch.delayed.push(irq_at.saturating_add(1));
            return ch.arm_min(T_EXTRA, irq_at.saturating_add(1));
        }
        ch.irq_pending += 1;
        if ch.irq_pending >= ch.coalesce_count.max(1) {
            (ch.irq_pending, ch.timers[T_COALESCE]) = (0, NEVER);
            ch.arm_min(T_IRQ, irq_at);
        } else if ch.coalesce_time > 0 && ch.timers[T_COALESCE] == NEVER {
            ch.timers[T_COALESCE] = self.now.saturating_add(u64::from(ch.coalesce_time));
        }
    }

    pub(super) fn on_coalesce(&mut self, c: u8) {
        let irq_at = self.now.saturating_add(self.cfg.timing.irq_latency);
        let ch = &mut self.channels[usize::from(c)];
        if ch.irq_pending > 0 {
            ch.irq_pending = 0;
            ch.arm_min(T_IRQ, irq_at);
        }
    }

    pub(super) fn on_extra(&mut self, c: u8) {
        let now = self.now;
        let ch = &mut self.channels[usize::from(c)];
        let due = ch.delayed.iter().filter(|&&t| t <= now).count();
        ch.delayed.retain(|&t| t > now);
        ch.timers[T_EXTRA] = ch.delayed.iter().copied().min().unwrap_or(NEVER);
        for _ in 0..due {
            self.fire(u16::from(c));
        }
    }

    pub(super) fn on_storm(&mut self, c: u8) {
        let ch = &mut self.channels[usize::from(c)];
        if ch.storm_left == 0 {
            return;
        }
        ch.storm_left -= 1;
        if ch.storm_left > 0 {
            ch.timers[T_STORM] = self.now.saturating_add(1);
        }
        self.fire(u16::from(c));
    }

    /// The `INT_STATUS` bit of `vector`: channel *i* is bit *i*, the
    /// error vector bit 31.
    fn cause_bit(&self, vector: u16) -> u32 {
        if vector < u16::from(self.cfg.channels) {
            1 << vector
        } else {
            regs::INT_ERROR
        }
    }

    /// A write of `INT_MASK`: unmasking a latched cause sends it.
    pub(super) fn set_int_mask(&mut self, v: u32) {
        let released = self.causes.set_mask(v);
        for vector in 0..=u16::from(self.cfg.channels) {
            if released & self.cause_bit(vector) != 0 {
                self.pci
                    .deliver(vector, &mut self.irq, &mut self.trace, self.now);
            }
        }
    }

    pub(super) fn error_vector(&self) -> u16 {
        u16::from(self.cfg.channels)
    }

    /// A cause fires on `vector`: latch it in `INT_STATUS`, then send it
    /// unless `INT_MASK` holds it.
    pub(super) fn fire(&mut self, vector: u16) {
        if self.removed {
            return;
        }
        let bit = self.cause_bit(vector);
        self.causes.latch(bit);
        self.trace.push(self.now, EventKind::MsiRaised { vector });
        if self.causes.masked(bit) {
            let reason = DropReason::CauseMasked;
            return self
                .trace
                .push(self.now, EventKind::MsiDropped { vector, reason });
        }
        self.pci
            .deliver(vector, &mut self.irq, &mut self.trace, self.now);
    }
}
