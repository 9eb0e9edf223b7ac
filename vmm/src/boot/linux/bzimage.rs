//! The compressed Linux kernel (`bzImage`) by `Documentation/x86/boot.rst`:
//! the real-mode setup (`setup_sects` + 1 sectors) is skipped, the
//! protected-mode part is copied to 1 MiB, and the decompressor's 64-bit
//! entry, 0x200 past it, is entered. The image's setup header goes into the
//! zero page as the protocol asks. Protocol 2.12 or later with
//! `XLF_KERNEL_64` is required (every x86-64 kernel since 3.8).
//!
//! The decompressor moves itself to its aligned run address (at least
//! `pref_address`) and needs `init_size` bytes from there, so that end
//! must lie inside RAM.

use linux_loader::loader::bootparam::{setup_header, XLF_KERNEL_64};

use super::vmlinux::{read, BOOT_FLAG, HDRS_MAGIC};
use super::{Kernel, Piece, LOADER_UNDEFINED};
use crate::boot::layout::MIB;

/// Offset of the setup header in the image and in the zero page.
pub const HEADER_OFFSET: usize = 0x1f1;
/// Offset of "HdrS".
const MAGIC_OFFSET: usize = 0x202;
/// The header's last byte is at 0x202 + the byte at 0x201 (the jump).
const JUMP_LEN_OFFSET: usize = 0x201;
/// Where the protected-mode kernel is loaded (`code32_start` default).
pub const LOAD_ADDR: u64 = MIB;
const LOAD_ADDR_32: u32 = 0x10_0000;
const _: () = assert!(LOAD_ADDR_32 as u64 == LOAD_ADDR);
/// The 64-bit entry's offset from the load address.
pub const ENTRY_64_OFFSET: u64 = 0x200;
/// First protocol with the 64-bit entry point.
const MIN_VERSION: u16 = 0x020c;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the image is too short for a setup header")]
    Truncated,
    #[error("the setup header lacks its boot flag or 'HdrS' magic")]
    BadMagic,
    #[error(
        "boot protocol {0:#06x} is older than 2.12 or the kernel has no 64-bit entry \
         (XLF_KERNEL_64); use a 64-bit kernel from Linux 3.8 or later"
    )]
    No64BitEntry(u16),
    #[error("setup_sects ({0}) puts the kernel past the end of the image")]
    BadSetupSects(u8),
    #[error(
        "the kernel needs RAM up to {need:#x} to decompress; the guest's ends at \
         {ram_end:#x}: give it more --memory"
    )]
    TooLittleRam { need: u64, ram_end: u64 },
}

/// Whether `image` carries the setup header magic "HdrS".
pub fn has_magic(image: &[u8]) -> bool {
    image.get(MAGIC_OFFSET..MAGIC_OFFSET + 4) == Some(b"HdrS")
}

/// The setup header as the image states it: its bytes up to the length the
/// jump at 0x200 implies, the rest zero.
fn header(image: &[u8]) -> Result<setup_header, Error> {
    let full = std::mem::size_of::<setup_header>();
    let stated =
        usize::from(*image.get(JUMP_LEN_OFFSET).ok_or(Error::Truncated)?) + 0x202 - HEADER_OFFSET;
    let len = stated.min(full);
    let bytes = image
        .get(HEADER_OFFSET..HEADER_OFFSET + len)
        .ok_or(Error::Truncated)?;
    let mut raw = vec![0u8; full];
    raw[..len].copy_from_slice(bytes);
    read::<setup_header>(&raw, 0).ok_or(Error::Truncated)
}

