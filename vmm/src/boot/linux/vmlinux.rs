//! The uncompressed Linux kernel (`vmlinux`, ELF64 x86-64): recognised by
//! its `Linux` ELF note, loaded by the project's checked ELF loader
//! (`boot/elf.rs`: class, machine, type, every segment inside RAM above
//! 1 MiB, the entry in an executable segment). `e_entry` is
//! `phys_startup_64`, the 64-bit entry; there is no setup header, so the
//! zero page gets one synthesised with the fields the kernel reads.

use linux_loader::elf::{Elf64_Ehdr, Elf64_Nhdr, Elf64_Phdr, PT_NOTE};
use linux_loader::loader::bootparam::setup_header;
use vm_memory::ByteValued;

use super::{Kernel, Piece, LOADER_UNDEFINED};
use crate::boot::elf;

/// The owner name of the notes the kernel's build puts in `.notes`
/// (`include/linux/build-salt.h`, `elfnote.h`), NUL included.
const LINUX_NOTE_OWNER: &[u8] = b"Linux\0";
/// PVH kernels also carry Xen notes; they are Linux too.
const XEN_NOTE_OWNER: &[u8] = b"Xen\0";

/// "HdrS", `boot_flag`, protocol version given to the kernel (2.15, the
/// one 6.1 speaks).
pub const HDRS_MAGIC: u32 = 0x5372_6448;
pub const BOOT_FLAG: u16 = 0xAA55;
pub const PROTOCOL_VERSION: u16 = 0x020f;
/// x86 `COMMAND_LINE_SIZE` (2048) without the NUL.
pub const CMDLINE_MAX: usize = 2047;
const _: () = assert!(CMDLINE_MAX + 1 == 2048);
/// `initrd_addr_max` of every 2.03+ kernel.
pub const INITRD_ADDR_MAX: u32 = 0x7fff_ffff;
/// `kernel_alignment` of x86-64 (`CONFIG_PHYSICAL_ALIGN` default).
pub const KERNEL_ALIGNMENT: u32 = 0x0020_0000;

/// Whether `image` is an ELF file with a `Linux` (or `Xen`) note.
pub fn is_linux_elf(image: &[u8]) -> bool {
    let Some(ehdr) = read::<Elf64_Ehdr>(image, 0) else {
        return false;
    };
    if ehdr.e_ident[..4] != *b"\x7fELF" {
        return false;
    }
    let Ok(phoff) = usize::try_from(ehdr.e_phoff) else {
        return false;
    };
    (0..usize::from(ehdr.e_phnum))
        .filter_map(|i| {
            let at = i.checked_mul(std::mem::size_of::<Elf64_Phdr>())?;
            read::<Elf64_Phdr>(image, phoff.checked_add(at)?)
        })
        .filter(|p| p.p_type == PT_NOTE)
        .any(|p| notes_name_linux(image, p.p_offset, p.p_filesz))
}

/// Walks the notes in `image[offset..offset + size]` (4-byte aligned
/// name and descriptor, as x86-64 kernels emit them).
fn notes_name_linux(image: &[u8], offset: u64, size: u64) -> bool {
    let (Ok(start), Ok(size)) = (usize::try_from(offset), usize::try_from(size)) else {
        return false;
    };
    let Some(notes) = start
        .checked_add(size)
        .and_then(|end| image.get(start..end))
    else {
        return false;
    };
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0usize;
    while let Some(nhdr) = read::<Elf64_Nhdr>(notes, at) {
        let name_at = at + std::mem::size_of::<Elf64_Nhdr>();
        let Ok(namesz) = usize::try_from(nhdr.n_namesz) else {
            return false;
        };
        let Ok(descsz) = usize::try_from(nhdr.n_descsz) else {
            return false;
        };
        let name = name_at
            .checked_add(namesz)
            .and_then(|end| notes.get(name_at..end));
        if matches!(name, Some(n) if n == LINUX_NOTE_OWNER || n == XEN_NOTE_OWNER) {
            return true;
        }
        let next = align4(namesz)
            .and_then(|n| name_at.checked_add(n))
            .and_then(|d| align4(descsz).and_then(|n| d.checked_add(n)));
        match next {
            Some(next) if next > at => at = next,
            _ => return false,
        }
    }
    false
}

