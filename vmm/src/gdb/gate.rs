//! The debugger's hold on the vCPUs: where a vCPU thread parks while gdb
//! has the VM stopped, and what it does there.
//!
//! A vCPU parks in two ways: the gdb thread asks every vCPU to stop
//! (`DebugGate::halt` sets the flag and kicks each thread out of KVM_RUN;
//! the loop sees the flag before its next KVM_RUN), or KVM reports a debug
//! exit (a hardware breakpoint or the end of a single step). Parked, the
//! thread sends its registers to the gdb thread (`Event::Parked`) and
//! serves `Command`s until told to resume; it never re-enters KVM_RUN
//! meanwhile, so the guest does not move. The vCPU fd stays on its own
//! thread: register writes and KVM_SET_GUEST_DEBUG happen there.
//!
//! Stopped time is stolen time. The guest's verifier measures ISRs and DPCs
//! with the TSC minus KVM steal time (`guest-driver/kernel/steal.h`); the
//! TSC runs on while a vCPU is parked. On resume the thread adds the span
//! it was parked to its `kvm_steal_time.steal` (the guest-physical address
//! is in MSR_KVM_STEAL_TIME). KVM adds its own run delay to that field on
//! the next entry (read, add, write back: `record_steal_time`), and only on
//! this thread, which is not in KVM_RUN now: the two never race.
//!
//! Resuming over a hardware breakpoint: with RFLAGS.RF this platform's
//! emulator fires the breakpoint again, so a `continue` from a breakpoint's
//! address first single-steps with that breakpoint left out, then arms
//! them all (`StepOver`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvm_bindings::{
    kvm_debug_exit_arch, kvm_guest_debug, kvm_regs, kvm_sregs, Msrs, KVM_GUESTDBG_BLOCKIRQ,
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP,
};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::devices::bus::lock;
use crate::vcpu_kick;

/// The guest-physical address of a vCPU's `kvm_steal_time` (bit 0: on).
const MSR_KVM_STEAL_TIME: u32 = 0x4b56_4d03;

/// How often a parked vCPU looks at the VM's stop flag (timeout, exit).
const PARKED_POLL: Duration = Duration::from_millis(50);

/// DR6 bit of a completed single step.
const DR6_BS: u64 = 1 << 14;

/// Hardware breakpoints: DR0–DR3.
pub const HW_BREAKPOINTS: usize = 4;

/// What the gdb thread wants armed on a vCPU: breakpoint addresses
/// (execution, 1 byte, DR0–DR3) and single-step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestDebug {
    pub breakpoints: [Option<u64>; HW_BREAKPOINTS],
    pub step: bool,
}

impl GuestDebug {
    fn to_kvm(self) -> kvm_guest_debug {
        let mut dbg = kvm_guest_debug::default();
        for (i, addr) in self.breakpoints.iter().enumerate() {
            if let Some(addr) = addr {
                dbg.arch.debugreg[i] = *addr;
                // Gi (global enable), R/W 00 (execution), LEN 00.
                dbg.arch.debugreg[7] |= 2 << (i * 2);
            }
        }
        if dbg.arch.debugreg[7] != 0 {
            dbg.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
        }
        if self.step {
            // No interrupt is injected during the step: otherwise the
            // guest's handler would run with the trap flag KVM set, push it
            // and get a #DB of its own after iretq.
            dbg.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
        }
        dbg
    }

    fn hits(&self, rip: u64) -> bool {
        self.breakpoints.contains(&Some(rip))
    }

    /// The same, without the breakpoint at `rip`, single-stepping.
    fn stepping_over(mut self, rip: u64) -> Self {
        for slot in &mut self.breakpoints {
            if *slot == Some(rip) {
                *slot = None;
            }
        }
        self.step = true;
        self
    }
}

/// Why a vCPU parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The gdb thread asked every vCPU to stop.
    Halted,
    /// A single step ended.
    Stepped,
    /// A hardware breakpoint fired.
    Breakpoint,
}

/// From the vCPU threads to the gdb thread.
#[derive(Debug)]
pub enum Event {
    Parked {
        index: u8,
        cause: Cause,
        regs: Box<kvm_regs>,
        sregs: Box<kvm_sregs>,
    },
    /// The vCPU thread ended (the guest exited, or a failure).
    Ended { index: u8 },
    /// The VM is over with this exit status (from the main thread).
    Exited(u8),
}

/// From the gdb thread to one parked vCPU.
#[derive(Debug)]
pub enum Command {
    SetRegs(Box<kvm_regs>),
    /// Re-enter the guest with this debug state.
    Resume(GuestDebug),
}

/// Shared by the gdb thread and every vCPU thread.
#[derive(Debug)]
pub struct DebugGate {
    halt: AtomicBool,
    /// The pthread of each vCPU while it runs (None once it has ended),
    /// under a lock so that a kick never reaches an ended thread.
    threads: Mutex<Vec<Option<libc::pthread_t>>>,
    /// Total nanoseconds the VM stood stopped (closed spans), and the start
    /// of the current stop, if stopped.
    stopped_ns: AtomicU64,
    stopped_since: Mutex<Option<Instant>>,
}

