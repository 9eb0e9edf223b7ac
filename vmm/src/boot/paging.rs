//! Identity page tables for the long-mode entry.
//!
//! 2 MiB pages, present + writable + supervisor, covering `[0, 4 GiB)` and all
//! RAM above 4 GiB. The 3–4 GiB hole (PCI window, IOAPIC, LAPIC) is mapped
//! `PCD | PWT` (uncached). Layout: PML4 at `PML4_ADDR` (one entry), the PDPT
//! at `PDPT_ADDR`, then one page directory per GiB mapped from `PD_ADDR`.
//! The tables are built as one contiguous byte image and written with a
//! single guest-memory copy. After entry they belong to the guest.

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::layout::{
    high_ram_bytes, GIB, HIGH_RAM_BASE, LOW_RAM_MAX_END, PAGE_TABLES_END, PDPT_ADDR, PD_ADDR,
    PML4_ADDR,
};

pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_WRITABLE: u64 = 1 << 1;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_HUGE: u64 = 1 << 7;

const PAGE_SIZE: u64 = 4096;
const ENTRIES: usize = 512;
const HUGE_PAGE: u64 = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} GiB of address space need more page directories than fit below 0x30000")]
    TooLarge(u64),
    #[error("cannot write the page tables to guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// The page-table image: PML4 page, PDPT page, then the page directories.
#[derive(Debug)]
pub struct PageTables {
    entries: Vec<u64>,
}

impl PageTables {
    /// Tables mapping `[0, 4 GiB)` and the RAM above 4 GiB of a guest with
    /// `ram_bytes` of memory.
    pub fn build(ram_bytes: u64) -> Result<Self, Error> {
        let top = mapped_top(ram_bytes);
        let gibs = top.div_ceil(GIB);
        let pd_count = usize::try_from(gibs).map_err(|_| Error::TooLarge(gibs))?;
        if PD_ADDR + gibs * PAGE_SIZE > PAGE_TABLES_END {
            return Err(Error::TooLarge(gibs));
        }
        let mut entries = vec![0u64; (2 + pd_count) * ENTRIES];
        entries[0] = PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE;
        for gib in 0..pd_count {
            let pd_addr = PD_ADDR + (gib as u64) * PAGE_SIZE;
            entries[ENTRIES + gib] = pd_addr | PTE_PRESENT | PTE_WRITABLE;
            let pd = &mut entries[(2 + gib) * ENTRIES..(3 + gib) * ENTRIES];
            for (slot, entry) in pd.iter_mut().enumerate() {
                let addr = (gib as u64) * GIB + (slot as u64) * HUGE_PAGE;
                if addr < top {
                    *entry = addr | huge_page_flags(addr);
                }
            }
        }
        Ok(Self { entries })
    }

    /// The 64-bit entry at `index` of the page at `table` (0 = PML4,
    /// 1 = PDPT, 2.. = page directories).
    pub fn entry(&self, table: usize, index: usize) -> u64 {
        self.entries[table * ENTRIES + index]
    }

    /// Number of page directories.
    pub fn directories(&self) -> usize {
        self.entries.len() / ENTRIES - 2
    }

    /// Writes the tables at `PML4_ADDR`.
    pub fn write<M: GuestMemory>(&self, memory: &M) -> Result<(), Error> {
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        memory
            .write_slice(&bytes, GuestAddress(PML4_ADDR))
            .map_err(Error::Write)
    }
}

/// End of the mapped range: 4 GiB, or the end of high RAM rounded up to a
/// 2 MiB page.
fn mapped_top(ram_bytes: u64) -> u64 {
    let high = high_ram_bytes(ram_bytes);
    if high == 0 {
        HIGH_RAM_BASE
    } else {
        HIGH_RAM_BASE + high.div_ceil(HUGE_PAGE) * HUGE_PAGE
    }
}

