//! The boot GDT and the segment registers that match it.
//!
//! Three descriptors at `GDT_ADDR`: null, 64-bit code (selector 0x08, DPL0)
//! and data (0x10, DPL0). The hidden parts of the segment registers given to
//! KVM are decoded from the very descriptors written to guest memory
//! (Firecracker's `kvm_segment_from_gdt`), so the two cannot disagree.

use kvm_bindings::kvm_segment;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::layout::GDT_ADDR;

pub const CODE_SELECTOR: u16 = 0x08;
pub const DATA_SELECTOR: u16 = 0x10;

/// null; code: base 0, limit 4 GiB, L=1, P, DPL0, execute/read, accessed;
/// data: base 0, limit 4 GiB, D/B=1, P, DPL0, read/write, accessed.
pub const GDT: [u64; 3] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];

/// `GDTR.limit` of the boot GDT.
pub const GDT_LIMIT: u16 = 3 * 8 - 1;
const _: () = assert!(GDT.len() * 8 - 1 == GDT_LIMIT as usize);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the GDT to guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// Writes the GDT at `GDT_ADDR`.
pub fn write<M: GuestMemory>(memory: &M) -> Result<(), Error> {
    let bytes: Vec<u8> = GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
    memory
        .write_slice(&bytes, GuestAddress(GDT_ADDR))
        .map_err(Error::Write)
}

/// The segment register state for `selector` of the boot GDT.
pub fn segment(selector: u16) -> kvm_segment {
    let descriptor = GDT[usize::from(selector >> 3) % GDT.len()];
    segment_from_descriptor(descriptor, selector)
}

pub(crate) fn segment_from_descriptor(d: u64, selector: u16) -> kvm_segment {
    let bit = |n: u32| ((d >> n) & 1) as u8;
    let base = ((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24);
    let raw_limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);
    let granular = bit(55) == 1;
    let limit = if granular {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        selector,
        type_: ((d >> 40) & 0xf) as u8,
        s: bit(44),
        dpl: ((d >> 45) & 0x3) as u8,
        present: bit(47),
        avl: bit(52),
        l: bit(53),
        db: bit(54),
        g: bit(55),
        unusable: u8::from(bit(47) == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_64_bit_ring_0() {
        let cs = segment(CODE_SELECTOR);
        assert_eq!(cs.selector, 0x08);
        assert_eq!((cs.base, cs.limit), (0, 0xffff_ffff));
        assert_eq!(cs.type_, 0xb, "execute/read, accessed");
        assert_eq!((cs.s, cs.dpl, cs.present), (1, 0, 1));
        assert_eq!((cs.l, cs.db, cs.g), (1, 0, 1));
        assert_eq!(cs.unusable, 0);
    }

    #[test]
    fn data_segment_is_flat_read_write() {
        let ds = segment(DATA_SELECTOR);
        assert_eq!(ds.selector, 0x10);
        assert_eq!((ds.base, ds.limit), (0, 0xffff_ffff));
        assert_eq!(ds.type_, 0x3, "read/write, accessed");
        assert_eq!((ds.s, ds.dpl, ds.present), (1, 0, 1));
        assert_eq!((ds.l, ds.db, ds.g), (0, 1, 1));
        assert_eq!(GDT_LIMIT, 23);
    }

    #[test]
    fn null_descriptor_is_unusable() {
        assert_eq!(segment(0).unusable, 1);
    }
}