impl DebugGate {
    /// A gate for `vcpus` vCPUs, halted from the start if `halted`
    /// (`--gdb-wait`: no guest instruction before gdb says so).
    pub fn new(vcpus: usize, halted: bool) -> Self {
        Self {
            halt: AtomicBool::new(halted),
            threads: Mutex::new(vec![None; vcpus]),
            stopped_ns: AtomicU64::new(0),
            stopped_since: Mutex::new(halted.then(Instant::now)),
        }
    }

    pub fn halted(&self) -> bool {
        self.halt.load(Ordering::Acquire)
    }

    /// Asks every running vCPU to park: sets the flag and kicks each
    /// thread out of KVM_RUN. Returns how many vCPU threads still run.
    pub fn halt(&self) -> usize {
        self.halt.store(true, Ordering::Release);
        lock(&self.stopped_since).get_or_insert_with(Instant::now);
        let threads = lock(&self.threads);
        for thread in threads.iter().flatten() {
            // SAFETY: the pthread is live: its vCPU thread clears the entry
            // (under this lock) before it ends.
            let rc = unsafe { libc::pthread_kill(*thread, vcpu_kick::signal()) };
            if rc != 0 {
                log::warn!("gdb: cannot kick a vCPU thread (error {rc})");
            }
        }
        threads.iter().flatten().count()
    }

    /// Lets parked vCPUs leave once resumed; closes the stopped span.
    pub fn release(&self) {
        self.halt.store(false, Ordering::Release);
        if let Some(since) = lock(&self.stopped_since).take() {
            let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stopped_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }

    /// How long the VM has stood stopped so far (the run's timeout does not
    /// count it).
    pub fn stopped(&self) -> Duration {
        let current = lock(&self.stopped_since).map_or(Duration::ZERO, |s| s.elapsed());
        Duration::from_nanos(self.stopped_ns.load(Ordering::Relaxed)) + current
    }

    fn enter(&self, index: u8) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Some(slot) = lock(&self.threads).get_mut(usize::from(index)) {
            *slot = Some(me);
        }
    }

    fn leave(&self, index: u8) {
        if let Some(slot) = lock(&self.threads).get_mut(usize::from(index)) {
            *slot = None;
        }
    }
}

/// One vCPU's end of the gate.
#[derive(Debug)]
pub struct VcpuDebug {
    pub gate: Arc<DebugGate>,
    pub commands: Receiver<Command>,
    pub events: Sender<Event>,
    /// What gdb asked for, and while stepping over a breakpoint the state
    /// to arm after the step.
    armed: GuestDebug,
    step_over: Option<GuestDebug>,
}

impl VcpuDebug {
    pub fn new(gate: Arc<DebugGate>, commands: Receiver<Command>, events: Sender<Event>) -> Self {
        Self {
            gate,
            commands,
            events,
            armed: GuestDebug::default(),
            step_over: None,
        }
    }

    /// Called once on the vCPU thread before its first KVM_RUN.
    pub fn started(&self, index: u8) {
        self.gate.enter(index);
    }

    /// Called once when the vCPU thread ends.
    pub fn ended(&self, index: u8) {
        self.gate.leave(index);
        let _ = self.events.send(Event::Ended { index });
    }

    /// Before each KVM_RUN: park if the gdb thread asked for a stop.
    pub fn check(&mut self, index: u8, fd: &VcpuFd, memory: &GuestMemoryMmap, stop: &AtomicBool) {
        if self.gate.halted() {
            self.park(index, Cause::Halted, fd, memory, stop);
        }
    }

    /// A KVM_EXIT_DEBUG: finish a step-over, or park.
    pub fn debug_exit(
        &mut self,
        index: u8,
        exit: &kvm_debug_exit_arch,
        fd: &VcpuFd,
        memory: &GuestMemoryMmap,
        stop: &AtomicBool,
    ) {
        if let Some(full) = self.step_over.take() {
            // The step past a breakpoint ended: arm them all and go on,
            // unless the step itself is what gdb asked for or landed on one.
            if !full.step && !full.hits(exit.pc) {
                self.arm(fd, full);
                return;
            }
            self.armed = full;
        }
        let cause = if exit.dr6 & DR6_BS != 0 || self.armed.step {
            Cause::Stepped
        } else {
            Cause::Breakpoint
        };
        self.park(index, cause, fd, memory, stop);
    }

