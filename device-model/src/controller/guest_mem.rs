//! The device's DMA accesses to guest memory: every byte the model reads or
//! writes goes through here, through vm-memory's checked `Bytes` methods, so
//! nothing outside the memory the model was given is ever touched, and a
//! cleared bus-master bit stops every access.

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use super::Controller;
use crate::interrupt_sink::InterruptSink;
use crate::pci::config::{STS_RECEIVED_MASTER_ABORT, STS_SIGNALED_TARGET_ABORT};
use crate::regs::error_code;

/// Why a DMA access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum DmaError {
    /// The command register's bus-master bit is clear.
    #[error("bus mastering is disabled")]
    NoBusMaster,
    /// The range is not wholly in guest memory.
    #[error("DMA range at {0:#x} is outside guest memory")]
    OutOfRange(u64),
}

impl DmaError {
    /// The channel error code this failure maps to when it stops a channel.
    pub(super) fn channel_code(self, otherwise: u32) -> u32 {
        match self {
            DmaError::NoBusMaster => error_code::NO_BUS_MASTER,
            DmaError::OutOfRange(_) => otherwise,
        }
    }
}

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    /// Whether `[addr, addr + len)` is wholly in guest memory.
    pub(super) fn in_ram(&self, addr: u64, len: u64) -> bool {
        let Ok(count) = usize::try_from(len) else {
            return false;
        };
        addr.checked_add(len).is_some()
            && (len == 0
                || self
                    .mem
                    .check_range(GuestAddress(addr), count, Permissions::ReadWrite))
    }

    fn dma_check(&mut self, addr: u64) -> Result<(), DmaError> {
        if !self.pci.config().bus_master() {
            self.pci.config_mut().flag_status(STS_SIGNALED_TARGET_ABORT);
            return Err(DmaError::NoBusMaster);
        }
        let _ = addr;
        Ok(())
    }

    fn range_error(&mut self, addr: u64) -> DmaError {
        self.pci.config_mut().flag_status(STS_RECEIVED_MASTER_ABORT);
        DmaError::OutOfRange(addr)
    }

    /// Reads guest memory at `addr` into `buf`.
    pub(super) fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.dma_check(addr)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.read_slice(buf, GuestAddress(addr)).is_err() {
            return Err(self.range_error(addr));
        }
        Ok(())
    }

    /// Writes `buf` to guest memory at `addr`.
    pub(super) fn dma_write(&mut self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        self.dma_check(addr)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.write_slice(buf, GuestAddress(addr)).is_err() {
            return Err(self.range_error(addr));
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` through the scratch buffer.
    pub(super) fn dma_copy(
        &mut self,
        src: u64,
        dst: u64,
        len: u32,
    ) -> Result<(), (DmaError, bool)> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = (len as usize).min(scratch.len());
        let r = self
            .dma_read(src, &mut scratch[..n])
            .map_err(|e| (e, true))
            .and_then(|()| self.dma_write(dst, &scratch[..n]).map_err(|e| (e, false)));
        self.scratch = scratch;
        r
    }

    /// Writes `len` bytes of the repeated 8-byte `pattern` at `dst`, where
    /// `dst` is `offset` bytes into the fill.
    pub(super) fn dma_fill(
        &mut self,
        dst: u64,
        offset: u32,
        len: u32,
        pattern: u64,
    ) -> Result<(), DmaError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = (len as usize).min(scratch.len());
        let p = pattern.to_le_bytes();
        for (i, b) in scratch[..n].iter_mut().enumerate() {
            *b = p[(offset as usize + i) % 8];
        }
        let r = self.dma_write(dst, &scratch[..n]);
        self.scratch = scratch;
        r
    }

    /// Flips bit `bit` of the byte at `addr`.
    pub(super) fn dma_flip(&mut self, addr: u64, bit: u32) -> Result<(), DmaError> {
        let mut b = [0u8; 1];
        self.dma_read(addr, &mut b)?;
        b[0] ^= 1 << (bit % 8);
        self.dma_write(addr, &b)
    }

    /// Reads channel `c`'s shadow: (tail, comp_head). A failed read stops an
    /// enabled channel (`ERR_RING_ADDR` or `ERR_NO_BUS_MASTER`).
    pub(super) fn read_shadow(&mut self, c: u8) -> Option<(u32, u32)> {
        let base = self.channels[usize::from(c)].shadow_base;
        let mut b = [0u8; 8];
        match self.dma_read(base, &mut b) {
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
}