fn huge_page_flags(addr: u64) -> u64 {
    let base = PTE_PRESENT | PTE_WRITABLE | PTE_HUGE;
    if (LOW_RAM_MAX_END..HIGH_RAM_BASE).contains(&addr) {
        base | PTE_PCD | PTE_PWT
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::layout::MIB;
    use vm_memory::GuestMemoryMmap;

    const RAM_FLAGS: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_HUGE;

    #[test]
    fn small_guest_maps_4_gib_identity() {
        let pt = PageTables::build(64 * MIB).unwrap();
        assert_eq!(pt.directories(), 4);
        assert_eq!(pt.entry(0, 0), PDPT_ADDR | 3);
        assert_eq!(pt.entry(0, 1), 0, "one PML4 entry only");
        for gib in 0..4 {
            assert_eq!(pt.entry(1, gib), (PD_ADDR + gib as u64 * 0x1000) | 3);
        }
        assert_eq!(pt.entry(1, 4), 0);
        // First, second and last 2 MiB pages of the first GiB.
        assert_eq!(pt.entry(2, 0), RAM_FLAGS);
        assert_eq!(pt.entry(2, 1), 0x20_0000 | RAM_FLAGS);
        assert_eq!(pt.entry(2, 511), 0x3FE0_0000 | RAM_FLAGS);
        // Supervisor only: no U/S bit anywhere.
        assert!((0..4 * 512).all(|i| pt.entry(2 + i / 512, i % 512) & 4 == 0));
    }

    #[test]
    fn hole_above_3_gib_is_uncached() {
        let pt = PageTables::build(64 * MIB).unwrap();
        let uncached = RAM_FLAGS | PTE_PCD | PTE_PWT;
        assert_eq!(
            pt.entry(4, 511),
            0xBFE0_0000 | RAM_FLAGS,
            "RAM side of 3 GiB"
        );
        assert_eq!(pt.entry(5, 0), 0xC000_0000 | uncached);
        // IOAPIC and LAPIC live in the last 2 MiB page below 4 GiB.
        assert_eq!(pt.entry(5, 511), 0xFFE0_0000 | uncached);
        assert_eq!(pt.entry(5, 0x1F6), 0xFEC0_0000 | uncached);
    }

    #[test]
    fn ram_above_4_gib_is_mapped() {
        // 5 GiB + 3 MiB: 2 GiB + 3 MiB above 4 GiB, rounded up to 2 MiB pages.
        let pt = PageTables::build(5 * GIB + 3 * MIB).unwrap();
        assert_eq!(pt.directories(), 7);
        assert_eq!(pt.entry(1, 6), (PD_ADDR + 6 * 0x1000) | 3);
        assert_eq!(pt.entry(6, 0), (4 * GIB) | RAM_FLAGS);
        assert_eq!(pt.entry(7, 511), (6 * GIB - 2 * MIB) | RAM_FLAGS);
        assert_eq!(pt.entry(8, 0), (6 * GIB) | RAM_FLAGS);
        assert_eq!(pt.entry(8, 1), (6 * GIB + 2 * MIB) | RAM_FLAGS);
        assert_eq!(pt.entry(8, 2), 0, "beyond RAM stays unmapped");
    }

    #[test]
    fn largest_guest_fits_the_table_area() {
        let pt = PageTables::build(16 * GIB).unwrap();
        assert_eq!(pt.directories(), 17);
        const { assert!(PD_ADDR + 17 * 0x1000 <= PAGE_TABLES_END) };
        assert!(matches!(
            PageTables::build(40 * GIB),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn written_image_starts_at_pml4() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        PageTables::build(64 * MIB).unwrap().write(&mem).unwrap();
        let pml4: u64 = mem.read_obj(GuestAddress(PML4_ADDR)).unwrap();
        let pd0_1: u64 = mem.read_obj(GuestAddress(PD_ADDR + 8)).unwrap();
        assert_eq!(pml4, PDPT_ADDR | 3);
        assert_eq!(pd0_1, 0x20_0000 | RAM_FLAGS);
    }
}
