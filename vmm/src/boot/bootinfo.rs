//! `struct dmalab_boot_info` and its memory map, byte for byte as the C
//! declaration in `docs/boot-protocol.md` (848 bytes, little-endian,
//! naturally aligned). The unit tests pin every offset to the C layout.

use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemory};

use super::layout::{
    high_ram_bytes, low_ram_end, BOOT_INFO_ADDR, CMDLINE_ADDR, HIGH_RAM_BASE, IOAPIC_ADDR,
    KERNEL_MIN_ADDR, LAPIC_ADDR, MPTABLE_ADDR, PCI_MMIO_BASE, PCI_MMIO_SIZE, PML4_ADDR,
};

pub const BOOT_MAGIC: u64 = 0x544f_4f42_4c41_4d44; // "DMALBOOT"
pub const BOOT_VERSION: u32 = 1;
/// COM1 is never busy: the guest need not poll LSR.
pub const BOOT_F_FAST_CONSOLE: u32 = 1 << 0;
pub const MMAP_ENTRIES: usize = 32;

pub const MEM_RAM: u32 = 1;
pub const MEM_RESERVED: u32 = 2;
pub const MEM_MMIO: u32 = 3;

const APIC_PAGE: u64 = 4096;

/// `sizeof(struct dmalab_boot_info)`.
pub const BOOT_INFO_SIZE: u32 = 848;
const _: () = assert!(std::mem::size_of::<BootInfo>() == BOOT_INFO_SIZE as usize);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the boot info to guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MmapEntry {
    pub base: u64,
    pub len: u64,
    pub kind: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    pub magic: u64,
    pub version: u32,
    pub size: u32,
    pub cmdline_addr: u64,
    pub cmdline_len: u32,
    pub cpu_count: u32,
    pub tsc_khz: u64,
    pub pml4_addr: u64,
    pub mp_table_addr: u64,
    pub pci_mmio_base: u64,
    pub pci_mmio_size: u64,
    pub mmap_count: u32,
    pub flags: u32,
    pub mmap: [MmapEntry; MMAP_ENTRIES],
}

// SAFETY: both are repr(C) structs of integers with no padding (pinned by
// the size and offset tests below); every bit pattern is a valid value.
unsafe impl ByteValued for MmapEntry {}
// SAFETY: as above.
unsafe impl ByteValued for BootInfo {}

/// What the VMM knows when it writes the boot info.
#[derive(Debug, Clone, Copy)]
pub struct BootParams {
    pub ram_bytes: u64,
    pub cpu_count: u8,
    pub cmdline_len: usize,
    pub tsc_khz: u32,
}

impl BootInfo {
    pub fn new(params: &BootParams) -> Self {
        let mut info = BootInfo {
            magic: BOOT_MAGIC,
            version: BOOT_VERSION,
            size: BOOT_INFO_SIZE,
            cmdline_addr: CMDLINE_ADDR,
            cmdline_len: u32::try_from(params.cmdline_len).unwrap_or(u32::MAX),
            cpu_count: u32::from(params.cpu_count),
            tsc_khz: u64::from(params.tsc_khz),
            pml4_addr: PML4_ADDR,
            mp_table_addr: MPTABLE_ADDR,
            pci_mmio_base: PCI_MMIO_BASE,
            pci_mmio_size: PCI_MMIO_SIZE,
            mmap_count: 0,
            flags: BOOT_F_FAST_CONSOLE,
            mmap: [MmapEntry::default(); MMAP_ENTRIES],
        };
        for (base, len, kind) in memory_map(params.ram_bytes) {
            info.push(base, len, kind);
        }
        info
    }

    fn push(&mut self, base: u64, len: u64, kind: u32) {
        if let Some(slot) = self.mmap.get_mut(self.mmap_count as usize) {
            *slot = MmapEntry {
                base,
                len,
                kind,
                reserved: 0,
            };
            self.mmap_count += 1;
        }
    }

    pub fn write<M: GuestMemory>(&self, memory: &M) -> Result<(), Error> {
        memory
            .write_obj(*self, GuestAddress(BOOT_INFO_ADDR))
            .map_err(Error::Write)
    }
}

