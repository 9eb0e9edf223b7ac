//! The type-0 configuration header and capability bytes (spec §2).
//!
//! Config space is 256 bytes with a per-byte write mask and a per-byte
//! write-1-to-clear mask, the way QEMU models it: a write stores
//! `(old & !wmask) | (val & wmask)` then clears `val & w1c`. BAR sizing falls
//! out of the masks (writing all ones reads back the size mask and the RO
//! type bits). Semantics of particular fields (enables, FLR) are read back by
//! `pci/mod.rs` after each write.

/// Vendor ID (the experimental ID QEMU's `edu` uses).
pub const VENDOR_ID: u16 = 0x1234;
/// Device ID.
pub const DEVICE_ID: u16 = 0xDA1A;
/// Subsystem ID.
pub const SUBSYSTEM_ID: u16 = 0x0001;
/// Revision.
pub const REVISION: u8 = 0x01;
/// Class code: base 0x08 (system peripheral), sub 0x01 (DMA), prog-if 0.
pub const CLASS_CODE: u32 = 0x08_01_00;

/// Config space size.
pub const CONFIG_SIZE: usize = 256;
/// Command register offset.
pub const COMMAND: usize = 0x04;
/// Status register offset.
pub const STATUS: usize = 0x06;
/// First BAR offset.
pub const BAR0: usize = 0x10;
/// Capabilities pointer offset.
pub const CAP_PTR: usize = 0x34;

/// Command: memory space enable.
pub const CMD_MEMORY: u16 = 1 << 1;
/// Command: bus master enable.
pub const CMD_BUS_MASTER: u16 = 1 << 2;
/// Command bits the guest may write.
pub const CMD_WRITABLE: u16 = (1 << 1) | (1 << 2) | (1 << 6) | (1 << 8) | (1 << 10);
/// Status: capabilities list.
pub const STS_CAP_LIST: u16 = 1 << 4;
/// Status: signaled target abort (DMA refused without bus mastering).
pub const STS_SIGNALED_TARGET_ABORT: u16 = 1 << 11;
/// Status: received master abort (DMA to an address outside RAM).
pub const STS_RECEIVED_MASTER_ABORT: u16 = 1 << 13;

/// MSI-X capability offset.
pub const MSIX_CAP: usize = 0x40;
/// MSI capability offset.
pub const MSI_CAP: usize = 0x50;
/// Advanced Features capability offset.
pub const AF_CAP: usize = 0x68;
/// AF control: initiate FLR.
pub const AF_FLR: u8 = 1 << 0;

/// BAR0 (registers) size.
pub const BAR0_SIZE: u64 = 0x1000;
/// BAR2 (MSI-X table + PBA) size.
pub const BAR2_SIZE: u64 = 0x1000;
/// PBA offset within BAR2.
pub const PBA_OFFSET: u64 = 0x800;

/// Config space bytes and their masks.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    wmask: [u8; CONFIG_SIZE],
    w1c: [u8; CONFIG_SIZE],
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("command", &self.u16_at(COMMAND))
            .field("bar0", &self.bar_address(0))
            .field("bar2", &self.bar_address(2))
            .finish()
    }
}

