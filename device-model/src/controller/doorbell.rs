//! The doorbell (spec §4.3): a `TAIL` write with its value, or a
//! value-less kick (ioeventfd) that reads the tail and the completion head
//! from the channel's shadow in guest memory; and the completion head the
//! driver hands back (register or shadow), which frees completion-ring
//! space.

use vm_memory::GuestMemory;

use super::channel::T_WB;
use super::Controller;
use crate::interrupt_sink::InterruptSink;
use crate::regs::error_code;
use crate::trace::{AccessError, EventKind, Space};

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    /// The doorbell: `Some(tail)` is an MMIO write of `TAIL` (value known);
    /// `None` is a value-less kick (ioeventfd) that reads the tail (and the
    /// completion head) from the channel's shadow (spec §4.3).
    ///
    /// ```
    /// use device_model::{Controller, DeviceConfig, RecordingSink, EventKind};
    /// use device_model::regs::{self, channel_reg};
    /// use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
    /// let mut dev = Controller::new(DeviceConfig::default(), mem.clone(), RecordingSink::default()).unwrap();
    /// dev.config_write(4, &[0x06, 0]);
    /// let w = |dev: &mut Controller<_, _>, r, v: u32| dev.mmio_write(0, channel_reg(0, r), &v.to_le_bytes());
    /// w(&mut dev, regs::CH_RING_BASE, 0x1000);
    /// w(&mut dev, regs::CH_RING_SIZE, 8);
    /// w(&mut dev, regs::CH_COMP_BASE, 0x2000);
    /// w(&mut dev, regs::CH_SHADOW_BASE, 0x3000);
    /// w(&mut dev, regs::CH_CTRL, regs::CTRL_ENABLE);
    /// mem.write_obj(1u32, GuestAddress(0x3000)).unwrap(); // shadow.tail = 1
    /// dev.doorbell(0, None);                              // ioeventfd kick
    /// let kinds: Vec<_> = dev.trace_events().iter().map(|e| e.kind).collect();
    /// assert!(kinds.contains(&EventKind::Doorbell { channel: 0, tail: 1, from_shadow: true }));
    /// ```
    pub fn doorbell(&mut self, channel: u8, tail: Option<u32>) {
        if self.removed {
            return;
        }
        let Some(ch) = self.channels.get(usize::from(channel)) else {
            return self.bad(
                Space::Doorbell,
                u64::from(channel),
                0,
                AccessError::NoRegister,
            );
        };
        let (tail, from_shadow) = match tail {
            Some(t) => (t, false),
            None if ch.shadow_base == 0 => {
                return self.bad(
                    Space::Doorbell,
                    u64::from(channel),
                    0,
                    AccessError::NoShadow,
                )
            }
            None => match self.read_shadow(channel) {
                Some((t, comp_head)) => {
                    self.apply_comp_head(channel, comp_head);
                    (t, true)
                }
                None => return,
            },
        };
        self.trace.push(
            self.now,
            EventKind::Doorbell {
                channel,
                tail,
                from_shadow,
            },
        );
        let ch = &mut self.channels[usize::from(channel)];
        if !ch.enabled {
            ch.tail = tail;
            return;
        }
        if tail >= ch.ring_size {
            return self.enter_error(channel, error_code::TAIL_RANGE);
        }
        ch.tail = tail;
        self.kick(channel);
    }

    /// Reads channel `c`'s shadow: (tail, comp_head). A failed read stops an
    /// enabled channel (`ERR_RING_ADDR` or `ERR_NO_BUS_MASTER`).
    pub(super) fn read_shadow(&mut self, c: u8) -> Option<(u32, u32)> {
        let base = self.channels[usize::from(c)].shadow_base;
        let mut b = [0u8; 8];
        match self.guest.read(self.pci.config_mut(), base, &mut b) {
            Ok(()) => Some((
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )),
            Err(e) => {
                let ch = &self.channels[usize::from(c)];
                if ch.enabled && !ch.stopping {
                    self.enter_error(c, e.channel_code(error_code::RING_ADDR));
                }
                None
            }
        }
    }

    /// Applies a new completion head (register or shadow).
    pub(super) fn apply_comp_head(&mut self, c: u8, v: u32) {
        let ch = &mut self.channels[usize::from(c)];
        if !ch.enabled {
            ch.comp_head = v;
            return;
        }
        if v >= ch.ring_size {
            return self.enter_error(c, error_code::COMP_HEAD_RANGE);
        }
        ch.comp_head = v;
        if ch.comp_full && !ch.comp_ring_full() {
            ch.comp_full = false;
            ch.arm_min(T_WB, self.now);
        }
    }
}
