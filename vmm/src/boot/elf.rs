//! Bounds-checked loader for the dmalab guest kernel (ELF64, x86-64,
//! `ET_EXEC`, linked at 1 MiB): each `PT_LOAD` segment's file bytes are
//! copied to its `p_paddr`; the rest of `p_memsz` stays zero (guest RAM is
//! zero at entry, so `.bss` needs no work).
//!
//! Why not `linux_loader::loader::Elf::load`: it checks neither the ELF
//! class, machine nor type, nor `p_memsz` against guest RAM, nor that a
//! segment stays clear of the boot structures in the first MiB; it wants a
//! `Read + Seek + ReadVolatile` source, which the embedded image (a byte
//! slice) is not. Those checks would re-parse the same headers, after which
//! the copy is one `write_slice` per segment. We keep linux-loader's ELF
//! header types (`linux_loader::elf`), so the field layout is not ours.
//!
//! Everything in the file is untrusted: every offset and size is checked
//! with overflow-free arithmetic before use.

use linux_loader::elf::{
    Elf64_Ehdr, Elf64_Phdr, EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, ELFMAG0, ELFMAG1, ELFMAG2,
    ELFMAG3, EM_X86_64, ET_EXEC, PF_X, PT_LOAD,
};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemory};

use super::layout::KERNEL_MIN_ADDR;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not an ELF file (bad magic)")]
    NotElf,
    #[error("not a 64-bit little-endian x86-64 ELF executable")]
    WrongKind,
    #[error("the ELF file is truncated or its {0} lies outside the file")]
    Truncated(&'static str),
    #[error("the ELF file has no loadable segment")]
    NoSegments,
    #[error(
        "segment at {paddr:#x}+{memsz:#x} lies outside guest RAM [{min:#x}, {max:#x}); \
         link the kernel at 1 MiB or give the guest more memory"
    )]
    SegmentOutsideRam {
        paddr: u64,
        memsz: u64,
        min: u64,
        max: u64,
    },
    #[error("segment at {0:#x} has more file bytes than memory bytes")]
    FileSizeExceedsMemSize(u64),
    #[error("entry point {0:#x} is not inside an executable segment")]
    BadEntry(u64),
    #[error("cannot copy a kernel segment into guest memory")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// One segment to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub file_offset: usize,
    pub file_size: usize,
    pub mem_size: u64,
}

/// A validated kernel image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// End of the highest segment (exclusive).
    pub end: u64,
}

/// Parses and checks `image` for a guest whose RAM below 4 GiB ends at
/// `ram_end`. Nothing is written.
pub fn parse(image: &[u8], ram_end: u64) -> Result<Kernel, Error> {
    let ehdr: Elf64_Ehdr = read_struct(image, 0).ok_or(Error::NotElf)?;
    if ehdr.e_ident[..4] != [ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3] {
        return Err(Error::NotElf);
    }
    if ehdr.e_ident[EI_CLASS] != ELFCLASS64
        || ehdr.e_ident[EI_DATA] != ELFDATA2LSB
        || ehdr.e_machine != EM_X86_64
        || ehdr.e_type != ET_EXEC
        || usize::from(ehdr.e_phentsize) != std::mem::size_of::<Elf64_Phdr>()
    {
        return Err(Error::WrongKind);
    }

    let phoff = usize::try_from(ehdr.e_phoff).map_err(|_| Error::Truncated("program headers"))?;
    let mut segments = Vec::new();
    let mut entry_ok = false;
    let mut end = 0;
    for i in 0..usize::from(ehdr.e_phnum) {
        let at = i
            .checked_mul(std::mem::size_of::<Elf64_Phdr>())
            .and_then(|o| o.checked_add(phoff))
            .ok_or(Error::Truncated("program headers"))?;
        let phdr: Elf64_Phdr = read_struct(image, at).ok_or(Error::Truncated("program headers"))?;
        if phdr.p_type != PT_LOAD || phdr.p_memsz == 0 {
            continue;
        }
        let segment = check_segment(&phdr, image.len(), ram_end)?;
        if phdr.p_flags & PF_X != 0
            && ehdr.e_entry >= segment.paddr
            && ehdr.e_entry - segment.paddr < segment.mem_size
        {
            entry_ok = true;
        }
        end = end.max(segment.paddr + segment.mem_size);
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(Error::NoSegments);
    }
    if !entry_ok {
        return Err(Error::BadEntry(ehdr.e_entry));
    }
    Ok(Kernel {
        entry: ehdr.e_entry,
        segments,
        end,
    })
}

