//! Direct boot of a Linux kernel by the x86 64-bit boot protocol
//! (`Documentation/x86/boot.rst`, "64-bit Boot Protocol"), no firmware:
//! the kernel is copied into RAM, a zero page (`struct boot_params`) with
//! the e820 map, the command line and the initrd is written at
//! `ZERO_PAGE_ADDR`, and the bootstrap processor enters the kernel's 64-bit
//! entry in long mode with `RSI` = the zero page and the boot GDT's
//! `__BOOT_CS` (0x10) / `__BOOT_DS` (0x18). Application processors wait for
//! INIT/SIPI from the guest, as on a PC.
//!
//! Two image formats, told apart before anything runs:
//! - `vmlinux`, the uncompressed ELF: `PT_LOAD` segments at their physical
//!   addresses (the project's checked ELF loader), entry `e_entry`
//!   (`phys_startup_64`). Recognised by its `Linux` ELF note (the build
//!   salt every 6.x kernel carries), which the dmalab guest ELF lacks.
//! - `bzImage`: the protected-mode part at 1 MiB, entry 0x200 past it (the
//!   64-bit entry of the decompressor), the image's own setup header copied
//!   into the zero page. Recognised by "HdrS" at offset 0x202.
//!
//! Why the 64-bit entry and not PVH: it needs nothing from the kernel's
//! configuration (PVH needs `CONFIG_PVH` and its Xen note, which a distro
//! bzImage has no use for), one entry path serves both formats, and it is
//! the protocol Firecracker boots `vmlinux` with. The VMM builds the same
//! identity page tables as for the dmalab guest; startup_64 replaces them.

pub mod bzimage;
pub mod cmdline;
pub mod cpuid;
pub mod gdt;
pub mod host;
pub mod pirq;
pub mod vmlinux;
pub mod zeropage;

use kvm_bindings::{kvm_regs, kvm_sregs};
use linux_loader::loader::bootparam::setup_header;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::cpu;
use super::layout::{self, boot_stack};

/// The zero page (`struct boot_params`, 4 KiB) sits where the dmalab guest
/// gets its boot info; the command line follows it at `CMDLINE_ADDR`.
pub const ZERO_PAGE_ADDR: u64 = layout::BOOT_INFO_ADDR;

/// `type_of_loader` 0xFF: "undefined" boot loader (boot.rst).
pub const LOADER_UNDEFINED: u8 = 0xff;

const PAGE_SIZE_4K: u64 = 0x1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad vmlinux")]
    Vmlinux(#[source] super::elf::Error),
    #[error("bad bzImage")]
    BzImage(#[source] bzimage::Error),
    #[error(
        "the initrd ({size} bytes) does not fit in guest RAM between the kernel's end \
         {kernel_end:#x} and {limit:#x}; give the guest more --memory"
    )]
    InitrdTooBig {
        size: u64,
        kernel_end: u64,
        limit: u64,
    },
    #[error("the command line is {len} bytes long; this kernel takes at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("cannot write {0} to guest memory")]
    Write(&'static str, #[source] vm_memory::GuestMemoryError),
}

/// Which image format `image` is, if it is a Linux kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vmlinux,
    BzImage,
}

impl Format {
    /// Looks at the image's magic only (no other checks).
    pub fn detect(image: &[u8]) -> Option<Self> {
        if bzimage::has_magic(image) {
            Some(Self::BzImage)
        } else if vmlinux::is_linux_elf(image) {
            Some(Self::Vmlinux)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Vmlinux => "vmlinux",
            Self::BzImage => "bzImage",
        }
    }
}

/// One range of the image copied to guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub addr: u64,
    pub offset: usize,
    pub len: usize,
}

/// A checked Linux kernel (and its initrd), ready to load.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub format: Format,
    /// Guest-physical 64-bit entry point.
    pub entry: u64,
    pub pieces: Vec<Piece>,
    /// End (exclusive) of the memory the kernel needs at boot.
    pub end: u64,
    /// The setup header put into the zero page.
    pub header: setup_header,
    /// Longest command line the kernel reads, without its NUL.
    pub cmdline_max: usize,
    pub initrd: Option<Initrd>,
    pub ram_bytes: u64,
}

/// The initrd and where it goes: the top of RAM below 4 GiB, page aligned,
/// as boot loaders place it.
#[derive(Debug, Clone)]
pub struct Initrd {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

impl Kernel {
    /// Checks `image` (of `format`) and `initrd` for a guest with
    /// `ram_bytes` of RAM. Nothing is written.
    pub fn parse(
        format: Format,
        image: &[u8],
        ram_bytes: u64,
        initrd: Option<Vec<u8>>,
    ) -> Result<Self, Error> {
        let ram_end = layout::low_ram_end(ram_bytes);
        let mut kernel = match format {
            Format::Vmlinux => vmlinux::parse(image, ram_end).map_err(Error::Vmlinux)?,
            Format::BzImage => bzimage::parse(image, ram_end).map_err(Error::BzImage)?,
        };
        kernel.ram_bytes = ram_bytes;
        if let Some(bytes) = initrd {
            let max = u64::from(kernel.header.initrd_addr_max);
            let addr = place_initrd(bytes.len() as u64, kernel.end, ram_end, max)?;
            kernel.initrd = Some(Initrd { addr, bytes });
        }
        Ok(kernel)
    }

    /// Refuses a command line longer than the kernel reads.
    pub fn check_cmdline(&self, cmdline: &str) -> Result<(), Error> {
        let max = self.cmdline_max.min(layout::CMDLINE_MAX);
        if cmdline.len() > max {
            return Err(Error::CmdlineTooLong {
                len: cmdline.len(),
                max,
            });
        }
        Ok(())
    }

