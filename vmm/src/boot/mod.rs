//! Direct long-mode boot of the dmalab guest kernel, exactly as
//! `docs/boot-protocol.md` says: the kernel's segments at their physical
//! addresses, identity page tables, the GDT, the command line, the boot info
//! and an MP table, all in the reserved first MiB except the kernel itself.
//! `cpu.rs` holds the register state each vCPU enters with.
//!
//! Guest RAM is fresh anonymous memory, so it is zero everywhere we do not
//! write; nothing here clears memory.

pub mod bootinfo;
pub mod cpu;
pub mod elf;
pub mod gdt;
pub mod guest;
pub mod layout;
pub mod linux;
pub mod mptable;
pub mod paging;

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use self::bootinfo::{BootInfo, BootParams};
use self::layout::{CMDLINE_ADDR, CMDLINE_MAX};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the guest kernel is unusable")]
    Kernel(#[source] elf::Error),
    #[error("the command line is {0} bytes long, more than {CMDLINE_MAX}")]
    CmdlineTooLong(usize),
    #[error("cannot write the command line to guest memory")]
    Cmdline(#[source] vm_memory::GuestMemoryError),
    #[error("cannot build the page tables")]
    Paging(#[source] paging::Error),
    #[error("cannot write the GDT")]
    Gdt(#[source] gdt::Error),
    #[error("cannot write the boot info")]
    BootInfo(#[source] bootinfo::Error),
    #[error("cannot build the MP table")]
    MpTable(#[source] mptable::Error),
    #[error("cannot boot the Linux kernel")]
    Linux(#[source] linux::Error),
    #[error("cannot write the Linux boot GDT or PCI IRQ table")]
    LinuxGdt(#[source] vm_memory::GuestMemoryError),
}

/// Checks the kernel image and copies it into guest memory; returns its
/// entry point.
pub fn load_kernel<M: GuestMemory>(memory: &M, image: &[u8], ram_bytes: u64) -> Result<u64, Error> {
    let kernel = elf::parse(image, layout::low_ram_end(ram_bytes)).map_err(Error::Kernel)?;
    elf::load(memory, image, &kernel).map_err(Error::Kernel)?;
    Ok(kernel.entry)
}

/// Checks a command line without writing it (so a bad one is reported
/// before any KVM work).
pub fn check_cmdline(cmdline: &str) -> Result<(), Error> {
    if cmdline.len() > CMDLINE_MAX {
        return Err(Error::CmdlineTooLong(cmdline.len()));
    }
    Ok(())
}

/// Writes every boot structure of the first MiB.
pub fn write_boot_structures<M: GuestMemory>(
    memory: &M,
    params: &BootParams,
    cmdline: &str,
) -> Result<(), Error> {
    check_cmdline(cmdline)?;
    let mut bytes = Vec::with_capacity(cmdline.len() + 1);
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    memory
        .write_slice(&bytes, GuestAddress(CMDLINE_ADDR))
        .map_err(Error::Cmdline)?;
    paging::PageTables::build(params.ram_bytes)
        .and_then(|tables| tables.write(memory))
        .map_err(Error::Paging)?;
    gdt::write(memory).map_err(Error::Gdt)?;
    BootInfo::new(params)
        .write(memory)
        .map_err(Error::BootInfo)?;
    mptable::write(memory, params.cpu_count).map_err(Error::MpTable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::layout::{BOOT_INFO_ADDR, MIB, MPTABLE_ADDR, PML4_ADDR};
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn boot_structures_land_at_their_addresses() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let params = BootParams {
            ram_bytes: 16 * MIB,
            cpu_count: 2,
            cmdline_len: 14,
            tsc_khz: 1000,
        };
        write_boot_structures(&mem, &params, "scenario=hello").unwrap();
        let mut cmdline = [0u8; 15];
        mem.read_slice(&mut cmdline, GuestAddress(CMDLINE_ADDR))
            .unwrap();
        assert_eq!(&cmdline, b"scenario=hello\0");
        let magic: u64 = mem.read_obj(GuestAddress(BOOT_INFO_ADDR)).unwrap();
        assert_eq!(magic, bootinfo::BOOT_MAGIC);
        let pml4: u64 = mem.read_obj(GuestAddress(PML4_ADDR)).unwrap();
        assert_eq!(pml4 & !0xfff, layout::PDPT_ADDR);
        let mut mp = [0u8; 4];
        mem.read_slice(&mut mp, GuestAddress(MPTABLE_ADDR)).unwrap();
        assert_eq!(&mp, b"_MP_");
        let gdt_code: u64 = mem.read_obj(GuestAddress(layout::GDT_ADDR + 8)).unwrap();
        assert_eq!(gdt_code, gdt::GDT[1]);
    }

    #[test]
    fn overlong_cmdline_is_refused() {
        let long = "x".repeat(CMDLINE_MAX + 1);
        assert!(matches!(
            check_cmdline(&long),
            Err(Error::CmdlineTooLong(4096))
        ));
        assert!(check_cmdline(&"x".repeat(CMDLINE_MAX)).is_ok());
    }
}
