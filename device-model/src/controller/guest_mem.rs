//! The device's DMA accesses to guest memory: every byte the model reads or
//! writes goes through here, through vm-memory's checked `Bytes` methods, so
//! nothing outside the memory the model was given is ever touched, and a
//! cleared bus-master bit stops every access. [`GuestMem`] owns the memory
//! and the burst buffer; each access takes the function's config space,
//! which says whether bus mastering is on and records master aborts.

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use crate::pci::config::{ConfigSpace, STS_RECEIVED_MASTER_ABORT, STS_SIGNALED_TARGET_ABORT};
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

/// Guest memory as the device reaches it, and the burst buffer that
/// copies and fills go through (allocated once).
pub(super) struct GuestMem<M> {
    mem: M,
    scratch: Vec<u8>,
}

impl<M: GuestMemory> GuestMem<M> {
    /// `mem`, with a burst buffer of `burst` bytes.
    pub(super) fn new(mem: M, burst: usize) -> Self {
        GuestMem {
            mem,
            scratch: vec![0; burst],
        }
    }

    /// The memory.
    pub(super) fn memory(&self) -> &M {
        &self.mem
    }

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

    fn check(pci: &mut ConfigSpace) -> Result<(), DmaError> {
        if !pci.bus_master() {
            pci.flag_status(STS_SIGNALED_TARGET_ABORT);
            return Err(DmaError::NoBusMaster);
        }
        Ok(())
    }

    fn range_error(pci: &mut ConfigSpace, addr: u64) -> DmaError {
        pci.flag_status(STS_RECEIVED_MASTER_ABORT);
        DmaError::OutOfRange(addr)
    }

    /// Reads guest memory at `addr` into `buf`.
    pub(super) fn read(
        &self,
        pci: &mut ConfigSpace,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), DmaError> {
        Self::check(pci)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.read_slice(buf, GuestAddress(addr)).is_err() {
            return Err(Self::range_error(pci, addr));
        }
        Ok(())
    }

    /// Writes `buf` to guest memory at `addr`.
    pub(super) fn write(
        &self,
        pci: &mut ConfigSpace,
        addr: u64,
        buf: &[u8],
    ) -> Result<(), DmaError> {
        Self::check(pci)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.write_slice(buf, GuestAddress(addr)).is_err() {
            return Err(Self::range_error(pci, addr));
        }
        Ok(())
    }

    /// Copies `len` bytes (at most one burst buffer) from `src` to `dst`;
    /// the error says whether the source (`true`) or the destination
    /// failed.
    pub(super) fn copy(
        &mut self,
        pci: &mut ConfigSpace,
        src: u64,
        dst: u64,
        len: u32,
    ) -> Result<(), (DmaError, bool)> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = (len as usize).min(scratch.len());
        let r = self
            .read(pci, src, &mut scratch[..n])
            .map_err(|e| (e, true))
            .and_then(|()| self.write(pci, dst, &scratch[..n]).map_err(|e| (e, false)));
        self.scratch = scratch;
        r
    }

    /// Writes `len` bytes (at most one burst buffer) of the repeated 8-byte
    /// `pattern` at `dst`, where `dst` is `offset` bytes into the fill.
    pub(super) fn fill(
        &mut self,
        pci: &mut ConfigSpace,
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
        let r = self.write(pci, dst, &scratch[..n]);
        self.scratch = scratch;
        r
    }

    /// Flips bit `bit` of the byte at `addr`.
    pub(super) fn flip(&self, pci: &mut ConfigSpace, addr: u64, bit: u32) -> Result<(), DmaError> {
        let mut b = [0u8; 1];
        self.read(pci, addr, &mut b)?;
        b[0] ^= 1 << (bit % 8);
        self.write(pci, addr, &b)
    }
}