    /// Copies the kernel and the initrd into guest memory.
    pub fn load<M: GuestMemory>(&self, memory: &M, image: &[u8]) -> Result<(), Error> {
        for p in &self.pieces {
            let bytes = p
                .offset
                .checked_add(p.len)
                .and_then(|end| image.get(p.offset..end))
                .ok_or(Error::Vmlinux(super::elf::Error::Truncated("segment data")))?;
            memory
                .write_slice(bytes, GuestAddress(p.addr))
                .map_err(|e| Error::Write("the kernel", e))?;
        }
        if let Some(initrd) = &self.initrd {
            memory
                .write_slice(&initrd.bytes, GuestAddress(initrd.addr))
                .map_err(|e| Error::Write("the initrd", e))?;
        }
        Ok(())
    }

    /// Writes the zero page, the command line and the RNG seed's
    /// `setup_data` (the caller writes the page tables, the boot GDT and
    /// the MP table).
    pub fn write_zero_page<M: GuestMemory>(&self, memory: &M, cmdline: &str) -> Result<(), Error> {
        self.check_cmdline(cmdline)?;
        let mut bytes = Vec::with_capacity(cmdline.len() + 1);
        bytes.extend_from_slice(cmdline.as_bytes());
        bytes.push(0);
        memory
            .write_slice(&bytes, GuestAddress(layout::CMDLINE_ADDR))
            .map_err(|e| Error::Write("the command line", e))?;
        // A host that cannot give randomness boots the kernel without a
        // seed, as before: slower where ring 0 is emulated, never wrong.
        let seed = host_random_seed();
        if let Some(seed) = &seed {
            memory
                .write_slice(
                    &zeropage::rng_seed_entry(seed),
                    GuestAddress(zeropage::SETUP_DATA_ADDR),
                )
                .map_err(|e| Error::Write("the RNG seed", e))?;
        }
        let initrd = self.initrd.as_ref().map(|i| (i.addr, i.bytes.len() as u64));
        let params = zeropage::build(&self.header, self.ram_bytes, initrd, seed.is_some());
        memory
            .write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
            .map_err(|e| Error::Write("the zero page", e))
    }

    /// Registers of the bootstrap processor at the 64-bit entry.
    pub fn entry_regs(&self) -> kvm_regs {
        kvm_regs {
            rip: self.entry,
            rsi: ZERO_PAGE_ADDR,
            rsp: boot_stack(0),
            rflags: cpu::RFLAGS_RESERVED,
            ..Default::default()
        }
    }

    /// Turns KVM's reset state into the 64-bit boot protocol's entry state.
    pub fn entry_sregs(sregs: kvm_sregs) -> kvm_sregs {
        let mut sregs = cpu::long_mode_sregs(sregs);
        let code = gdt::segment(gdt::BOOT_CS);
        let data = gdt::segment(gdt::BOOT_DS);
        sregs.cs = code;
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        sregs.gdt.limit = gdt::LINUX_GDT_LIMIT;
        sregs
    }
}

/// `zeropage::RNG_SEED_LEN` bytes from `getrandom(2)`, or None.
fn host_random_seed() -> Option<[u8; zeropage::RNG_SEED_LEN]> {
    let mut seed = [0u8; zeropage::RNG_SEED_LEN];
    // SAFETY: getrandom writes at most `seed.len()` bytes into `seed`,
    // which lives for the whole call.
    let got = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
    (usize::try_from(got).ok() == Some(seed.len())).then_some(seed)
}

/// The initrd's address: as high as `ram_end` and the header's
/// `initrd_addr_max` allow, 4 KiB aligned, above the kernel.
fn place_initrd(size: u64, kernel_end: u64, ram_end: u64, addr_max: u64) -> Result<u64, Error> {
    // initrd_addr_max is the highest address the initrd may occupy.
    let limit = ram_end.min(addr_max.saturating_add(1));
    let too_big = || Error::InitrdTooBig {
        size,
        kernel_end,
        limit,
    };
    let addr = limit.checked_sub(size).ok_or_else(too_big)? & !(PAGE_SIZE_4K - 1);
    if addr < kernel_end || size == 0 && addr == 0 {
        return Err(too_big());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::layout::MIB;

    #[test]
    fn the_initrd_goes_to_the_top_of_ram_below_its_limit() {
        assert_eq!(
            place_initrd(0x1800, 20 * MIB, 64 * MIB, 0x7fff_ffff).unwrap(),
            64 * MIB - 0x2000
        );
        // A lower initrd_addr_max wins over the end of RAM.
        assert_eq!(
            place_initrd(0x1000, 20 * MIB, 4096 * MIB, 0x37ff_ffff).unwrap(),
            0x3800_0000 - 0x1000
        );
        assert!(matches!(
            place_initrd(50 * MIB, 20 * MIB, 64 * MIB, 0x7fff_ffff),
            Err(Error::InitrdTooBig { .. })
        ));
        assert!(place_initrd(u64::MAX, 0, 64 * MIB, 0x7fff_ffff).is_err());
    }

    #[test]
    fn formats_are_told_apart_by_magic() {
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(Format::detect(&bz), Some(Format::BzImage));
        let dmalab = crate::boot::elf::tests::tiny_elf(0x10_0000, &[0xf4], 0);
        assert_eq!(Format::detect(&dmalab), None);
        assert_eq!(Format::detect(b"not a kernel"), None);
    }
}
