//! Register dump of a vCPU that ended badly (triple fault, KVM internal
//! error, timeout): RIP, RSP, RFLAGS, CR0/2/3/4, EFER, CS/SS selectors and
//! CPL, the general registers, and the instruction bytes at RIP when the
//! guest's page tables map it to RAM (KVM_TRANSLATE, then a bounded read of
//! guest memory). Taken on the vCPU thread, which owns the fd; printed by
//! the main thread.

use std::fmt;

use kvm_bindings::{kvm_regs, kvm_sregs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use dmalab_protocol::symbols::Symbols;

/// Longest x86 instruction.
const CODE_BYTES: usize = 15;

#[derive(Debug, Clone)]
pub struct RegDump {
    pub index: u8,
    pub regs: Result<kvm_regs, String>,
    pub sregs: Result<kvm_sregs, String>,
    /// Bytes at RIP, or why they are unavailable.
    pub code: Result<Vec<u8>, String>,
    /// Instruction bytes KVM reported with an emulation failure.
    pub kvm_insn: Option<Vec<u8>>,
    /// RIP as `function+offset` in the guest ELF's symbols, once named.
    pub symbol: Option<String>,
}

impl RegDump {
    pub fn capture(index: u8, vcpu: &VcpuFd, memory: &GuestMemoryMmap) -> Self {
        let regs = vcpu.get_regs().map_err(|e| e.to_string());
        let sregs = vcpu.get_sregs().map_err(|e| e.to_string());
        let code = match &regs {
            Ok(r) => code_at(vcpu, memory, r.rip),
            Err(_) => Err("no RIP".to_string()),
        };
        Self {
            index,
            regs,
            sregs,
            code,
            kvm_insn: None,
            symbol: None,
        }
    }

    /// Names RIP from `symbols` (printed after RFLAGS as `in name+0x..`).
    pub fn name_rip(&mut self, symbols: &Symbols) {
        if let Ok(r) = &self.regs {
            self.symbol = symbols.name(r.rip).map(|(n, off)| format!("{n}+{off:#x}"));
        }
    }
}

fn code_at(vcpu: &VcpuFd, memory: &GuestMemoryMmap, rip: u64) -> Result<Vec<u8>, String> {
    let t = vcpu
        .translate_gva(rip)
        .map_err(|e| format!("KVM_TRANSLATE failed: {e}"))?;
    if t.valid == 0 {
        return Err("RIP is not mapped".to_string());
    }
    let mut buf = [0u8; CODE_BYTES];
    // Stop at the end of the page: the next one may be mapped elsewhere.
    let in_page = usize::try_from(4096 - (rip & 0xfff)).unwrap_or(CODE_BYTES);
    let want = CODE_BYTES.min(in_page);
    match memory.read(&mut buf[..want], GuestAddress(t.physical_address)) {
        Ok(n) if n > 0 => Ok(buf[..n].to_vec()),
        _ => Err(format!("{:#x} is not RAM", t.physical_address)),
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for RegDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "vCPU {} registers:", self.index)?;
        match &self.regs {
            Ok(r) => {
                write!(
                    f,
                    "  RIP {:#018x}  RSP {:#018x}  RFLAGS {:#010x}",
                    r.rip, r.rsp, r.rflags
                )?;
                match &self.symbol {
                    Some(at) => writeln!(f, "  in {at}")?,
                    None => writeln!(f)?,
                }
                writeln!(
                    f,
                    "  RAX {:#018x}  RBX {:#018x}  RCX {:#018x}  RDX {:#018x}",
                    r.rax, r.rbx, r.rcx, r.rdx
                )?;
                writeln!(
                    f,
                    "  RSI {:#018x}  RDI {:#018x}  RBP {:#018x}  R8  {:#018x}",
                    r.rsi, r.rdi, r.rbp, r.r8
                )?;
                writeln!(
                    f,
                    "  R9  {:#018x}  R10 {:#018x}  R11 {:#018x}  R12 {:#018x}",
                    r.r9, r.r10, r.r11, r.r12
                )?;
                writeln!(
                    f,
                    "  R13 {:#018x}  R14 {:#018x}  R15 {:#018x}",
                    r.r13, r.r14, r.r15
                )?;
            }
            Err(e) => writeln!(f, "  general registers unavailable: {e}")?,
        }
        match &self.sregs {
            Ok(s) => {
                writeln!(
                    f,
                    "  CR0 {:#018x}  CR2 {:#018x}  CR3 {:#018x}  CR4 {:#018x}",
                    s.cr0, s.cr2, s.cr3, s.cr4
                )?;
                writeln!(
                    f,
                    "  EFER {:#x}  CS {:#06x}  SS {:#06x}  CPL {}  IDTR {:#x}/{:#x}",
                    s.efer,
                    s.cs.selector,
                    s.ss.selector,
                    s.cs.selector & 3,
                    s.idt.base,
                    s.idt.limit
                )?;
            }
            Err(e) => writeln!(f, "  system registers unavailable: {e}")?,
        }
        if let Some(insn) = &self.kvm_insn {
            writeln!(
                f,
                "  instruction KVM could not emulate: {}",
                hex_bytes(insn)
            )?;
        }
        match &self.code {
            Ok(bytes) => writeln!(f, "  bytes at RIP: {}", hex_bytes(bytes)),
            Err(why) => writeln!(f, "  bytes at RIP: unavailable ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_names_every_required_register() {
        let dump = RegDump {
            index: 1,
            regs: Ok(kvm_regs {
                rip: 0x100123,
                rsp: 0x7c000,
                rflags: 0x2,
                rax: 0xdead,
                ..Default::default()
            }),
            sregs: Ok(kvm_sregs {
                cr0: 0x8001_0033,
                cr2: 0x1000,
                cr3: 0x10000,
                cr4: 0x20,
                efer: 0x500,
                ..Default::default()
            }),
            code: Ok(vec![0x0f, 0x0b]),
            kvm_insn: Some(vec![0xcc]),
            symbol: Some("wdm_spin+0x17".into()),
        };
        let text = dump.to_string();
        for needle in [
            "vCPU 1 registers:",
            "RIP 0x0000000000100123",
            "RSP 0x000000000007c000",
            "RFLAGS 0x00000002  in wdm_spin+0x17\n",
            "RAX 0x000000000000dead",
            "CR0 0x0000000080010033",
            "CR2 0x0000000000001000",
            "CR3 0x0000000000010000",
            "CR4 0x0000000000000020",
            "EFER 0x500",
            "CS 0x0000",
            "SS 0x0000",
            "R15 ",
            "bytes at RIP: 0f 0b",
            "could not emulate: cc",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn unavailable_parts_are_said_so() {
        let dump = RegDump {
            index: 0,
            regs: Err("EBADF".into()),
            sregs: Err("EBADF".into()),
            code: Err("no RIP".into()),
            kvm_insn: None,
            symbol: None,
        };
        let text = dump.to_string();
        assert!(text.contains("general registers unavailable: EBADF"));
        assert!(text.contains("bytes at RIP: unavailable (no RIP)"));
    }
}
