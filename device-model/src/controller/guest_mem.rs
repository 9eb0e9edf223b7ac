//! The device's DMA accesses to guest memory: every byte the model reads or
//! writes goes through here, through vm-memory's checked `Bytes` methods, so
//! nothing outside the memory the model was given is ever touched, and a
//! cleared bus-master bit stops every access. [`GuestMem`] owns the memory
//! and the burst buffer; each access takes the function's config space,
//! which says whether bus mastering is on and records master aborts.
//!
//! **Coalesced bursts.** A copy or fill moves one burst per model event,
//! but the bytes of consecutive bursts of one transfer are moved together:
//! each burst is checked when its event is processed (bus mastering, both
//! ranges in guest memory: a failing burst fails exactly where it did),
//! then appended to a pending run, which is moved by one `memmove` (or one
//! pattern write) when anything else touches guest memory — a descriptor
//! fetch, a completion record, another channel's burst, a corrupted bit —
//! and at the end of every batch of events the model processes
//! ([`GuestMem::flush`]). So the guest never sees a burst's bytes before
//! the burst's event, nor a later event (a record, an interrupt) before
//! them; bursts processed in one batch land together, as they would when
//! the host processes them late. A copy whose source and destination
//! overlap is never coalesced: each burst still reads what the ones
//! before it wrote. The per-burst cost drops from two checked vm-memory
//! copies through the burst buffer to two range checks (`docs/benchmarks.md`).

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions, VolatileSlice};

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

/// Bursts checked but not yet moved: consecutive bursts of one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Copy {
        src: u64,
        dst: u64,
        len: u64,
    },
    /// `len` bytes of the repeated `pattern` at `dst`, `offset` bytes into
    /// the fill.
    Fill {
        dst: u64,
        offset: u64,
        len: u64,
        pattern: u64,
    },
}

/// Bytes a pending run may reach before it is moved (bounds the work one
/// flush does; a slice of model events moves about this much anyway).
const RUN_MAX: u64 = 1 << 20;

/// Transfer ranges remembered for their bursts' checks.
const KNOWN: usize = 8;

/// Guest memory as the device reaches it, the burst buffer that copies
/// and fills go through (allocated once), and the bursts not yet moved.
pub(super) struct GuestMem<M> {
    mem: M,
    scratch: Vec<u8>,
    pending: Pending,
    /// The last ranges `in_ram_for_bursts` found wholly in guest memory
    /// (descriptors' sources and destinations, checked at their fetch;
    /// enough for four channels' transfers): a burst inside one needs no
    /// lookup. Guest memory never changes shape.
    known: [(u64, u64); KNOWN],
}

impl<M: GuestMemory> GuestMem<M> {
    /// `mem`, with a burst buffer of `burst` bytes.
    pub(super) fn new(mem: M, burst: usize) -> Self {
        GuestMem {
            mem,
            scratch: vec![0; burst],
            pending: Pending::None,
            known: [(0, 0); KNOWN],
        }
    }

