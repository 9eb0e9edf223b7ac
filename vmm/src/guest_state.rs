//! Where the guest's driver was when a run timed out: each CPU's IRQL and
//! the driver routine it was running, and the IRPs outstanding, read from
//! the dmalab guest's state block (`dmalab_guest_state`, described in
//! `guest-driver/kernel/wdm/state.c`) through the guest ELF's symbols.
//!
//! The block and everything it points to are guest memory: every read is
//! bounds-checked against guest RAM, a routine name is at most
//! `NAME_MAX` printable ASCII bytes, and anything that does not check out
//! (another guest, a Linux kernel, a wrong magic, a hostile block) gives
//! no line rather than a wrong one. The guest's addresses are physical:
//! the dmalab guest maps its kernel one to one.

use std::fmt;

use dmalab_protocol::symbols::Symbols;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// The block's name in the guest ELF.
pub const SYMBOL: &str = "dmalab_guest_state";
const MAGIC: u32 = 0x5347_4d44; // "DMGS"
const VERSION: u32 = 1;
const BLOCK_LEN: usize = 48;
/// The longest routine name read.
const NAME_MAX: usize = 64;
/// The most CPUs described (the guest's MAX_CPUS).
const CPUS_MAX: u32 = 64;

/// One CPU's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuState {
    pub irql: u8,
    /// The driver routine running (`DpcForIsr`, `StartIo`, …), if any.
    pub routine: Option<String>,
}

/// The driver's state at the stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestState {
    pub irps_outstanding: u64,
    pub cpus: Vec<CpuState>,
}

/// The state of a guest whose ELF has the block, on its `vcpus` CPUs.
pub fn read<M: GuestMemory>(mem: &M, symbols: &Symbols, vcpus: usize) -> Option<GuestState> {
    let (at, size) = symbols.object(SYMBOL)?;
    if usize::try_from(size).ok()? != BLOCK_LEN {
        return None;
    }
    read_at(mem, GuestAddress(at), vcpus)
}