/// Checks the vmlinux for a guest whose low RAM ends at `ram_end`.
pub fn parse(image: &[u8], ram_end: u64) -> Result<Kernel, elf::Error> {
    let elf = elf::parse(image, ram_end)?;
    let pieces = elf
        .segments
        .iter()
        .map(|s| Piece {
            addr: s.paddr,
            offset: s.file_offset,
            len: s.file_size,
        })
        .collect();
    Ok(Kernel {
        format: super::Format::Vmlinux,
        entry: elf.entry,
        pieces,
        end: elf.end,
        header: synthetic_header(),
        cmdline_max: CMDLINE_MAX,
        initrd: None,
        ram_bytes: 0,
    })
}

/// The setup header a vmlinux lacks, with what the kernel reads of it.
pub fn synthetic_header() -> setup_header {
    setup_header {
        boot_flag: BOOT_FLAG,
        header: HDRS_MAGIC,
        version: PROTOCOL_VERSION,
        type_of_loader: LOADER_UNDEFINED,
        initrd_addr_max: INITRD_ADDR_MAX,
        kernel_alignment: KERNEL_ALIGNMENT,
        cmdline_size: 2048,
        ..Default::default()
    }
}

/// A copy of the `T` at `offset`, if it lies inside `bytes`.
pub(super) fn read<T: ByteValued + Default>(bytes: &[u8], offset: usize) -> Option<T> {
    let src = bytes.get(offset..offset.checked_add(std::mem::size_of::<T>())?)?;
    let mut value = T::default();
    value.as_mut_slice().copy_from_slice(src);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny ELF with a PT_NOTE segment holding one note named `owner`.
    fn elf_with_note(owner: &[u8]) -> Vec<u8> {
        let mut image = crate::boot::elf::tests::tiny_elf(0x100_0000, &[0xf4], 0);
        let mut ehdr: Elf64_Ehdr = read(&image, 0).unwrap();
        let note_at = image.len();
        let mut note = Vec::new();
        let nhdr = Elf64_Nhdr {
            n_namesz: u32::try_from(owner.len()).unwrap(),
            n_descsz: 4,
            n_type: 0x100,
        };
        note.extend_from_slice(nhdr.as_slice());
        note.extend_from_slice(owner);
        note.resize((note.len() + 3) & !3, 0);
        note.extend_from_slice(&[1, 2, 3, 4]);
        let phdr_at = note_at + note.len();
        image.extend_from_slice(&note);
        let mut phdrs = Vec::new();
        for i in 0..usize::from(ehdr.e_phnum) {
            let at = usize::try_from(ehdr.e_phoff).unwrap() + i * 56;
            phdrs.push(read::<Elf64_Phdr>(&image, at).unwrap());
        }
        phdrs.push(Elf64_Phdr {
            p_type: PT_NOTE,
            p_offset: note_at as u64,
            p_filesz: note.len() as u64,
            p_memsz: note.len() as u64,
            ..Default::default()
        });
        for p in &phdrs {
            image.extend_from_slice(p.as_slice());
        }
        ehdr.e_phoff = phdr_at as u64;
        ehdr.e_phnum = u16::try_from(phdrs.len()).unwrap();
        image[..64].copy_from_slice(ehdr.as_slice());
        image
    }

    #[test]
    fn a_linux_note_makes_a_vmlinux() {
        assert!(is_linux_elf(&elf_with_note(b"Linux\0")));
        assert!(is_linux_elf(&elf_with_note(b"Xen\0")));
        assert!(!is_linux_elf(&elf_with_note(b"GNU\0")));
        let plain = crate::boot::elf::tests::tiny_elf(0x100_0000, &[0xf4], 0);
        assert!(!is_linux_elf(&plain));
    }

    #[test]
    fn a_vmlinux_parses_with_a_synthetic_header() {
        let image = elf_with_note(b"Linux\0");
        let k = parse(&image, 64 << 20).unwrap();
        assert_eq!(k.entry, 0x100_0000);
        assert_eq!(k.pieces.len(), 1);
        assert_eq!({ k.header.header }, HDRS_MAGIC);
        assert_eq!(k.cmdline_max, 2047);
    }

    #[test]
    fn truncated_notes_are_not_read_past_their_end() {
        let mut image = elf_with_note(b"Linux\0");
        // Claim a huge name size in the note: no panic, not Linux.
        let name = image.windows(6).position(|w| w == b"Linux\0").unwrap();
        let note_at = name - std::mem::size_of::<Elf64_Nhdr>();
        image[note_at..note_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!is_linux_elf(&image));
    }
}
