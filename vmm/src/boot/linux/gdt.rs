//! The boot GDT of the 64-bit boot protocol: `__BOOT_CS` (0x10) a flat
//! 64-bit code segment, `__BOOT_DS` (0x18) flat data, as boot.rst asks
//! ("a GDT must be loaded with the descriptors for selectors __BOOT_CS(0x10)
//! and __BOOT_DS(0x18)"). Written at the dmalab GDT's address, with the
//! descriptors of `boot/gdt.rs`.

use kvm_bindings::kvm_segment;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::boot::gdt::{segment_from_descriptor, GDT};
use crate::boot::layout::GDT_ADDR;

pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;

/// null, unused, code, data.
pub const LINUX_GDT: [u64; 4] = [0, 0, GDT[1], GDT[2]];
pub const LINUX_GDT_LIMIT: u16 = 4 * 8 - 1;

/// Writes the Linux boot GDT at `GDT_ADDR`.
pub fn write<M: GuestMemory>(memory: &M) -> Result<(), vm_memory::GuestMemoryError> {
    let bytes: Vec<u8> = LINUX_GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
    memory.write_slice(&bytes, GuestAddress(GDT_ADDR))
}

/// The segment register state for `selector` of the Linux boot GDT.
pub fn segment(selector: u16) -> kvm_segment {
    let descriptor = LINUX_GDT[usize::from(selector >> 3) % LINUX_GDT.len()];
    segment_from_descriptor(descriptor, selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_cs_is_64_bit_code_and_boot_ds_is_data() {
        let cs = segment(BOOT_CS);
        assert_eq!((cs.selector, cs.l, cs.type_, cs.present), (0x10, 1, 0xb, 1));
        let ds = segment(BOOT_DS);
        assert_eq!((ds.selector, ds.db, ds.type_), (0x18, 1, 0x3));
        assert_eq!(usize::from(LINUX_GDT_LIMIT) + 1, LINUX_GDT.len() * 8);
    }
}