fn check_segment(phdr: &Elf64_Phdr, file_len: usize, ram_end: u64) -> Result<Segment, Error> {
    let outside = || Error::SegmentOutsideRam {
        paddr: phdr.p_paddr,
        memsz: phdr.p_memsz,
        min: KERNEL_MIN_ADDR,
        max: ram_end,
    };
    let seg_end = phdr.p_paddr.checked_add(phdr.p_memsz).ok_or_else(outside)?;
    if phdr.p_paddr < KERNEL_MIN_ADDR || seg_end > ram_end {
        return Err(outside());
    }
    if phdr.p_filesz > phdr.p_memsz {
        return Err(Error::FileSizeExceedsMemSize(phdr.p_paddr));
    }
    let file_offset =
        usize::try_from(phdr.p_offset).map_err(|_| Error::Truncated("segment data"))?;
    let file_size = usize::try_from(phdr.p_filesz).map_err(|_| Error::Truncated("segment data"))?;
    match file_offset.checked_add(file_size) {
        Some(file_end) if file_end <= file_len => Ok(Segment {
            paddr: phdr.p_paddr,
            file_offset,
            file_size,
            mem_size: phdr.p_memsz,
        }),
        _ => Err(Error::Truncated("segment data")),
    }
}

/// Copies the segments of a parsed kernel into guest memory.
pub fn load<M: GuestMemory>(memory: &M, image: &[u8], kernel: &Kernel) -> Result<(), Error> {
    for s in &kernel.segments {
        // `parse` checked this against the image; a different image is
        // refused rather than trusted.
        let bytes = s
            .file_offset
            .checked_add(s.file_size)
            .and_then(|end| image.get(s.file_offset..end))
            .ok_or(Error::Truncated("segment data"))?;
        memory
            .write_slice(bytes, GuestAddress(s.paddr))
            .map_err(Error::Write)?;
    }
    Ok(())
}