fn u32_of(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_of(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The state described by the block at `at`.
pub fn read_at<M: GuestMemory>(mem: &M, at: GuestAddress, vcpus: usize) -> Option<GuestState> {
    let mut b = [0u8; BLOCK_LEN];
    mem.read_slice(&mut b, at).ok()?;
    if u32_of(&b, 0) != MAGIC || u32_of(&b, 4) != VERSION {
        return None;
    }
    let (cpus, stride) = (u32_of(&b, 8).min(CPUS_MAX), u64::from(u32_of(&b, 12)));
    let (irql_off, routine_off) = (u64::from(u32_of(&b, 16)), u64::from(u32_of(&b, 20)));
    let array = u64_of(&b, 24);
    let irps_outstanding = mem.read_obj::<u64>(GuestAddress(u64_of(&b, 32))).ok()?;
    let online = mem.read_obj::<u32>(GuestAddress(u64_of(&b, 40))).ok()?;
    let count = u64::from(cpus.min(online)).min(u64::try_from(vcpus).ok()?);
    let mut states = Vec::new();
    for i in 0..count {
        let cpu = array.checked_add(i.checked_mul(stride)?)?;
        let irql = mem
            .read_obj::<u8>(GuestAddress(cpu.checked_add(irql_off)?))
            .ok()?;
        let routine = if routine_off == 0 {
            None
        } else {
            let ptr = mem
                .read_obj::<u64>(GuestAddress(cpu.checked_add(routine_off)?))
                .ok()?;
            (ptr != 0).then(|| c_string(mem, ptr))
        };
        states.push(CpuState { irql, routine });
    }
    Some(GuestState {
        irps_outstanding,
        cpus: states,
    })
}

/// The NUL-terminated ASCII string at `ptr` (at most `NAME_MAX` bytes),
/// or `?` if it is not one.
fn c_string<M: GuestMemory>(mem: &M, ptr: u64) -> String {
    let mut name = String::new();
    for i in 0..NAME_MAX as u64 {
        let Some(addr) = ptr.checked_add(i) else {
            return "?".into();
        };
        match mem.read_obj::<u8>(GuestAddress(addr)) {
            Ok(0) if !name.is_empty() => return name,
            Ok(c) if c.is_ascii_graphic() => name.push(char::from(c)),
            _ => return "?".into(),
        }
    }
    "?".into()
}

/// An IRQL's name in the WDM's terms.
fn irql_name(irql: u8) -> String {
    match irql {
        0 => "PASSIVE_LEVEL".into(),
        1 => "APC_LEVEL".into(),
        2 => "DISPATCH_LEVEL".into(),
        15 => "HIGH_LEVEL".into(),
        n => format!("DIRQL {n}"),
    }
}

impl fmt::Display for GuestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let irps = self.irps_outstanding;
        write!(
            f,
            "{irps} IRP{} outstanding",
            if irps == 1 { "" } else { "s" }
        )?;
        for (i, cpu) in self.cpus.iter().enumerate() {
            write!(f, "; cpu{i} at {}", irql_name(cpu.irql))?;
            if let Some(r) = &cpu.routine {
                write!(f, " in {r}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    const BLOCK: u64 = 0x1000;
    const CPUS: u64 = 0x2000;
    const IRPS: u64 = 0x3000;
    const ONLINE: u64 = 0x3008;
    const NAMES: u64 = 0x4000;
    const STRIDE: u32 = 64;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    fn block(mem: &GuestMemoryMmap, cpus: u32, stride: u32, array: u64) {
        let mut b = Vec::new();
        for v in [MAGIC, VERSION, cpus, stride, 0, 56] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [array, IRPS, ONLINE] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        mem.write_slice(&b, GuestAddress(BLOCK)).unwrap();
    }

    /// Two CPUs online: one at DISPATCH_LEVEL in `DpcForIsr`, one at
    /// PASSIVE_LEVEL in nothing; three IRPs outstanding.
    fn guest() -> GuestMemoryMmap {
        let mem = memory();
        block(&mem, 16, STRIDE, CPUS);
        mem.write_obj(3u64, GuestAddress(IRPS)).unwrap();
        mem.write_obj(2u32, GuestAddress(ONLINE)).unwrap();
        mem.write_slice(b"DpcForIsr\0", GuestAddress(NAMES))
            .unwrap();
        mem.write_obj(2u8, GuestAddress(CPUS)).unwrap();
        mem.write_obj(NAMES, GuestAddress(CPUS + 56)).unwrap();
        mem
    }

    #[test]
    fn the_block_says_where_each_cpu_was() {
        let mem = guest();
        let state = read_at(&mem, GuestAddress(BLOCK), 4).expect("a block");
        assert_eq!(
            state.to_string(),
            "3 IRPs outstanding; cpu0 at DISPATCH_LEVEL in DpcForIsr; cpu1 at PASSIVE_LEVEL"
        );
        // Only the vCPUs the VM has.
        let one = read_at(&mem, GuestAddress(BLOCK), 1).unwrap();
        assert_eq!(one.cpus.len(), 1);
    }

    #[test]
    fn a_hostile_or_foreign_block_gives_nothing_or_question_marks() {
        let mem = guest();
        // Not a block.
        assert_eq!(read_at(&mem, GuestAddress(NAMES), 2), None);
        // Outside RAM.
        assert_eq!(read_at(&mem, GuestAddress(0xffff_fff0), 2), None);
        // A stride that leaves RAM, a huge CPU count: bounded, no panic.
        block(&mem, u32::MAX, u32::MAX, CPUS);
        mem.write_obj(u32::MAX, GuestAddress(ONLINE)).unwrap();
        assert_eq!(read_at(&mem, GuestAddress(BLOCK), 64), None);
        // A routine pointer at junk or at an unterminated name.
        let mem = guest();
        mem.write_obj(u64::MAX - 2, GuestAddress(CPUS + 56))
            .unwrap();
        let state = read_at(&mem, GuestAddress(BLOCK), 2).unwrap();
        assert_eq!(state.cpus[0].routine.as_deref(), Some("?"));
        mem.write_slice(&[b'A'; 80], GuestAddress(NAMES)).unwrap();
        mem.write_obj(NAMES, GuestAddress(CPUS + 56)).unwrap();
        let state = read_at(&mem, GuestAddress(BLOCK), 2).unwrap();
        assert_eq!(state.cpus[0].routine.as_deref(), Some("?"));
    }
}