/// Checks the bzImage for a guest whose low RAM ends at `ram_end`.
pub fn parse(image: &[u8], ram_end: u64) -> Result<Kernel, Error> {
    let mut hdr = header(image)?;
    if hdr.boot_flag != BOOT_FLAG || hdr.header != HDRS_MAGIC {
        return Err(Error::BadMagic);
    }
    if hdr.version < MIN_VERSION || hdr.xloadflags & XLF_KERNEL_64 == 0 {
        return Err(Error::No64BitEntry(hdr.version));
    }
    let sects = if hdr.setup_sects == 0 {
        4
    } else {
        hdr.setup_sects
    };
    let offset = (usize::from(sects) + 1) * 512;
    if offset >= image.len() {
        return Err(Error::BadSetupSects(hdr.setup_sects));
    }
    let len = image.len() - offset;
    let run_at = LOAD_ADDR.max(hdr.pref_address);
    let need = run_at
        .checked_add(u64::from(hdr.init_size))
        .map_or(u64::MAX, |end| end.max(LOAD_ADDR + len as u64));
    if need > ram_end {
        return Err(Error::TooLittleRam { need, ram_end });
    }
    hdr.type_of_loader = LOADER_UNDEFINED;
    hdr.code32_start = LOAD_ADDR_32;
    let cmdline_max = if hdr.cmdline_size == 0 {
        255
    } else {
        usize::try_from(hdr.cmdline_size - 1).unwrap_or(usize::MAX)
    };
    Ok(Kernel {
        format: super::Format::BzImage,
        entry: LOAD_ADDR + ENTRY_64_OFFSET,
        pieces: vec![Piece {
            addr: LOAD_ADDR,
            offset,
            len,
        }],
        end: need,
        header: hdr,
        cmdline_max,
        initrd: None,
        ram_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::ByteValued;

    /// A bzImage-shaped file: 4 setup sectors (setup_sects = 0 means 4),
    /// then `payload` bytes of protected-mode kernel.
    pub(crate) fn fake_bzimage(version: u16, xloadflags: u16, payload: usize) -> Vec<u8> {
        let mut image = vec![0u8; 5 * 512 + payload];
        let hdr = setup_header {
            boot_flag: BOOT_FLAG,
            jump: 0x66eb,
            header: HDRS_MAGIC,
            version,
            xloadflags,
            pref_address: 0x100_0000,
            init_size: 0x80_0000,
            cmdline_size: 2048,
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        image[HEADER_OFFSET..HEADER_OFFSET + std::mem::size_of::<setup_header>()]
            .copy_from_slice(hdr.as_slice());
        image
    }

    #[test]
    fn a_64_bit_bzimage_loads_at_1_mib() {
        let image = fake_bzimage(0x020f, XLF_KERNEL_64, 4096);
        assert!(has_magic(&image));
        let k = parse(&image, 64 * MIB).unwrap();
        assert_eq!(k.entry, 0x10_0200);
        assert_eq!(
            k.pieces,
            [Piece {
                addr: MIB,
                offset: 2560,
                len: 4096
            }]
        );
        assert_eq!(k.end, 0x180_0000);
        assert_eq!(k.cmdline_max, 2047);
        assert_eq!({ k.header.type_of_loader }, 0xff);
    }

    #[test]
    fn old_or_32_bit_kernels_and_short_ram_are_refused() {
        let old = fake_bzimage(0x020b, XLF_KERNEL_64, 16);
        assert!(matches!(
            parse(&old, 64 * MIB),
            Err(Error::No64BitEntry(0x020b))
        ));
        let no64 = fake_bzimage(0x020f, 0, 16);
        assert!(matches!(
            parse(&no64, 64 * MIB),
            Err(Error::No64BitEntry(_))
        ));
        let ok = fake_bzimage(0x020f, XLF_KERNEL_64, 16);
        assert!(matches!(
            parse(&ok, 16 * MIB),
            Err(Error::TooLittleRam { .. })
        ));
        assert!(matches!(
            parse(&ok[..0x200], 64 * MIB),
            Err(Error::Truncated)
        ));
        assert!(matches!(
            parse(&ok[..5 * 512], 64 * MIB),
            Err(Error::BadSetupSects(0))
        ));
    }
}