/// The memory map the guest sees, in address order.
fn memory_map(ram_bytes: u64) -> Vec<(u64, u64, u32)> {
    let low_end = low_ram_end(ram_bytes);
    let mut map = vec![
        (0, KERNEL_MIN_ADDR, MEM_RESERVED),
        (KERNEL_MIN_ADDR, low_end - KERNEL_MIN_ADDR, MEM_RAM),
        (PCI_MMIO_BASE, PCI_MMIO_SIZE, MEM_MMIO),
        (IOAPIC_ADDR, APIC_PAGE, MEM_MMIO),
        (LAPIC_ADDR, APIC_PAGE, MEM_MMIO),
    ];
    let high = high_ram_bytes(ram_bytes);
    if high > 0 {
        map.push((HIGH_RAM_BASE, high, MEM_RAM));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::layout::{GIB, MIB};
    use std::mem::{offset_of, size_of};

    #[test]
    fn layout_matches_the_c_struct() {
        assert_eq!(size_of::<MmapEntry>(), 24);
        assert_eq!(size_of::<BootInfo>(), 848);
        assert_eq!(offset_of!(BootInfo, magic), 0);
        assert_eq!(offset_of!(BootInfo, version), 8);
        assert_eq!(offset_of!(BootInfo, size), 12);
        assert_eq!(offset_of!(BootInfo, cmdline_addr), 16);
        assert_eq!(offset_of!(BootInfo, cmdline_len), 24);
        assert_eq!(offset_of!(BootInfo, cpu_count), 28);
        assert_eq!(offset_of!(BootInfo, tsc_khz), 32);
        assert_eq!(offset_of!(BootInfo, pml4_addr), 40);
        assert_eq!(offset_of!(BootInfo, mp_table_addr), 48);
        assert_eq!(offset_of!(BootInfo, pci_mmio_base), 56);
        assert_eq!(offset_of!(BootInfo, pci_mmio_size), 64);
        assert_eq!(offset_of!(BootInfo, mmap_count), 72);
        assert_eq!(offset_of!(BootInfo, flags), 76);
        assert_eq!(offset_of!(BootInfo, mmap), 80);
        assert_eq!(offset_of!(MmapEntry, len), 8);
        assert_eq!(offset_of!(MmapEntry, kind), 16);
    }

    #[test]
    fn fields_and_memory_map_of_a_small_guest() {
        let info = BootInfo::new(&BootParams {
            ram_bytes: 64 * MIB,
            cpu_count: 2,
            cmdline_len: 14,
            tsc_khz: 2_445_426,
        });
        let bytes = info.as_slice();
        assert_eq!(&bytes[0..8], b"DMALBOOT");
        assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 848);
        assert_eq!((info.cmdline_len, info.cpu_count), (14, 2));
        assert_eq!(info.flags, BOOT_F_FAST_CONSOLE);
        assert_eq!(info.mmap_count, 5);
        assert_eq!(
            info.mmap[0],
            MmapEntry {
                base: 0,
                len: MIB,
                kind: MEM_RESERVED,
                reserved: 0
            }
        );
        assert_eq!((info.mmap[1].base, info.mmap[1].len), (MIB, 63 * MIB));
        assert_eq!(info.mmap[1].kind, MEM_RAM);
        assert_eq!(
            (info.mmap[2].base, info.mmap[2].kind),
            (0xC000_0000, MEM_MMIO)
        );
        assert_eq!(info.mmap[3].base, 0xFEC0_0000);
        assert_eq!(info.mmap[4].base, 0xFEE0_0000);
    }

    #[test]
    fn large_guest_lists_ram_above_4_gib() {
        let info = BootInfo::new(&BootParams {
            ram_bytes: 6 * GIB,
            cpu_count: 1,
            cmdline_len: 0,
            tsc_khz: 0,
        });
        assert_eq!(info.mmap_count, 6);
        assert_eq!(info.mmap[1].len, 3 * GIB - MIB);
        assert_eq!(
            info.mmap[5],
            MmapEntry {
                base: 4 * GIB,
                len: 3 * GIB,
                kind: MEM_RAM,
                reserved: 0
            }
        );
    }
}
