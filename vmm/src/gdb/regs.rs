//! A parked vCPU's registers as gdb's `X86_64_SSE` register file and
//! back: the general-purpose registers, RIP, RFLAGS and the segment
//! selectors from KVM_GET_REGS / KVM_GET_SREGS; st0–st7, the x87 control
//! registers (fctrl, fstat, ftag, fiseg, fioff, foseg, fooff, fop),
//! xmm0–xmm15 and mxcsr from KVM_GET_FPU (the FXSAVE image KVM keeps).
//!
//! Two things do not map one to one, and are converted as gdb's own
//! `amd64_supply_fxsave` / `i387_collect_fxsave` do:
//! - the tag word: FXSAVE keeps one bit per physical register (valid or
//!   empty), gdb two (valid, zero, special, empty), worked out from the
//!   register's contents;
//! - FIP and FDP are 64 bits in 64-bit mode: gdb takes their low halves
//!   as fioff / fooff and their high halves as fiseg / foseg.

use gdbstub_arch::x86::reg::{X86_64CoreRegs, X87FpuInternalRegs, F80};
use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use kvm_ioctls::VcpuFd;

/// gdb's two-bit tag of an x87 register.
const TAG_VALID: u32 = 0;
const TAG_ZERO: u32 = 1;
const TAG_SPECIAL: u32 = 2;
const TAG_EMPTY: u32 = 3;

/// A parked vCPU's registers, read once per stop.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub regs: Box<kvm_regs>,
    pub sregs: Box<kvm_sregs>,
    pub fpu: Box<kvm_fpu>,
}

impl Snapshot {
    /// Reads them on the vCPU's own thread (`PauseGate::with_vcpu`).
    pub fn read(fd: &VcpuFd) -> Option<Self> {
        Some(Self {
            regs: Box::new(fd.get_regs().ok()?),
            sregs: Box::new(fd.get_sregs().ok()?),
            fpu: Box::new(fd.get_fpu().ok()?),
        })
    }

    /// gdb's view of them.
    pub fn to_gdb(&self) -> X86_64CoreRegs {
        let (r, s, f) = (&self.regs, &self.sregs, &self.fpu);
        let mut st = [F80::default(); 8];
        for (reg, raw) in st.iter_mut().zip(&f.fpr) {
            reg.copy_from_slice(&raw[..10]);
        }
        X86_64CoreRegs {
            regs: [
                r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
                r.r12, r.r13, r.r14, r.r15,
            ],
            rip: r.rip,
            eflags: low32(r.rflags),
            segments: gdbstub_arch::x86::reg::X86SegmentRegs {
                cs: u32::from(s.cs.selector),
                ss: u32::from(s.ss.selector),
                ds: u32::from(s.ds.selector),
                es: u32::from(s.es.selector),
                fs: u32::from(s.fs.selector),
                gs: u32::from(s.gs.selector),
            },
            st,
            fpu: X87FpuInternalRegs {
                fctrl: u32::from(f.fcw),
                fstat: u32::from(f.fsw),
                ftag: full_tag(f.ftwx, f.fsw, &f.fpr),
                fiseg: high32(f.last_ip),
                fioff: low32(f.last_ip),
                foseg: high32(f.last_dp),
                fooff: low32(f.last_dp),
                fop: u32::from(f.last_opcode),
            },
            xmm: f.xmm.map(u128::from_le_bytes),
            mxcsr: f.mxcsr,
        }
    }

    /// The general-purpose and FPU/SSE registers of `g` over these (the
    /// segment selectors stay: gdb cannot load a descriptor).
    pub fn with_gdb(&self, g: &X86_64CoreRegs) -> Self {
        let mut r = self.regs.clone();
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ] = g.regs;
        r.rip = g.rip;
        r.rflags = (r.rflags & !0xffff_ffff) | u64::from(g.eflags);
        let mut f = self.fpu.clone();
        for (raw, reg) in f.fpr.iter_mut().zip(&g.st) {
            raw[..10].copy_from_slice(reg);
        }
        f.fcw = low16(g.fpu.fctrl);
        f.fsw = low16(g.fpu.fstat);
        f.ftwx = abridged_tag(g.fpu.ftag);
        f.last_ip = u64::from(g.fpu.fiseg) << 32 | u64::from(g.fpu.fioff);
        f.last_dp = u64::from(g.fpu.foseg) << 32 | u64::from(g.fpu.fooff);
        f.last_opcode = low16(g.fpu.fop) & 0x7ff;
        f.xmm = g.xmm.map(u128::to_le_bytes);
        f.mxcsr = g.mxcsr;
        Self {
            regs: r,
            sregs: self.sregs.clone(),
            fpu: f,
        }
    }

    /// Writes the registers gdb may change on the vCPU's own thread.
    pub fn write(&self, fd: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
        fd.set_regs(&self.regs)?;
        fd.set_fpu(&self.fpu)
    }
}

