//! Guest-physical memory layout of the dmalab boot protocol
//! (`docs/boot-protocol.md`, "Guest physical memory"). Every address the VMM
//! writes at boot comes from this file; the guest kernel has the same table.

use vm_memory::GuestAddress;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// GDT built by the VMM: null, 64-bit code (0x08), data (0x10).
pub const GDT_ADDR: u64 = 0x500;
/// `struct dmalab_boot_info`.
pub const BOOT_INFO_ADDR: u64 = 0x6000;
/// The command line, NUL-terminated.
pub const CMDLINE_ADDR: u64 = 0x7000;
/// Longest command line, without its NUL.
pub const CMDLINE_MAX: usize = 4095;
/// PML4, then the PDPT, then one page directory per GiB mapped.
pub const PML4_ADDR: u64 = 0x10000;
pub const PDPT_ADDR: u64 = 0x11000;
pub const PD_ADDR: u64 = 0x12000;
/// End of the page-table area (exclusive).
pub const PAGE_TABLES_END: u64 = 0x30000;
/// vCPU *i* starts with `RSP = BOOT_STACK_TOP - i * BOOT_STACK_SIZE`.
pub const BOOT_STACK_TOP: u64 = 0x80000;
pub const BOOT_STACK_SIZE: u64 = 0x4000;
/// At most this many vCPUs (one boot stack each).
pub const MAX_VCPUS: u8 = 16;
/// Intel MP table: floating pointer, then the configuration table.
pub const MPTABLE_ADDR: u64 = 0x9FC00;
pub const MPTABLE_END: u64 = 0xA0000;
/// The kernel's PT_LOAD segments must start at or above 1 MiB.
pub const KERNEL_MIN_ADDR: u64 = MIB;
/// RAM below 4 GiB ends here at the latest; the PCI hole follows.
pub const LOW_RAM_MAX_END: u64 = 3 * GIB;
/// The PCI MMIO window in which the VMM places BARs.
pub const PCI_MMIO_BASE: u64 = 0xC000_0000;
pub const PCI_MMIO_SIZE: u64 = IOAPIC_ADDR - PCI_MMIO_BASE;
/// In-kernel IOAPIC and local APIC (xAPIC) pages.
pub const IOAPIC_ADDR: u64 = 0xFEC0_0000;
pub const LAPIC_ADDR: u64 = 0xFEE0_0000;
/// RAM above `LOW_RAM_MAX_END` continues here.
pub const HIGH_RAM_BASE: u64 = 4 * GIB;

/// Smallest and largest `--memory`.
pub const MIN_RAM: u64 = 16 * MIB;
pub const MAX_RAM: u64 = 16 * GIB;

/// The guest RAM regions for `ram_bytes` of memory: `[0, min(RAM, 3 GiB))`,
/// and the rest from 4 GiB.
pub fn ram_regions(ram_bytes: u64) -> Vec<(GuestAddress, u64)> {
    let low = ram_bytes.min(LOW_RAM_MAX_END);
    let mut regions = vec![(GuestAddress(0), low)];
    if ram_bytes > low {
        regions.push((GuestAddress(HIGH_RAM_BASE), ram_bytes - low));
    }
    regions
}

/// End (exclusive) of RAM below 4 GiB.
pub fn low_ram_end(ram_bytes: u64) -> u64 {
    ram_bytes.min(LOW_RAM_MAX_END)
}

/// Bytes of RAM above 4 GiB.
pub fn high_ram_bytes(ram_bytes: u64) -> u64 {
    ram_bytes.saturating_sub(LOW_RAM_MAX_END)
}

/// Initial stack pointer of vCPU `index`.
pub fn boot_stack(index: u8) -> u64 {
    BOOT_STACK_TOP - u64::from(index) * BOOT_STACK_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_split_at_3_gib() {
        assert_eq!(ram_regions(64 * MIB), vec![(GuestAddress(0), 64 * MIB)]);
        assert_eq!(ram_regions(3 * GIB), vec![(GuestAddress(0), 3 * GIB)]);
        assert_eq!(
            ram_regions(5 * GIB),
            vec![
                (GuestAddress(0), 3 * GIB),
                (GuestAddress(HIGH_RAM_BASE), 2 * GIB)
            ]
        );
        assert_eq!(high_ram_bytes(5 * GIB), 2 * GIB);
        assert_eq!(low_ram_end(5 * GIB), 3 * GIB);
    }

    #[test]
    fn boot_stacks_fit_below_the_mp_table() {
        assert_eq!(boot_stack(0), 0x80000);
        assert_eq!(boot_stack(1), 0x7C000);
        // The last stack's bottom stays above the page tables.
        assert!(boot_stack(MAX_VCPUS - 1) - BOOT_STACK_SIZE >= PAGE_TABLES_END);
        assert_eq!(PCI_MMIO_SIZE, 0x3EC0_0000);
    }
}