    /// The memory. Bursts are pending only while the model processes a
    /// batch of events, never between batches, when this is called.
    pub(super) fn memory(&self) -> &M {
        debug_assert_eq!(self.pending, Pending::None);
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

    /// `in_ram` for a transfer's whole range, remembered (the last
    /// [`KNOWN`]) so that its bursts need no lookup.
    pub(super) fn in_ram_for_bursts(&mut self, addr: u64, len: u64) -> bool {
        let ok = self.in_ram(addr, len);
        if ok && len > 0 {
            self.known.rotate_right(1);
            self.known[0] = (addr, addr + len);
        }
        ok
    }

    /// `in_ram` for one burst: inside a remembered transfer range, or
    /// looked up.
    fn burst_in_ram(&self, addr: u64, len: u64) -> bool {
        let inside =
            |&(s, e): &(u64, u64)| s <= addr && addr.checked_add(len).is_some_and(|x| x <= e);
        self.known.iter().any(inside) || self.in_ram(addr, len)
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

    /// Reads guest memory at `addr` into `buf` (pending bursts moved
    /// first).
    pub(super) fn read(
        &mut self,
        pci: &mut ConfigSpace,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), DmaError> {
        self.flush();
        Self::check(pci)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.read_slice(buf, GuestAddress(addr)).is_err() {
            return Err(Self::range_error(pci, addr));
        }
        Ok(())
    }

    /// Writes `buf` to guest memory at `addr` (pending bursts moved
    /// first).
    pub(super) fn write(
        &mut self,
        pci: &mut ConfigSpace,
        addr: u64,
        buf: &[u8],
    ) -> Result<(), DmaError> {
        self.flush();
        Self::check(pci)?;
        let end_ok = addr.checked_add(buf.len() as u64).is_some();
        if !end_ok || self.mem.write_slice(buf, GuestAddress(addr)).is_err() {
            return Err(Self::range_error(pci, addr));
        }
        Ok(())
    }

    /// One burst of a copy: `len` bytes (at most one burst buffer) from
    /// `src` to `dst`, checked now and moved with the bursts pending
    /// before and after it; the error says whether the source (`true`)
    /// or the destination failed (and then nothing of this burst moves).
    pub(super) fn copy(
        &mut self,
        pci: &mut ConfigSpace,
        src: u64,
        dst: u64,
        len: u32,
    ) -> Result<(), (DmaError, bool)> {
        let n = u64::from(len).min(self.scratch.len() as u64);
        Self::check(pci).map_err(|e| (e, true))?;
        if !self.burst_in_ram(src, n) {
            return Err((Self::range_error(pci, src), true));
        }
        if !self.burst_in_ram(dst, n) {
            return Err((Self::range_error(pci, dst), false));
        }
        let overlap = |s: u64, d: u64, l: u64| s < d.saturating_add(l) && d < s.saturating_add(l);
        self.pending = match self.pending {
            Pending::Copy {
                src: s,
                dst: d,
                len: l,
            } if s.checked_add(l) == Some(src)
                && d.checked_add(l) == Some(dst)
                && l + n <= RUN_MAX
                && !overlap(s, d, l + n) =>
            {
                Pending::Copy {
                    src: s,
                    dst: d,
                    len: l + n,
                }
            }
            _ => {
                self.flush();
                if overlap(src, dst, n) {
                    // Moved now (the whole burst read, then written, as
                    // `memmove` does): a later burst must read what this
                    // one wrote.
                    self.move_copy(src, dst, n);
                    return Ok(());
                }
                Pending::Copy { src, dst, len: n }
            }
        };
        Ok(())
    }

    /// One burst of a fill: `len` bytes (at most one burst buffer) of the
    /// repeated 8-byte `pattern` at `dst`, where `dst` is `offset` bytes
    /// into the fill; checked now, written with the bursts pending before
    /// and after it.
    pub(super) fn fill(
        &mut self,
        pci: &mut ConfigSpace,
        dst: u64,
        offset: u32,
        len: u32,
        pattern: u64,
    ) -> Result<(), DmaError> {
        let n = u64::from(len).min(self.scratch.len() as u64);
        Self::check(pci)?;
        if !self.burst_in_ram(dst, n) {
            return Err(Self::range_error(pci, dst));
        }
        let offset = u64::from(offset);
        self.pending = match self.pending {
            Pending::Fill {
                dst: d,
                offset: o,
                len: l,
                pattern: p,
            } if p == pattern
                && d.checked_add(l) == Some(dst)
                && o + l == offset
                && l + n <= RUN_MAX =>
            {
                Pending::Fill {
                    dst: d,
                    offset: o,
                    len: l + n,
                    pattern,
                }
            }
            _ => {
                self.flush();
                Pending::Fill {
                    dst,
                    offset,
                    len: n,
                    pattern,
                }
            }
        };
        Ok(())
    }

    /// Moves the pending bursts' bytes. The model calls it at the end of
    /// every batch of events; every other access calls it first.
    pub(super) fn flush(&mut self) {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => {}
            Pending::Copy { src, dst, len } => self.move_copy(src, dst, len),
            Pending::Fill {
                dst,
                offset,
                len,
                pattern,
            } => self.move_fill(dst, offset, len, pattern),
        }
    }

    /// The one slice of guest memory at `addr`, if the range is in one
    /// region.
    fn one_slice(
        &self,
        addr: u64,
        len: u64,
        access: Permissions,
    ) -> Option<VolatileSlice<'_, vm_memory::bitmap::BS<'_, M::Bitmap>>> {
        let len = usize::try_from(len).ok()?;
        let mut it = self.mem.get_slices(GuestAddress(addr), len, access).ok()?;
        let first = it.next()?.ok()?;
        (first.len() == len).then_some(first)
    }

    /// Bytes of `left` the burst buffer takes at once.
    fn chunk(&self, left: u64) -> usize {
        usize::try_from(left).map_or(self.scratch.len(), |l| l.min(self.scratch.len()))
    }

    /// Copies checked ranges: one `memmove` when each is in one region,
    /// else through the burst buffer.
    fn move_copy(&mut self, src: u64, dst: u64, len: u64) {
        if let (Some(s), Some(d)) = (
            self.one_slice(src, len, Permissions::Read),
            self.one_slice(dst, len, Permissions::Write),
        ) {
            s.copy_to_volatile_slice(d);
            return;
        }
        let mut done = 0;
        while done < len {
            let n = self.chunk(len - done);
            let (s, d) = (GuestAddress(src + done), GuestAddress(dst + done));
            // Checked when each burst was taken: cannot fail.
            let _ = self.mem.read_slice(&mut self.scratch[..n], s);
            let _ = self.mem.write_slice(&self.scratch[..n], d);
            done += n as u64;
        }
    }

    /// Writes `len` bytes of the repeated `pattern` at `dst`, `offset`
    /// bytes into the fill, a burst buffer at a time.
    fn move_fill(&mut self, dst: u64, offset: u64, len: u64, pattern: u64) {
        let p = pattern.to_le_bytes();
        let mut done = 0;
        while done < len {
            let n = self.chunk(len - done);
            let phase = ((offset + done) % 8) as u8;
            for (i, b) in self.scratch[..n].iter_mut().enumerate() {
                *b = p[(usize::from(phase) + i) % 8];
            }
            // Checked when each burst was taken: cannot fail.
            let _ = self
                .mem
                .write_slice(&self.scratch[..n], GuestAddress(dst + done));
            done += n as u64;
        }
    }

    /// Flips bit `bit` of the byte at `addr`.
    pub(super) fn flip(
        &mut self,
        pci: &mut ConfigSpace,
        addr: u64,
        bit: u32,
    ) -> Result<(), DmaError> {
        let mut b = [0u8; 1];
        self.read(pci, addr, &mut b)?;
        b[0] ^= 1 << (bit % 8);
        self.write(pci, addr, &b)
    }
}
