//! Entry state of every vCPU (`docs/boot-protocol.md`, "Entry state"):
//! 64-bit long mode at CPL0 with the boot GDT and identity page tables,
//! `RIP = e_entry`, `RDI` = boot info, `RSI` = vCPU index, `RSP` = that
//! vCPU's boot stack; and the guest CPUID (KVM_GET_SUPPORTED_CPUID with the
//! APIC IDs fixed per vCPU).

use kvm_bindings::{kvm_regs, kvm_sregs, CpuId};

use super::gdt::{self, CODE_SELECTOR, DATA_SELECTOR, GDT_LIMIT};
use super::layout::{boot_stack, BOOT_INFO_ADDR, GDT_ADDR, PML4_ADDR};

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_MP: u64 = 1 << 1;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_WP: u64 = 1 << 16;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
/// Bit 1 of RFLAGS is always set; interrupts are off.
pub const RFLAGS_RESERVED: u64 = 1 << 1;

/// General registers at entry of vCPU `index`.
pub fn entry_regs(entry: u64, index: u8) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rdi: BOOT_INFO_ADDR,
        rsi: u64::from(index),
        rsp: boot_stack(index),
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// Turns KVM's reset state `sregs` into the long-mode entry state. Fields we
/// do not name (TR, LDT, APIC base, interrupt bitmap) keep their reset values.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = gdt::segment(CODE_SELECTOR);
    let data = gdt::segment(DATA_SELECTOR);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = GDT_LIMIT;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// CPUID leaves that carry an APIC ID.
const LEAF_FEATURES: u32 = 0x1;
const LEAF_X2APIC_TOPOLOGY: u32 = 0xb;
const LEAF_V2_TOPOLOGY: u32 = 0x1f;

/// The supported CPUID with the APIC IDs of vCPU `index`: CPUID.1 EBX[31:24]
/// (initial APIC ID) and the x2APIC ID in EDX of the topology leaves.
pub fn vcpu_cpuid(supported: &CpuId, index: u8) -> CpuId {
    let mut cpuid = supported.clone();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            LEAF_FEATURES => {
                entry.ebx = (entry.ebx & 0x00ff_ffff) | (u32::from(index) << 24);
            }
            LEAF_X2APIC_TOPOLOGY | LEAF_V2_TOPOLOGY => entry.edx = u32::from(index),
            _ => {}
        }
    }
    cpuid
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    #[test]
    fn entry_registers_follow_the_protocol() {
        let r = entry_regs(0x100040, 1);
        assert_eq!((r.rip, r.rdi, r.rsi, r.rsp), (0x100040, 0x6000, 1, 0x7C000));
        assert_eq!(r.rflags, 0x2);
        assert_eq!(r.rax, 0);
    }

    #[test]
    fn sregs_enter_long_mode() {
        let s = long_mode_sregs(kvm_sregs::default());
        assert_eq!(s.cr0, 0x8001_0033);
        assert_eq!((s.cr3, s.cr4, s.efer), (0x10000, 0x20, 0x500));
        assert_eq!((s.cs.selector, s.cs.l), (0x08, 1));
        assert_eq!(
            (s.ss.selector, s.ds.selector, s.gs.selector),
            (0x10, 0x10, 0x10)
        );
        assert_eq!((s.gdt.base, s.gdt.limit), (0x500, 23));
        assert_eq!(s.idt.limit, 0);
    }

    #[test]
    fn apic_ids_are_fixed_per_vcpu() {
        let entries = [
            kvm_cpuid_entry2 {
                function: 1,
                ebx: 0xAB12_3456,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                index: 1,
                edx: 7,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0,
                ebx: 0x756e_6547,
                ..Default::default()
            },
        ];
        let supported = CpuId::from_entries(&entries).unwrap();
        let c = vcpu_cpuid(&supported, 3);
        let e = c.as_slice();
        assert_eq!(e[0].ebx, 0x0312_3456);
        assert_eq!(e[1].edx, 3);
        assert_eq!(e[2].ebx, 0x756e_6547, "other leaves untouched");
    }
}
