//! An empty PCI IRQ routing table (`$PIR`, the PCI BIOS format) at
//! 0xF0000, the first address Linux's `pirq_find_routing_table` looks at.
//!
//! Why: without one, Linux scans 0xF0000–0xFFFFF for `$PIR` in 16-byte
//! steps and then for AMI's `$IRT` byte by byte; measured on the emulated
//! ring 0 that scan was 4 % of the boot's emulated instructions
//! (`pcibios_irq_init`). The table has no slot entries: interrupts come
//! from the MP table's IOAPIC (the kernel drops a `$PIR` table whenever
//! the IOAPIC assigns PCI interrupts) and the DMA controller uses MSI-X.
//! The router it names is the host bridge at 00:00.0.

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::devices::pci_host::{HOST_BRIDGE_DEVICE, HOST_BRIDGE_VENDOR};

/// Where the table goes (inside the e820 map's reserved `[0x9FC00, 1 MiB)`).
pub const PIRQ_ADDR: u64 = 0xf_0000;
/// Header only: 32 bytes, a multiple of 16 as the format asks.
const TABLE_LEN: usize = 32;
const TABLE_LEN_U16: u16 = 32;
const _: () = assert!(TABLE_LEN_U16 as usize == TABLE_LEN);

/// The table's bytes, checksummed (all bytes sum to 0 mod 256).
pub fn table() -> [u8; TABLE_LEN] {
    let mut t = [0u8; TABLE_LEN];
    t[0..4].copy_from_slice(b"$PIR");
    t[4..6].copy_from_slice(&0x0100u16.to_le_bytes()); // version 1.0
    t[6..8].copy_from_slice(&TABLE_LEN_U16.to_le_bytes());
    // Router at bus 0, devfn 0; no exclusive IRQs.
    t[12..14].copy_from_slice(&HOST_BRIDGE_VENDOR.to_le_bytes());
    t[14..16].copy_from_slice(&HOST_BRIDGE_DEVICE.to_le_bytes());
    let sum = t.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    t[TABLE_LEN - 1] = 0u8.wrapping_sub(sum);
    t
}

/// Writes the table at `PIRQ_ADDR`.
pub fn write<M: GuestMemory>(memory: &M) -> Result<(), vm_memory::GuestMemoryError> {
    memory.write_slice(&table(), GuestAddress(PIRQ_ADDR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_what_linux_accepts() {
        let t = table();
        assert_eq!(&t[0..4], b"$PIR");
        assert_eq!(u16::from_le_bytes([t[4], t[5]]), 0x0100);
        let size = usize::from(u16::from_le_bytes([t[6], t[7]]));
        assert!(size >= 32 && size % 16 == 0);
        assert_eq!(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }
}