impl ConfigSpace {
    /// Power-on config space for a function with `vectors` MSI-X vectors.
    pub fn new(vectors: u16) -> ConfigSpace {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            wmask: [0; CONFIG_SIZE],
            w1c: [0; CONFIG_SIZE],
        };
        c.set16(0x00, VENDOR_ID);
        c.set16(0x02, DEVICE_ID);
        c.set16(STATUS, STS_CAP_LIST);
        c.set32(0x08, (CLASS_CODE << 8) | u32::from(REVISION));
        c.set16(0x2C, VENDOR_ID);
        c.set16(0x2E, SUBSYSTEM_ID);
        c.bytes[CAP_PTR] = 0x40; // MSIX_CAP
        c.mask16(COMMAND, CMD_WRITABLE);
        c.w1c16(
            STATUS,
            STS_SIGNALED_TARGET_ABORT | STS_RECEIVED_MASTER_ABORT,
        );
        c.wmask[0x0C] = 0xFF; // cache line size
        c.wmask[0x3C] = 0xFF; // interrupt line
        for (bar, size) in [(0usize, BAR0_SIZE), (2, BAR2_SIZE)] {
            let off = BAR0 + 4 * bar;
            c.set32(off, 0x4); // 64-bit memory, non-prefetchable
            c.mask32(off, crate::regs::lo32(!(size - 1) & 0xFFFF_FFF0));
            c.mask32(off + 4, 0xFFFF_FFFF);
        }
        // MSI-X: table in BAR2 at 0, PBA in BAR2 at 0x800.
        c.bytes[MSIX_CAP] = 0x11;
        c.bytes[MSIX_CAP + 1] = 0x50; // MSI_CAP
        c.set16(MSIX_CAP + 2, vectors.saturating_sub(1) & 0x7FF);
        c.mask16(MSIX_CAP + 2, 0xC000);
        c.set32(MSIX_CAP + 4, 2);
        c.set32(MSIX_CAP + 8, crate::regs::lo32(PBA_OFFSET) | 2);
        // MSI: 64-bit, per-vector masking, one message.
        c.bytes[MSI_CAP] = 0x05;
        c.bytes[MSI_CAP + 1] = 0x68; // AF_CAP
        c.set16(MSI_CAP + 2, (1 << 7) | (1 << 8));
        c.mask16(MSI_CAP + 2, 0x0071);
        c.mask32(MSI_CAP + 4, 0xFFFF_FFFC);
        c.mask32(MSI_CAP + 8, 0xFFFF_FFFF);
        c.mask16(MSI_CAP + 12, 0xFFFF);
        c.mask32(MSI_CAP + 16, 1);
        // Advanced Features: TP + FLR.
        c.bytes[AF_CAP] = 0x13;
        c.bytes[AF_CAP + 1] = 0;
        c.bytes[AF_CAP + 2] = 6;
        c.bytes[AF_CAP + 3] = 0x03;
        c.wmask[AF_CAP + 4] = AF_FLR;
        c
    }

    /// Reads `data.len()` bytes at `offset` (the caller checked bounds).
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        if let Some(src) = self.bytes.get(offset..offset + data.len()) {
            data.copy_from_slice(src);
        }
    }

    /// Writes `data` at `offset` through the masks.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        for (i, &val) in data.iter().enumerate() {
            let Some(at) = offset.checked_add(i).filter(|&a| a < CONFIG_SIZE) else {
                return;
            };
            let w = self.wmask[at];
            let old = self.bytes[at];
            self.bytes[at] = ((old & !w) | (val & w)) & !(val & self.w1c[at]);
        }
    }

    /// The little-endian u16 at `at`.
    pub fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// The little-endian u32 at `at`.
    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    /// The byte at `at`.
    pub fn u8_at(&self, at: usize) -> u8 {
        self.bytes[at]
    }

    /// Device-side store of a u16 (ignores masks: pending bits, status).
    pub fn set16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Device-side store of a u32.
    pub fn set32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Device-side store of a byte.
    pub fn set8(&mut self, at: usize, v: u8) {
        self.bytes[at] = v;
    }

    fn mask16(&mut self, at: usize, m: u16) {
        self.wmask[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }

    fn mask32(&mut self, at: usize, m: u32) {
        self.wmask[at..at + 4].copy_from_slice(&m.to_le_bytes());
    }

    fn w1c16(&mut self, at: usize, m: u16) {
        self.w1c[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.u16_at(COMMAND)
    }

    /// Whether memory space decoding is on.
    pub fn memory_enabled(&self) -> bool {
        self.command() & CMD_MEMORY != 0
    }

    /// Whether bus mastering is on.
    pub fn bus_master(&self) -> bool {
        self.command() & CMD_BUS_MASTER != 0
    }

    /// Sets status bits from the device side (they are W1C for the guest).
    pub fn flag_status(&mut self, bits: u16) {
        let s = self.u16_at(STATUS) | bits;
        self.set16(STATUS, s);
    }

    /// The address programmed in 64-bit BAR `bar` (0 or 2).
    pub fn bar_address(&self, bar: usize) -> u64 {
        let off = BAR0 + 4 * bar;
        let lo = u64::from(self.u32_at(off) & 0xFFFF_FFF0);
        let hi = u64::from(self.u32_at(off + 4));
        (hi << 32) | lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_class() {
        let c = ConfigSpace::new(5);
        assert_eq!(c.u32_at(0), 0xDA1A_1234);
        assert_eq!(c.u32_at(8) >> 8, 0x080100);
        assert_eq!(c.u16_at(STATUS) & STS_CAP_LIST, STS_CAP_LIST);
        assert_eq!(c.u16_at(MSIX_CAP + 2) & 0x7FF, 4);
    }

    #[test]
    fn bar_sizing_reads_back_size_mask() {
        let mut c = ConfigSpace::new(5);
        c.write(BAR0, &[0xFF; 4]);
        assert_eq!(c.u32_at(BAR0), 0xFFFF_F004);
        c.write(BAR0 + 4, &[0xFF; 4]);
        assert_eq!(c.u32_at(BAR0 + 4), 0xFFFF_FFFF);
        c.write(BAR0, &0xC000_0000u32.to_le_bytes());
        c.write(BAR0 + 4, &0u32.to_le_bytes());
        assert_eq!(c.bar_address(0), 0xC000_0000);
    }

    #[test]
    fn read_only_and_w1c() {
        let mut c = ConfigSpace::new(5);
        c.write(0, &[0, 0, 0, 0]);
        assert_eq!(c.u16_at(0), VENDOR_ID);
        c.write(COMMAND, &0xFFFFu16.to_le_bytes());
        assert_eq!(c.command(), CMD_WRITABLE);
        c.flag_status(STS_RECEIVED_MASTER_ABORT);
        c.write(STATUS, &STS_RECEIVED_MASTER_ABORT.to_le_bytes());
        assert_eq!(c.u16_at(STATUS), STS_CAP_LIST);
    }
}