    fn park(
        &mut self,
        index: u8,
        cause: Cause,
        fd: &VcpuFd,
        memory: &GuestMemoryMmap,
        stop: &AtomicBool,
    ) {
        let parked_at = Instant::now();
        if !self.send_parked(index, cause, fd) {
            return;
        }
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            match self.commands.recv_timeout(PARKED_POLL) {
                Ok(Command::SetRegs(regs)) => {
                    if let Err(e) = fd.set_regs(&regs) {
                        log::warn!("gdb: cannot set vCPU {index}'s registers: {e}");
                    }
                }
                Ok(Command::Resume(debug)) => {
                    credit_steal(fd, memory, parked_at.elapsed());
                    self.resume(fd, debug);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // The gdb thread is gone: run free.
                    credit_steal(fd, memory, parked_at.elapsed());
                    self.resume(fd, GuestDebug::default());
                    return;
                }
            }
        }
    }

    fn send_parked(&self, index: u8, cause: Cause, fd: &VcpuFd) -> bool {
        let (regs, sregs) = match (fd.get_regs(), fd.get_sregs()) {
            (Ok(r), Ok(s)) => (r, s),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("gdb: cannot read vCPU {index}'s registers: {e}");
                (kvm_regs::default(), kvm_sregs::default())
            }
        };
        self.events
            .send(Event::Parked {
                index,
                cause,
                regs: Box::new(regs),
                sregs: Box::new(sregs),
            })
            .is_ok()
    }

    fn resume(&mut self, fd: &VcpuFd, debug: GuestDebug) {
        self.armed = debug;
        self.step_over = None;
        let rip = fd.get_regs().map(|r| r.rip).unwrap_or(0);
        if debug.hits(rip) {
            self.step_over = Some(debug);
            self.arm(fd, debug.stepping_over(rip));
        } else {
            self.arm(fd, debug);
        }
    }

    fn arm(&self, fd: &VcpuFd, debug: GuestDebug) {
        let mut kvm = debug.to_kvm();
        if fd.set_guest_debug(&kvm).is_ok() {
            return;
        }
        // A KVM without KVM_GUESTDBG_BLOCKIRQ (before Linux 5.15).
        kvm.control &= !KVM_GUESTDBG_BLOCKIRQ;
        if let Err(e) = fd.set_guest_debug(&kvm) {
            log::warn!("gdb: KVM_SET_GUEST_DEBUG failed: {e}");
        }
    }
}

/// Adds `span` to the vCPU's KVM steal time, if the guest enabled it.
fn credit_steal(fd: &VcpuFd, memory: &GuestMemoryMmap, span: Duration) {
    let Ok(mut msrs) = Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: MSR_KVM_STEAL_TIME,
        ..Default::default()
    }]) else {
        return;
    };
    if !matches!(fd.get_msrs(&mut msrs), Ok(1)) {
        return;
    }
    let msr = msrs.as_slice()[0].data;
    if msr & 1 == 0 {
        return;
    }
    let base = GuestAddress(msr & !0x3f);
    let ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    let add = |addr: GuestAddress| -> Option<()> {
        let steal: u64 = memory.read_obj(addr).ok()?;
        memory.write_obj(steal.wrapping_add(ns), addr).ok()
    };
    // kvm_steal_time: steal (u64) at 0, version (u32) at 8. Bumping the
    // version by two keeps it even and tells cross-CPU readers it changed.
    if add(base).is_some() {
        if let Ok(version) = memory.read_obj::<u32>(GuestAddress(base.0 + 8)) {
            let _ = memory.write_obj(version.wrapping_add(2), GuestAddress(base.0 + 8));
        }
    } else {
        log::warn!("gdb: steal time area at {:#x} is not RAM", base.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoints_fill_dr0_to_dr3_with_global_enables() {
        let debug = GuestDebug {
            breakpoints: [Some(0x1000), None, Some(0x3000), None],
            step: false,
        };
        let kvm = debug.to_kvm();
        assert_eq!(kvm.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
        assert_eq!(kvm.arch.debugreg[0], 0x1000);
        assert_eq!(kvm.arch.debugreg[2], 0x3000);
        assert_eq!(kvm.arch.debugreg[7], 0b10 | (0b10 << 4));
    }

    #[test]
    fn nothing_armed_is_debug_off_and_step_over_drops_only_that_breakpoint() {
        assert_eq!(GuestDebug::default().to_kvm().control, 0);
        let debug = GuestDebug {
            breakpoints: [Some(0x1000), Some(0x2000), None, None],
            step: false,
        };
        let over = debug.stepping_over(0x1000);
        assert_eq!(over.breakpoints, [None, Some(0x2000), None, None]);
        assert!(over.step);
        assert_eq!(
            over.to_kvm().control,
            KVM_GUESTDBG_ENABLE
                | KVM_GUESTDBG_USE_HW_BP
                | KVM_GUESTDBG_SINGLESTEP
                | KVM_GUESTDBG_BLOCKIRQ
        );
    }

    #[test]
    fn stopped_time_counts_open_and_closed_spans() {
        let gate = DebugGate::new(1, true);
        assert!(gate.halted());
        std::thread::sleep(Duration::from_millis(5));
        gate.release();
        assert!(!gate.halted());
        let closed = gate.stopped();
        assert!(closed >= Duration::from_millis(5), "{closed:?}");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(gate.stopped(), closed);
    }
}
