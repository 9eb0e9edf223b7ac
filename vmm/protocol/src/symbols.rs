//! Function symbols of an ELF64 guest image, to name a RIP in a failure
//! block (`wdm_spin+0x17`), and its data objects by name (a state block
//! the VMM reads). Only `.symtab` is read; every offset is bounds-checked,
//! so a stripped or odd image just names nothing.

use std::collections::BTreeMap;

/// Function symbols sorted by address: (start, size, name); data objects
/// by name: (address, size).
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    funcs: Vec<(u64, u64, String)>,
    objects: BTreeMap<String, (u64, u64)>,
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
const STT_OBJECT: u8 = 1;
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
        let mut objects = BTreeMap::new();
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
                let kind = sym[4] & 0xf;
                if kind != STT_FUNC && kind != STT_OBJECT {
                    continue;
                }
                let name_at = usize::try_from(u32_at(sym, 0, 0)?).ok()?;
                let value = u64_at(sym, 0, 8)?;
                let len = u64_at(sym, 0, 16)?;
                let name = strings.get(name_at..).and_then(|s| {
                    let end = s.iter().position(|&c| c == 0)?;
                    std::str::from_utf8(&s[..end]).ok()
                });
                match name.filter(|n| !n.is_empty()) {
                    Some(name) if kind == STT_FUNC => funcs.push((value, len, name.to_string())),
                    Some(name) => {
                        objects.insert(name.to_string(), (value, len));
                    }
                    None => {}
                }
            }
        }
        funcs.sort();
        Some(Symbols { funcs, objects })
    }

    /// The address and size of data object `name`.
    pub fn object(&self, name: &str) -> Option<(u64, u64)> {
        self.objects.get(name).copied()
    }

    /// The function holding `addr` and the offset into it.
    pub fn name(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, len, name) = &self.funcs[i];
        let off = addr - start;
        (off < (*len).max(1)).then_some((name.as_str(), off))
    }

    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty() && self.objects.is_empty()
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

    /// A data object of this test's executable, found by name.
    #[no_mangle]
    #[used]
    static DMALAB_SYMBOLS_PROBE: [u8; 24] = [7; 24];

    #[test]
    fn the_test_binary_names_its_own_data_objects() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let syms = Symbols::from_elf(&exe);
        let (_, size) = syms.object("DMALAB_SYMBOLS_PROBE").expect("the probe");
        assert_eq!(size, 24);
        assert_eq!(syms.object("no_such_object"), None);
        assert!(syms
            .name(0)
            .is_none_or(|(n, _)| n != "DMALAB_SYMBOLS_PROBE"));
    }
}