fn low32(v: u64) -> u32 {
    u32::try_from(v & 0xffff_ffff).unwrap_or(0)
}

fn high32(v: u64) -> u32 {
    u32::try_from(v >> 32).unwrap_or(0)
}

fn low16(v: u32) -> u16 {
    u16::try_from(v & 0xffff).unwrap_or(0)
}

/// gdb's tag of a non-empty register from its 80-bit contents.
fn tag_of(raw: &[u8]) -> u32 {
    let integer = raw[7] & 0x80 != 0;
    let exponent = u16::from_le_bytes([raw[8], raw[9]]) & 0x7fff;
    let fraction_zero = raw[..7].iter().all(|&b| b == 0) && raw[7] & 0x7f == 0;
    match exponent {
        0x7fff => TAG_SPECIAL,
        0 if fraction_zero && !integer => TAG_ZERO,
        0 => TAG_SPECIAL,
        _ if integer => TAG_VALID,
        _ => TAG_SPECIAL,
    }
}

/// The full tag word from FXSAVE's abridged one: bit i of `abridged` is
/// physical register i, `fpr` is in stack order (ST(j) is physical
/// register (TOP + j) mod 8).
fn full_tag(abridged: u8, fsw: u16, fpr: &[[u8; 16]; 8]) -> u32 {
    let top = usize::from((fsw >> 11) & 7);
    (0..8).fold(0, |tag, physical: usize| {
        let t = if abridged & (1 << physical) == 0 {
            TAG_EMPTY
        } else {
            tag_of(&fpr[(physical + 8 - top) % 8])
        };
        tag | t << (2 * physical)
    })
}

/// FXSAVE's abridged tag from the full one: non-empty registers.
fn abridged_tag(full: u32) -> u8 {
    (0..8).fold(0, |bits, physical| {
        if (full >> (2 * physical)) & 3 == TAG_EMPTY {
            bits
        } else {
            bits | 1 << physical
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut fpu = kvm_fpu {
            fcw: 0x37f,
            fsw: 6 << 11, // TOP = 6
            mxcsr: 0x1f80,
            last_ip: 0x1234_5678_9abc_def0,
            last_dp: 0x0fed_cba9_8765_4321,
            last_opcode: 0x5d9,
            ..Default::default()
        };
        // ST(0) = physical 6 holds 1.0, ST(1) = physical 7 holds +0.0.
        fpu.fpr[0][..10].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
        fpu.ftwx = 1 << 6 | 1 << 7;
        fpu.xmm[3] = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeffu128.to_le_bytes();
        Snapshot {
            regs: Box::new(kvm_regs {
                rax: 1,
                rip: 0x10_0000,
                rflags: 0x246,
                ..Default::default()
            }),
            sregs: Box::default(),
            fpu: Box::new(fpu),
        }
    }

    #[test]
    fn x87_and_sse_registers_come_from_the_fpu_image() {
        let g = snapshot().to_gdb();
        assert_eq!((g.regs[0], g.rip, g.eflags), (1, 0x10_0000, 0x246));
        assert_eq!(g.fpu.fctrl, 0x37f);
        assert_eq!(g.mxcsr, 0x1f80);
        assert_eq!(g.st[0], [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
        // Physical 6 valid (1.0), 7 zero, the rest empty.
        assert_eq!(g.fpu.ftag, 0x4fff);
        assert_eq!((g.fpu.fiseg, g.fpu.fioff), (0x1234_5678, 0x9abc_def0));
        assert_eq!((g.fpu.foseg, g.fpu.fooff), (0x0fed_cba9, 0x8765_4321));
        assert_eq!(g.fpu.fop, 0x5d9);
        assert_eq!(g.xmm[3], 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
    }

    #[test]
    fn what_gdb_writes_comes_back_unchanged() {
        let old = snapshot();
        let mut g = old.to_gdb();
        g.regs[15] = 0xdead;
        g.xmm[15] = u128::MAX - 1;
        g.mxcsr = 0x9fc0;
        g.fpu.ftag = 0xffff; // all empty
        let new = old.with_gdb(&g);
        assert_eq!(new.regs.r15, 0xdead);
        assert_eq!(new.fpu.ftwx, 0);
        assert_eq!(new.to_gdb(), g);
        // A full tag word that FXSAVE can hold survives the round trip.
        assert_eq!(abridged_tag(0x4fff), 1 << 6 | 1 << 7);
    }

    #[test]
    fn tags_follow_the_register_contents() {
        let zero = [0u8; 16];
        let mut nan = [0u8; 16];
        nan[8] = 0xff;
        nan[9] = 0x7f;
        let mut denormal = [0u8; 16];
        denormal[0] = 1;
        assert_eq!(tag_of(&zero), TAG_ZERO);
        assert_eq!(tag_of(&nan), TAG_SPECIAL);
        assert_eq!(tag_of(&denormal), TAG_SPECIAL);
    }
}
