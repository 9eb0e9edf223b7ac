//! The MSI-X table and pending-bit array behind BAR2 (spec §2.2).
//!
//! Entries are four dwords (address low/high, data, vector control). The
//! table decodes only; delivery decisions (function mask, enable, bus
//! mastering) are made in `pci/mod.rs` with the capability's state.

use crate::interrupt_sink::MsiMessage;

use super::config::PBA_OFFSET;

/// Vector control: masked.
pub const VECTOR_MASKED: u32 = 1;
/// Bytes per table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Entry dword: message address, low half (bits 1:0 read as zero).
pub const ENTRY_ADDR_LO: usize = 0;
/// Entry dword: message address, high half.
pub const ENTRY_ADDR_HI: usize = 1;
/// Entry dword: message data.
pub const ENTRY_DATA: usize = 2;
/// Entry dword: vector control.
pub const ENTRY_CTRL: usize = 3;
/// PBA dword holding vectors 63:32.
const PBA_HI: u64 = 4;

/// Result of a BAR2 access the caller must count as bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsixAccessError {
    /// Not 4 or 8 bytes, or not aligned to its size.
    #[error("MSI-X access of {0} bytes at {1:#x} is not 4/8 bytes naturally aligned")]
    Size(usize, u64),
    /// Past the table and outside the PBA.
    #[error("MSI-X access at {0:#x} is outside the table and the PBA")]
    Range(u64),
    /// A write to the read-only PBA.
    #[error("write to the read-only PBA at {0:#x}")]
    ReadOnly(u64),
}

/// The table and PBA.
#[derive(Debug, Clone)]
pub struct MsixTable {
    entries: Vec<[u32; 4]>,
    pba: u64,
}

impl MsixTable {
    /// A power-on table with `vectors` (≤ 64) entries, all masked.
    pub fn new(vectors: u16) -> MsixTable {
        MsixTable {
            entries: vec![[0, 0, 0, VECTOR_MASKED]; usize::from(vectors.min(64))],
            pba: 0,
        }
    }

    /// The message of vector `v`.
    pub fn message(&self, v: usize) -> Option<MsiMessage> {
        self.entries.get(v).map(|e| MsiMessage {
            address: (u64::from(e[ENTRY_ADDR_HI]) << 32) | u64::from(e[ENTRY_ADDR_LO]),
            data: e[ENTRY_DATA],
        })
    }

    /// Whether vector `v`'s own mask bit is set (true for a missing vector).
    pub fn masked(&self, v: usize) -> bool {
        self.entries
            .get(v)
            .is_none_or(|e| e[ENTRY_CTRL] & VECTOR_MASKED != 0)
    }

    /// Whether vector `v` is pending.
    pub fn pending(&self, v: usize) -> bool {
        v < 64 && self.pba & (1 << v) != 0
    }

    /// Sets or clears vector `v`'s pending bit.
    pub fn set_pending(&mut self, v: usize, on: bool) {
        if v < self.entries.len() {
            if on {
                self.pba |= 1 << v;
            } else {
                self.pba &= !(1 << v);
            }
        }
    }

    /// The pending-bit array.
    pub fn pba(&self) -> u64 {
        self.pba
    }

    fn check(offset: u64, len: usize) -> Result<(), MsixAccessError> {
        let ok = matches!(len, 4 | 8) && offset % len as u64 == 0;
        if ok {
            Ok(())
        } else {
            Err(MsixAccessError::Size(len, offset))
        }
    }

    /// Reads BAR2 at `offset`.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MsixAccessError> {
        Self::check(offset, data.len())?;
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            let at = offset + 4 * i as u64;
            let v = self.read_dword(at)?;
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }

    /// The (entry, dword) a table offset falls in.
    fn locate(at: u64) -> (usize, usize) {
        let entry = usize::try_from(at / ENTRY_SIZE).unwrap_or(usize::MAX);
        let dword = (at % ENTRY_SIZE / 4) as usize;
        (entry, dword)
    }

    fn read_dword(&self, at: u64) -> Result<u32, MsixAccessError> {
        if at >= PBA_OFFSET {
            return match at - PBA_OFFSET {
                0 => Ok(crate::regs::lo32(self.pba)),
                PBA_HI => Ok(crate::regs::hi32(self.pba)),
                _ => Err(MsixAccessError::Range(at)),
            };
        }
        let (e, w) = Self::locate(at);
        self.entries
            .get(e)
            .map(|entry| entry[w])
            .ok_or(MsixAccessError::Range(at))
    }

    /// Writes BAR2 at `offset`; returns the vectors whose entry changed.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), MsixAccessError> {
        Self::check(offset, data.len())?;
        if offset >= PBA_OFFSET {
            return Err(MsixAccessError::ReadOnly(offset));
        }
        for (i, chunk) in data.chunks(4).enumerate() {
            let at = offset + 4 * i as u64;
            let (e, w) = Self::locate(at);
            let entry = self.entries.get_mut(e).ok_or(MsixAccessError::Range(at))?;
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            entry[w] = match w {
                ENTRY_ADDR_LO => v & !3,
                ENTRY_CTRL => v & VECTOR_MASKED,
                _ => v,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_start_masked_and_decode() {
        let mut t = MsixTable::new(5);
        assert!(t.masked(0) && t.masked(4) && t.masked(5));
        t.write(16, &0xFEE0_1003u32.to_le_bytes()).unwrap();
        t.write(24, &0x41u32.to_le_bytes()).unwrap();
        t.write(28, &0u32.to_le_bytes()).unwrap();
        assert_eq!(
            t.message(1),
            Some(MsiMessage {
                address: 0xFEE0_1000,
                data: 0x41
            })
        );
        assert!(!t.masked(1));
    }

    #[test]
    fn bad_accesses_are_reported() {
        let mut t = MsixTable::new(5);
        let mut b = [0u8; 2];
        assert_eq!(t.read(0, &mut b), Err(MsixAccessError::Size(2, 0)));
        assert_eq!(t.write(6 * 16, &[0; 4]), Err(MsixAccessError::Range(96)));
        assert_eq!(
            t.write(PBA_OFFSET, &[0; 4]),
            Err(MsixAccessError::ReadOnly(PBA_OFFSET))
        );
        let mut q = [0u8; 4];
        assert_eq!(t.read(0x900, &mut q), Err(MsixAccessError::Range(0x900)));
    }

    #[test]
    fn pba_reads_pending_bits() {
        let mut t = MsixTable::new(5);
        t.set_pending(3, true);
        let mut q = [0u8; 8];
        t.read(PBA_OFFSET, &mut q).unwrap();
        assert_eq!(u64::from_le_bytes(q), 8);
        t.set_pending(3, false);
        t.set_pending(40, true);
        assert_eq!(t.pba(), 0);
    }
}
