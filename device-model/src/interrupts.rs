//! Interrupt causes (spec §6): which completions signal, coalescing by
//! count and time, fault-made extra/delayed/dropped messages, and the
//! `INT_STATUS`/`INT_MASK` gate in front of the PCI function's MSI-X/MSI
//! decision.

use vm_memory::GuestMemory;

use crate::channel::{Pending, NEVER, T_COALESCE, T_EXTRA, T_IRQ, T_STORM};
use crate::controller::Controller;
use crate::irq::InterruptSink;
use crate::regs::status;
use crate::trace::{DropReason, EventKind};

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    pub(crate) fn completion_irq(&mut self, c: u8, p: &Pending) {
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

    pub(crate) fn on_coalesce(&mut self, c: u8) {
        let irq_at = self.now.saturating_add(self.cfg.timing.irq_latency);
        let ch = &mut self.channels[usize::from(c)];
        if ch.irq_pending > 0 {
            ch.irq_pending = 0;
            ch.arm_min(T_IRQ, irq_at);
        }
    }

    pub(crate) fn on_extra(&mut self, c: u8) {
        let now = self.now;
        let ch = &mut self.channels[usize::from(c)];
        let due = ch.delayed.iter().filter(|&&t| t <= now).count();
        ch.delayed.retain(|&t| t > now);
        ch.timers[T_EXTRA] = ch.delayed.iter().copied().min().unwrap_or(NEVER);
        for _ in 0..due {
            self.fire(u16::from(c));
        }
    }

    pub(crate) fn on_storm(&mut self, c: u8) {
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

    pub(crate) fn error_vector(&self) -> u16 {
        u16::from(self.cfg.channels)
    }

    /// A cause fires on `vector`: latch it in `INT_STATUS`, then send it
    /// unless `INT_MASK` holds it.
    pub(crate) fn fire(&mut self, vector: u16) {
        if self.removed {
            return;
        }
        self.int_status |= self.cause_bit(vector);
        self.trace.push(self.now, EventKind::MsiRaised { vector });
        if self.int_mask & self.cause_bit(vector) != 0 {
            let reason = DropReason::CauseMasked;
            return self
                .trace
                .push(self.now, EventKind::MsiDropped { vector, reason });
        }
        self.pci
            .deliver(vector, &mut self.irq, &mut self.trace, self.now);
    }
}
