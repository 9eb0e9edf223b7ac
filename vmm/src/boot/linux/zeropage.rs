//! The zero page (`struct boot_params`, linux-loader's `bootparam`
//! bindings): the setup header, the command line pointer, the initrd and
//! the e820 map. Everything else stays zero, including `sentinel`, so the
//! kernel's `sanitize_boot_params` keeps every field.
//!
//! The e820 map (`Documentation/x86/zero-page.rst`):
//! - `[0, 0x9FC00)` RAM — Linux puts its real-mode trampoline (the SIPI
//!   target of application processors) in RAM below 1 MiB;
//! - `[0x9FC00, 1 MiB)` reserved — the MP table, then the legacy VGA/BIOS
//!   area, as on a PC;
//! - `[1 MiB, min(RAM, 3 GiB))` RAM (the VMM's page tables and boot
//!   structures are all below 1 MiB);
//! - the PCI MMIO window `[0xC000_0000, 0xFEC0_0000)` is left out of the map
//!   (a hole, which `e820__setup_pci_gap` reports as free for PCI), and so
//!   are the IOAPIC and local APIC pages, which the kernel claims itself;
//! - RAM from 4 GiB when `--memory` is more than 3 GiB.
//!
//! One `setup_data` entry follows the MP table: `SETUP_RNG_SEED`, 32
//! bytes from the host's `getrandom(2)`, as boot loaders and QEMU hand the
//! kernel. Without it a kernel with no RDRAND (hidden where ring 0 is
//! emulated) has an empty entropy pool for the whole boot, and every
//! `get_random_bytes()` (dmatest draws its offsets and lengths from it)
//! hashes the input pool again with BLAKE2s: 4–8 % of the emulated
//! instructions of a Linux test run. The kernel credits the seed when
//! `CONFIG_RANDOM_TRUST_BOOTLOADER=y` (distribution kernels, the dmalab
//! image) or `random.trust_bootloader=on`; it zeroes it after reading.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};

use super::ZERO_PAGE_ADDR;
use crate::boot::layout::{self, CMDLINE_ADDR, HIGH_RAM_BASE, MIB, MPTABLE_ADDR, MPTABLE_END};

/// e820 types (`arch/x86/include/asm/e820/types.h`).
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// `CMDLINE_ADDR` as the header's 32-bit pointer.
const CMDLINE_PTR: u32 = 0x7000;
const _: () = assert!(CMDLINE_PTR as u64 == CMDLINE_ADDR);

/// `setup_data` types (`arch/x86/include/uapi/asm/bootparam.h`).
pub const SETUP_RNG_SEED: u32 = 9;
/// Bytes of boot-loader randomness handed to the kernel.
pub const RNG_SEED_LEN: usize = 32;
const RNG_SEED_LEN_FIELD: u32 = 32;
const _: () = assert!(RNG_SEED_LEN_FIELD as usize == RNG_SEED_LEN);
/// The `setup_data` list: just above the MP table, in the map's reserved
/// `[0x9FC00, 1 MiB)` and below the `$PIR` table. Not in RAM: the kernel
/// marks `setup_data` in RAM as reserved in its copy of the e820 map,
/// which splits the first RAM entry in three, and `e820__mapped_any`,
/// which the direct-map set-up calls for every unmapped 2 MiB and 4 KiB
/// slot, then scans a longer map.
pub const SETUP_DATA_ADDR: u64 = MPTABLE_END;
const SETUP_DATA_HEADER: usize = 16;
const _: () =
    assert!(SETUP_DATA_ADDR + (SETUP_DATA_HEADER + RNG_SEED_LEN) as u64 <= super::pirq::PIRQ_ADDR);

/// A `struct setup_data` of type `SETUP_RNG_SEED` carrying `seed`, the
/// last of the list (`next` = 0).
pub fn rng_seed_entry(seed: &[u8; RNG_SEED_LEN]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SETUP_DATA_HEADER + RNG_SEED_LEN);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&SETUP_RNG_SEED.to_le_bytes());
    bytes.extend_from_slice(&RNG_SEED_LEN_FIELD.to_le_bytes());
    bytes.extend_from_slice(seed);
    bytes
}

