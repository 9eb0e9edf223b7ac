//! Guest-virtual to guest-physical translation for the debugger, by walking
//! the guest's own page tables in guest memory (the vCPU's CR0, CR3, CR4,
//! EFER), so that gdb reads and writes what the guest sees at an address.
//! Done here rather than with KVM_TRANSLATE because the vCPU fds stay on
//! their threads and gdb asks from its own.
//!
//! Covers what an x86-64 guest uses: paging off (physical = virtual),
//! 4-level long-mode paging with 1 GiB and 2 MiB pages, and 32-bit PAE.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;
/// Bits 12–51 of a table entry: the next table or the page frame.
const FRAME: u64 = 0x000f_ffff_ffff_f000;

const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LMA: u64 = 1 << 10;

/// The registers that decide how an address translates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paging {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

impl Paging {
    pub fn from_sregs(s: &kvm_bindings::kvm_sregs) -> Self {
        Self {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
        }
    }

    /// The guest-physical address of `va` and how many bytes from there lie
    /// in the same page, or None if `va` is not mapped.
    pub fn translate(&self, memory: &GuestMemoryMmap, va: u64) -> Option<(u64, u64)> {
        if self.cr0 & CR0_PG == 0 {
            return Some((va, 0x1000 - (va & 0xfff)));
        }
        let (levels, top, mut table) = if self.efer & EFER_LMA != 0 {
            (4, 39, self.cr3 & FRAME)
        } else if self.cr4 & CR4_PAE != 0 {
            (3, 30, self.cr3 & 0xffff_ffe0)
        } else {
            return None; // 32-bit non-PAE paging: not a 64-bit guest's
        };
        let mut shift = top;
        for level in (1..=levels).rev() {
            let mask = if levels == 3 && level == 3 {
                0x3
            } else {
                0x1ff
            };
            let index = (va >> shift) & mask;
            let entry: u64 = memory.read_obj(GuestAddress(table + index * 8)).ok()?;
            if entry & PRESENT == 0 {
                return None;
            }
            // A huge page at level 2 (1 GiB in long mode) or 1 (2 MiB); the
            // PAE PDPTE (levels 3, level 3) has no PS bit.
            let huge_allowed = level < levels && shift > 12;
            if (entry & HUGE != 0 && huge_allowed) || shift == 12 {
                let size = 1u64 << shift;
                let offset = va & (size - 1);
                let base = entry & FRAME & !(size - 1);
                return Some((base + offset, size - offset));
            }
            table = entry & FRAME;
            shift -= 9;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap()
    }

    fn long_mode(cr3: u64) -> Paging {
        Paging {
            cr0: CR0_PG | 1,
            cr3,
            cr4: CR4_PAE,
            efer: EFER_LMA | (1 << 8),
        }
    }

    #[test]
    fn paging_off_is_identity() {
        let p = Paging::default();
        assert_eq!(p.translate(&memory(), 0x1234), Some((0x1234, 0xdcc)));
    }

    #[test]
    fn four_levels_to_a_4k_page_and_to_a_2m_page() {
        let m = memory();
        // PML4 at 0x1000 -> PDPT at 0x2000 -> PD at 0x3000.
        m.write_obj(0x2000u64 | PRESENT, GuestAddress(0x1000))
            .unwrap();
        m.write_obj(0x3000u64 | PRESENT, GuestAddress(0x2000))
            .unwrap();
        // PD[0]: a 2 MiB page at 0x20_0000... only its translation is read.
        m.write_obj(0x20_0000u64 | PRESENT | HUGE, GuestAddress(0x3000))
            .unwrap();
        // PD[1] -> PT at 0x4000; PT[5] -> frame 0x9000.
        m.write_obj(0x4000u64 | PRESENT, GuestAddress(0x3008))
            .unwrap();
        m.write_obj(0x9000u64 | PRESENT, GuestAddress(0x4000 + 5 * 8))
            .unwrap();
        let p = long_mode(0x1000);
        assert_eq!(
            p.translate(&m, 0x1234),
            Some((0x20_1234, 0x20_0000 - 0x1234))
        );
        let va = 0x20_0000 + 5 * 0x1000 + 0x10;
        assert_eq!(p.translate(&m, va), Some((0x9010, 0xff0)));
        // PT[6] is empty; so is PML4[1].
        assert_eq!(p.translate(&m, 0x20_6000), None);
        assert_eq!(p.translate(&m, 1 << 39), None);
    }

    #[test]
    fn a_table_outside_ram_is_unmapped_not_a_panic() {
        let p = long_mode(0xffff_f000);
        assert_eq!(p.translate(&memory(), 0x1000), None);
    }
}
