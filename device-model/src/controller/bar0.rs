//! The BAR0 register state machine (spec §3): access-shape checks, the
//! dword read and write of every global and channel register, one match arm
//! per register. Side effects (doorbell, enable, abort, reset) call into the
//! controller and the pipeline.

use vm_memory::GuestMemory;

use super::Controller;
use crate::interrupt_sink::InterruptSink;
use crate::regs::{self, decode_bar0, Bar0Reg};
use crate::trace::{AccessError, EventKind, Space};

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    pub(super) fn is_wide(offset: u64, channels: u8) -> bool {
        match decode_bar0(offset, channels) {
            Bar0Reg::Global(o) => o == regs::CYCLE,
            Bar0Reg::Channel(_, r) => matches!(
                r,
                regs::CH_RING_BASE | regs::CH_COMP_BASE | regs::CH_SHADOW_BASE
            ),
            Bar0Reg::None => false,
        }
    }

    pub(super) fn bar0_shape_ok(&self, offset: u64, len: usize) -> bool {
        match len {
            4 => offset % 4 == 0,
            8 => offset % 8 == 0 && Self::is_wide(offset, self.cfg.channels),
            _ => false,
        }
    }

    pub(super) fn bar0_read(&mut self, offset: u64, data: &mut [u8]) {
        if !self.bar0_shape_ok(offset, data.len()) {
            return self.bad(Space::Bar0, offset, data.len(), AccessError::BadSize);
        }
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            match self.read_dword(offset + 4 * i as u64) {
                Some(v) => chunk.copy_from_slice(&v.to_le_bytes()),
                None => return self.bad(Space::Bar0, offset, 4, AccessError::NoRegister),
            }
        }
    }

    pub(super) fn bar0_write(&mut self, offset: u64, data: &[u8]) {
        if !self.bar0_shape_ok(offset, data.len()) {
            return self.bad(Space::Bar0, offset, data.len(), AccessError::BadSize);
        }
        for (i, chunk) in data.chunks(4).enumerate() {
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let at = offset + 4 * i as u64;
            if let Err(e) = self.write_dword(at, v) {
                self.bad(Space::Bar0, at, 4, e);
            }
        }
    }

    pub(super) fn caps(&self) -> u32 {
        let log2 = self.cfg.max_ring_size.trailing_zeros();
        (u32::from(self.cfg.channels) << regs::CAPS_CHANNELS_SHIFT)
            | (log2 << regs::CAPS_RING_LOG2_SHIFT)
            | regs::CAPS_FENCE
            | regs::CAPS_SHADOW
            | regs::CAPS_FILL
    }

    pub(super) fn read_dword(&self, offset: u64) -> Option<u32> {
        let (lo, hi) = (regs::lo32, regs::hi32);
        match decode_bar0(offset, self.cfg.channels) {
            Bar0Reg::Global(o) => Some(match o {
                regs::ID => regs::ID_VALUE,
                regs::VERSION => regs::VERSION_VALUE,
                regs::CAPS => self.caps(),
                regs::MAX_XFER => self.cfg.max_transfer,
                regs::GCTRL | regs::TRACE_MARKER => 0,
                regs::CLOCK_MHZ => {
                    u32::try_from(self.cfg.timing.clock_hz / 1_000_000).unwrap_or(u32::MAX)
                }
                regs::INT_STATUS => self.causes.status(),
                regs::INT_MASK => self.causes.mask(),
                regs::CYCLE => lo(self.now),
                regs::CYCLE_HI => hi(self.now),
                regs::BAD_ACCESS => self.bad_access,
                _ => return None,
            }),
            Bar0Reg::Channel(c, r) => {
                let ch = &self.channels[usize::from(c)];
                Some(match r {
                    regs::CH_RING_BASE => lo(ch.ring_base),
                    regs::CH_RING_BASE_HI => hi(ch.ring_base),
                    regs::CH_RING_SIZE => ch.ring_size,
                    regs::CH_HEAD => ch.head,
                    regs::CH_TAIL => ch.tail,
                    regs::CH_CTRL => u32::from(ch.enabled),
                    regs::CH_STATUS => ch.status(),
                    regs::CH_ERROR_CODE => ch.error_code,
                    regs::CH_COMP_BASE => lo(ch.comp_base),
                    regs::CH_COMP_BASE_HI => hi(ch.comp_base),
                    regs::CH_COMP_HEAD => ch.comp_head,
                    regs::CH_COMP_TAIL => ch.comp_tail,
                    regs::CH_COALESCE_COUNT => ch.coalesce_count,
                    regs::CH_COALESCE_TIME => ch.coalesce_time,
                    regs::CH_SHADOW_BASE => lo(ch.shadow_base),
                    regs::CH_SHADOW_BASE_HI => hi(ch.shadow_base),
                    regs::CH_COMPLETED => ch.completed,
                    _ => return None,
                })
            }
            Bar0Reg::None => None,
        }
    }

    pub(super) fn write_dword(&mut self, offset: u64, v: u32) -> Result<(), AccessError> {
        match decode_bar0(offset, self.cfg.channels) {
            Bar0Reg::Global(o) => self.write_global(o, v),
            Bar0Reg::Channel(c, r) => self.write_channel(c, r, v),
            Bar0Reg::None => Err(AccessError::NoRegister),
        }
    }

    pub(super) fn write_global(&mut self, o: u64, v: u32) -> Result<(), AccessError> {
        match o {
            regs::GCTRL if v & regs::GCTRL_RESET != 0 => self.device_reset(),
            regs::GCTRL => {}
            regs::INT_STATUS => self.causes.acknowledge(v),
            regs::INT_MASK => self.set_int_mask(v),
            regs::TRACE_MARKER => self
                .trace
                .push(self.now, EventKind::DriverMarker { value: v }),
            regs::ID
            | regs::VERSION
            | regs::CAPS
            | regs::MAX_XFER
            | regs::CLOCK_MHZ
            | regs::BAD_ACCESS => return Err(AccessError::ReadOnly),
            regs::CYCLE | regs::CYCLE_HI => return Err(AccessError::ReadOnly),
            _ => return Err(AccessError::NoRegister),
        }
        Ok(())
    }

    pub(super) fn write_channel(&mut self, c: u8, r: u64, v: u32) -> Result<(), AccessError> {
        let ch = &mut self.channels[usize::from(c)];
        let setup = !ch.enabled;
        let set_lo = |x: &mut u64| *x = (*x & !0xFFFF_FFFF) | u64::from(v);
        let set_hi = |x: &mut u64| *x = (*x & 0xFFFF_FFFF) | (u64::from(v) << 32);
        match r {
            regs::CH_RING_BASE if setup => set_lo(&mut ch.ring_base),
            regs::CH_RING_BASE_HI if setup => set_hi(&mut ch.ring_base),
            regs::CH_RING_SIZE if setup => ch.ring_size = v,
            regs::CH_COMP_BASE if setup => set_lo(&mut ch.comp_base),
            regs::CH_COMP_BASE_HI if setup => set_hi(&mut ch.comp_base),
            regs::CH_SHADOW_BASE if setup => set_lo(&mut ch.shadow_base),
            regs::CH_SHADOW_BASE_HI if setup => set_hi(&mut ch.shadow_base),
            regs::CH_COALESCE_COUNT => ch.coalesce_count = v & regs::COALESCE_COUNT_MASK,
            regs::CH_COALESCE_TIME => ch.coalesce_time = v,
            regs::CH_TAIL => self.doorbell(c, Some(v)),
            regs::CH_CTRL => self.ctrl_write(c, v),
            regs::CH_COMP_HEAD => self.comp_head_write(c, v),
            regs::CH_RING_BASE
            | regs::CH_RING_BASE_HI
            | regs::CH_RING_SIZE
            | regs::CH_COMP_BASE
            | regs::CH_COMP_BASE_HI
            | regs::CH_SHADOW_BASE
            | regs::CH_SHADOW_BASE_HI => return Err(AccessError::ReadOnly),
            regs::CH_HEAD | regs::CH_STATUS => return Err(AccessError::ReadOnly),
            regs::CH_ERROR_CODE | regs::CH_COMP_TAIL | regs::CH_COMPLETED => {
                return Err(AccessError::ReadOnly)
            }
            _ => return Err(AccessError::NoRegister),
        }
        Ok(())
    }

    pub(super) fn ctrl_write(&mut self, c: u8, v: u32) {
        let ch = &self.channels[usize::from(c)];
        if v & regs::CTRL_RESET != 0 {
            self.channel_reset(c);
        } else if v & regs::CTRL_ABORT != 0 || (v & regs::CTRL_ENABLE == 0 && ch.enabled) {
            self.abort(c);
        } else if v & regs::CTRL_ENABLE != 0 && !ch.enabled && !ch.in_error {
            self.enable(c);
        }
    }

    pub(super) fn comp_head_write(&mut self, c: u8, v: u32) {
        self.apply_comp_head(c, v);
    }
}