/// The e820 map for `ram_bytes` of RAM.
pub fn e820(ram_bytes: u64) -> Vec<boot_e820_entry> {
    let entry = |addr, size, kind| boot_e820_entry {
        addr,
        size,
        r#type: kind,
    };
    let mut map = vec![
        entry(0, MPTABLE_ADDR, E820_RAM),
        entry(MPTABLE_ADDR, MIB - MPTABLE_ADDR, E820_RESERVED),
        entry(MIB, layout::low_ram_end(ram_bytes) - MIB, E820_RAM),
    ];
    let high = layout::high_ram_bytes(ram_bytes);
    if high > 0 {
        map.push(entry(HIGH_RAM_BASE, high, E820_RAM));
    }
    map
}

/// The zero page for a kernel with setup header `header`; `setup_data`
/// says whether the list at `SETUP_DATA_ADDR` was written.
pub fn build(
    header: &setup_header,
    ram_bytes: u64,
    initrd: Option<(u64, u64)>,
    setup_data: bool,
) -> boot_params {
    let mut params = boot_params {
        hdr: *header,
        ..Default::default()
    };
    params.hdr.cmd_line_ptr = CMDLINE_PTR;
    if setup_data {
        params.hdr.setup_data = SETUP_DATA_ADDR;
    }
    if let Some((addr, size)) = initrd {
        // Below 4 GiB by placement: the ext_ fields stay zero.
        params.hdr.ramdisk_image = u32::try_from(addr).unwrap_or(0);
        params.hdr.ramdisk_size = u32::try_from(size).unwrap_or(0);
    }
    let map = e820(ram_bytes);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = *entry;
    }
    params.e820_entries = u8::try_from(map.len()).unwrap_or(0);
    const _: () = assert!(ZERO_PAGE_ADDR + 4096 <= CMDLINE_ADDR);
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::layout::GIB;
    use crate::boot::linux::vmlinux::synthetic_header;

    #[test]
    fn the_map_has_low_ram_the_mp_table_and_the_pci_hole() {
        let map = e820(64 * MIB);
        let triples: Vec<(u64, u64, u32)> =
            map.iter().map(|e| (e.addr, e.size, e.r#type)).collect();
        assert_eq!(
            triples,
            [
                (0, 0x9_fc00, E820_RAM),
                (0x9_fc00, 0x6_0400, E820_RESERVED),
                (MIB, 63 * MIB, E820_RAM)
            ]
        );
        let big = e820(5 * GIB);
        assert_eq!(big[2].addr + big[2].size, 3 * GIB, "PCI hole from 3 GiB");
        assert_eq!((big[3].addr, big[3].size), (4 * GIB, 2 * GIB));
    }

    #[test]
    fn the_zero_page_points_at_the_command_line_and_initrd() {
        assert_eq!(std::mem::size_of::<boot_params>(), 4096);
        let p = build(
            &synthetic_header(),
            64 * MIB,
            Some((0x3f0_0000, 0x1234)),
            false,
        );
        assert_eq!({ p.hdr.cmd_line_ptr }, 0x7000);
        assert_eq!({ p.hdr.cmdline_size }, 2048);
        assert_eq!(
            ({ p.hdr.ramdisk_image }, { p.hdr.ramdisk_size }),
            (0x3f0_0000, 0x1234)
        );
        assert_eq!((p.e820_entries, p.sentinel), (3, 0));
        assert_eq!({ p.hdr.header }, 0x5372_6448);
        assert_eq!({ p.hdr.setup_data }, 0);
    }

    #[test]
    fn the_rng_seed_is_one_setup_data_entry() {
        let p = build(&synthetic_header(), 64 * MIB, None, true);
        assert_eq!({ p.hdr.setup_data }, SETUP_DATA_ADDR);
        let seed: [u8; RNG_SEED_LEN] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let e = rng_seed_entry(&seed);
        assert_eq!(e.len(), 48);
        assert_eq!(&e[..8], &[0; 8], "last entry");
        assert_eq!(&e[8..12], &9u32.to_le_bytes());
        assert_eq!(&e[12..16], &32u32.to_le_bytes());
        assert_eq!(&e[16..], &seed);
    }
}