/// A copy of the `T` at `offset`, if it lies inside `bytes` (no alignment
/// needed, unlike `ByteValued::from_slice`).
fn read_struct<T: ByteValued + Default>(bytes: &[u8], offset: usize) -> Option<T> {
    let src = bytes.get(offset..offset.checked_add(std::mem::size_of::<T>())?)?;
    let mut value = T::default();
    value.as_mut_slice().copy_from_slice(src);
    Some(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    /// A minimal ELF64 x86-64 executable: one RX segment at `paddr` holding
    /// `code`, with `bss` zero bytes after it; entry at its start.
    pub(crate) fn tiny_elf(paddr: u64, code: &[u8], bss: u64) -> Vec<u8> {
        let mut ehdr = Elf64_Ehdr::default();
        ehdr.e_ident[..4].copy_from_slice(&[ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3]);
        ehdr.e_ident[EI_CLASS] = ELFCLASS64;
        ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
        ehdr.e_ident[6] = 1;
        ehdr.e_type = ET_EXEC;
        ehdr.e_machine = EM_X86_64;
        ehdr.e_version = 1;
        ehdr.e_entry = paddr;
        ehdr.e_phoff = 64;
        ehdr.e_ehsize = 64;
        ehdr.e_phentsize = 56;
        ehdr.e_phnum = 1;
        let phdr = Elf64_Phdr {
            p_type: PT_LOAD,
            p_flags: PF_X | 4,
            p_offset: 120,
            p_vaddr: paddr,
            p_paddr: paddr,
            p_filesz: code.len() as u64,
            p_memsz: code.len() as u64 + bss,
            p_align: 0x1000,
        };
        let mut image = ehdr.as_slice().to_vec();
        image.extend_from_slice(phdr.as_slice());
        image.extend_from_slice(code);
        image
    }

    const RAM_END: u64 = 16 << 20;

    #[test]
    fn loads_a_valid_image() {
        let image = tiny_elf(0x100000, &[0xf4, 0xeb, 0xfd], 0x1000);
        let kernel = parse(&image, RAM_END).unwrap();
        assert_eq!(kernel.entry, 0x100000);
        assert_eq!(kernel.end, 0x100000 + 3 + 0x1000);
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        load(&mem, &image, &kernel).unwrap();
        let mut code = [0u8; 4];
        mem.read_slice(&mut code, GuestAddress(0x100000)).unwrap();
        assert_eq!(code, [0xf4, 0xeb, 0xfd, 0]);
    }

    #[test]
    fn rejects_non_elf_and_wrong_machine() {
        assert!(matches!(
            parse(b"#!/bin/sh\necho hi\n", RAM_END),
            Err(Error::NotElf)
        ));
        assert!(matches!(parse(b"\x7fEL", RAM_END), Err(Error::NotElf)));
        let mut image = tiny_elf(0x100000, &[0xf4], 0);
        image[18] = 0x28; // EM_ARM
        assert!(matches!(parse(&image, RAM_END), Err(Error::WrongKind)));
        let mut image = tiny_elf(0x100000, &[0xf4], 0);
        image[EI_CLASS] = 1; // ELFCLASS32
        assert!(matches!(parse(&image, RAM_END), Err(Error::WrongKind)));
    }

    #[test]
    fn rejects_segments_outside_ram_or_in_the_first_mib() {
        let low = tiny_elf(0x6000, &[0xf4], 0);
        assert!(matches!(
            parse(&low, RAM_END),
            Err(Error::SegmentOutsideRam { .. })
        ));
        let big_bss = tiny_elf(0x100000, &[0xf4], RAM_END);
        assert!(matches!(
            parse(&big_bss, RAM_END),
            Err(Error::SegmentOutsideRam { .. })
        ));
        let wrap = tiny_elf(u64::MAX - 1, &[0xf4], 0);
        assert!(matches!(
            parse(&wrap, RAM_END),
            Err(Error::SegmentOutsideRam { .. })
        ));
    }

    proptest::proptest! {
        /// Random bytes, and a valid image with random bytes overwritten,
        /// never panic the parser; whatever it accepts lies inside RAM.
        #[test]
        fn parsing_never_panics(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            edits in proptest::collection::vec((0usize..140, proptest::prelude::any::<u8>()), 0..8),
        ) {
            let _ = parse(&noise, RAM_END);
            let mut image = tiny_elf(0x100000, &[0x90; 20], 64);
            for (at, byte) in edits {
                image[at] = byte;
            }
            if let Ok(kernel) = parse(&image, RAM_END) {
                for s in &kernel.segments {
                    proptest::prop_assert!(s.paddr >= KERNEL_MIN_ADDR);
                    proptest::prop_assert!(s.paddr + s.mem_size <= RAM_END);
                    proptest::prop_assert!(s.file_offset + s.file_size <= image.len());
                }
            }
        }
    }

    #[test]
    fn rejects_truncated_images_and_bad_entry() {
        let image = tiny_elf(0x100000, &[0xf4; 16], 0);
        assert!(matches!(
            parse(&image[..image.len() - 1], RAM_END),
            Err(Error::Truncated(_))
        ));
        assert!(matches!(
            parse(&image[..100], RAM_END),
            Err(Error::Truncated(_))
        ));
        let mut bad_entry = image.clone();
        bad_entry[24..32].copy_from_slice(&0x200000u64.to_le_bytes());
        assert!(matches!(
            parse(&bad_entry, RAM_END),
            Err(Error::BadEntry(0x200000))
        ));
        // p_filesz > p_memsz
        let mut lying = image;
        lying[64 + 40..64 + 48].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(
            parse(&lying, RAM_END),
            Err(Error::FileSizeExceedsMemSize(_))
        ));
    }
}
