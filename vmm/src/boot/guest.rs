//! The guest a run boots: the dmalab guest kernel (`docs/boot-protocol.md`)
//! or a Linux kernel (`linux/`, the kernel's 64-bit boot protocol). The
//! kernel file decides: a bzImage ("HdrS") or an ELF with a `Linux` note is
//! Linux; any other ELF is a dmalab guest. `vm.rs` asks this type what to
//! load, which boot structures to write and how each vCPU starts.

use kvm_bindings::{kvm_regs, kvm_sregs, CpuId};
use vm_memory::GuestMemory;

use super::bootinfo::BootParams;
use super::linux::{self, cmdline, host::Ring0};
use super::{cpu, elf, mptable, paging, Error};

/// A checked guest kernel, ready to load.
#[derive(Debug, Clone)]
pub enum Guest {
    Dmalab(elf::Kernel),
    Linux(Box<LinuxGuest>),
}

/// A Linux kernel, the host kind its workarounds are chosen for, and the
/// VMM's command-line defaults.
#[derive(Debug, Clone)]
pub struct LinuxGuest {
    pub kernel: linux::Kernel,
    pub ring0: Ring0,
    pub defaults: Vec<String>,
}

impl Guest {
    /// A Linux guest for `kernel` on this host.
    pub fn linux(kernel: linux::Kernel) -> Self {
        let ring0 = Ring0::detect();
        Self::Linux(Box::new(LinuxGuest {
            kernel,
            ring0,
            defaults: cmdline::defaults(ring0),
        }))
    }

    pub fn is_linux(&self) -> bool {
        matches!(self, Self::Linux(_))
    }

    /// Linux needs KVM's in-kernel PIT: without ACPI or an HPET it is the
    /// kernel's tick and the reference its TSC and APIC timer calibration
    /// measure against (where ring 0 is emulated, the APIC timer fails its
    /// check and the PIT stays the tick).
    pub fn needs_pit(&self) -> bool {
        self.is_linux()
    }

    /// The command line the guest gets for the user's `words`.
    pub fn cmdline(&self, words: &str) -> String {
        match self {
            Self::Dmalab(_) => words.to_string(),
            Self::Linux(l) => cmdline::compose(&l.defaults, words),
        }
    }

    /// Refuses a command line (as `cmdline` gives it) that will not fit.
    pub fn check_cmdline(&self, line: &str) -> Result<(), Error> {
        match self {
            Self::Dmalab(_) => super::check_cmdline(line),
            Self::Linux(l) => l.kernel.check_cmdline(line).map_err(Error::Linux),
        }
    }

    /// Copies the kernel (and Linux's initrd) into guest memory.
    pub fn load<M: GuestMemory>(&self, memory: &M, image: &[u8]) -> Result<(), Error> {
        match self {
            Self::Dmalab(k) => elf::load(memory, image, k).map_err(Error::Kernel),
            Self::Linux(l) => l.kernel.load(memory, image).map_err(Error::Linux),
        }
    }

    /// Writes the boot structures: the dmalab boot info, or Linux's zero
    /// page; the page tables, the GDT and the MP table for both.
    pub fn write_boot<M: GuestMemory>(
        &self,
        memory: &M,
        params: &BootParams,
        line: &str,
    ) -> Result<(), Error> {
        let Self::Linux(l) = self else {
            return super::write_boot_structures(memory, params, line);
        };
        l.kernel
            .write_zero_page(memory, line)
            .map_err(Error::Linux)?;
        paging::PageTables::build(params.ram_bytes)
            .and_then(|tables| tables.write(memory))
            .map_err(Error::Paging)?;
        linux::gdt::write(memory).map_err(Error::LinuxGdt)?;
        linux::pirq::write(memory).map_err(Error::LinuxGdt)?;
        mptable::write(memory, params.cpu_count).map_err(Error::MpTable)?;
        Ok(())
    }

    /// The CPUID table of vCPU `index`, whose TSC runs at `tsc_khz`.
    pub fn cpuid(&self, supported: &CpuId, index: u8, tsc_khz: u32) -> CpuId {
        match self {
            Self::Dmalab(_) => cpu::vcpu_cpuid(supported, index),
            Self::Linux(l) => linux::cpuid::linux_cpuid(supported, index, l.ring0, tsc_khz),
        }
    }

    /// How vCPU `index` starts, from KVM's reset `sregs`: its registers,
    /// or None for a Linux application processor, which stays in reset
    /// until the guest sends INIT/SIPI.
    pub fn entry_state(&self, index: u8, sregs: kvm_sregs) -> Option<(kvm_regs, kvm_sregs)> {
        match self {
            Self::Dmalab(k) => Some((cpu::entry_regs(k.entry, index), cpu::long_mode_sregs(sregs))),
            Self::Linux(l) if index == 0 => {
                Some((l.kernel.entry_regs(), linux::Kernel::entry_sregs(sregs)))
            }
            Self::Linux(_) => None,
        }
    }
}
