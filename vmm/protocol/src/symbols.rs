//! Function symbols of an ELF64 guest image, to name a RIP in a failure
//! block (`wdm_spin+0x17`). Only `.symtab` is read; every offset is
//! bounds-checked, so a stripped or odd image just names nothing.

/// Function symbols sorted by address: (start, size, name).
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    funcs: Vec<(u64, u64, String)>,
}

/// `N` bytes of `b` at `base + off`, if they are all inside.
fn bytes<const N: usize>(b: &[u8], base: usize, off: usize) -> Option<[u8; N]> {
    let at = base.checked_add(off)?;
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(b: &[u8], base: usize, off: usize) -> Option<u16> {
    bytes(b, base, off).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], base: usize, off: usize) -> Option<u32> {
    bytes(b, base, off).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], base: usize, off: usize) -> Option<u64> {
    bytes(b, base, off).map(u64::from_le_bytes)
}

fn usize_at(b: &[u8], base: usize, off: usize) -> Option<usize> {
    usize::try_from(u64_at(b, base, off)?).ok()
}

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;

impl Symbols {
    /// The function symbols of `image`, or none if it is not an ELF64
    /// image with a symbol table.
    pub fn from_elf(image: &[u8]) -> Symbols {
        Symbols::parse(image).unwrap_or_default()
    }

    fn parse(b: &[u8]) -> Option<Symbols> {
        if b.get(..5)? != b"\x7fELF\x02" {
            return None;
        }
        let shoff = usize_at(b, 0, 0x28)?;
        let shentsize = usize::from(u16_at(b, 0, 0x3a)?);
        let shnum = usize::from(u16_at(b, 0, 0x3c)?);
        let section = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
        let mut funcs = Vec::new();
        for i in 0..shnum {
            let sh = section(i)?;
            if u32_at(b, sh, 4)? != SHT_SYMTAB {
                continue;
            }
            let (off, size) = (usize_at(b, sh, 24)?, usize_at(b, sh, 32)?);
            let strtab = section(usize::try_from(u32_at(b, sh, 40)?).ok()?)?;
            let (str_off, str_size) = (usize_at(b, strtab, 24)?, usize_at(b, strtab, 32)?);
            let strings = b.get(str_off..str_off.checked_add(str_size)?)?;
            let syms = b.get(off..off.checked_add(size)?)?;
            for sym in syms.chunks_exact(24) {
                if sym[4] & 0xf != STT_FUNC {
                    continue;
                }
                let name_at = usize::try_from(u32_at(sym, 0, 0)?).ok()?;
                let value = u64_at(sym, 0, 8)?;
                let len = u64_at(sym, 0, 16)?;
                let name = strings.get(name_at..).and_then(|s| {
                    let end = s.iter().position(|&c| c == 0)?;
                    std::str::from_utf8(&s[..end]).ok()
                });
                if let Some(name) = name.filter(|n| !n.is_empty()) {
                    funcs.push((value, len, name.to_string()));
                }
            }
        }
        funcs.sort();
        Some(Symbols { funcs })
    }

    /// The function holding `addr` and the offset into it.
    pub fn name(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, len, name) = &self.funcs[i];
        let off = addr - start;
        (off < (*len).max(1)).then_some((name.as_str(), off))
    }

    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_elf_names_nothing_and_does_not_panic() {
        assert!(Symbols::from_elf(b"").is_empty());
        assert!(Symbols::from_elf(b"\x7fELF\x02\x01\x01").is_empty());
        let mut junk = b"\x7fELF\x02".to_vec();
        junk.resize(0x40, 0xff);
        assert!(Symbols::from_elf(&junk).is_empty());
    }

    #[test]
    fn the_test_binary_names_its_own_functions() {
        // This test's own executable is an ELF64 image with a symbol table.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let syms = Symbols::from_elf(&exe);
        assert!(!syms.is_empty());
        let (start, len, name) = syms.funcs[syms.funcs.len() / 2].clone();
        assert_eq!(syms.name(start + len / 2), Some((name.as_str(), len / 2)));
    }
}
