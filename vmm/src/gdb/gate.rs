//! The debugger's side of the vCPUs: the debug state it arms on a vCPU
//! (DR0–DR3, single-step) and what a vCPU thread does on a debug exit.
//!
//! Stopping the VM is the VM-wide pause gate's job (`pause.rs`: every vCPU
//! parked, device time frozen, the parked span credited to the guest as
//! steal time so its verifier does not count it). gdb's stub pauses the
//! VM for each stop and reads and writes registers through jobs run on the
//! parked vCPUs' threads (`PauseGate::with_vcpu`).
//!
//! A debug exit (a hardware breakpoint fired, a single step ended) happens
//! on one vCPU thread: it tells the stub (`Event::Debug`) and waits for the
//! pause the stub then requests, so it runs no further guest instruction;
//! it parks with the others at the top of its loop.
//!
//! Resuming over a hardware breakpoint: with RFLAGS.RF this platform's
//! emulator fires the breakpoint again, so a `continue` from a breakpoint's
//! address first single-steps with that breakpoint left out, then arms
//! them all (`GuestDebug::stepping_over`, driven by the stub).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_bindings::{
    kvm_guest_debug, KVM_GUESTDBG_BLOCKIRQ, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
};
use kvm_ioctls::VcpuFd;

use crate::pause::PauseGate;

/// How long a vCPU that reported a debug exit waits for the stub's pause
/// before it runs on (the stub is gone).
const PAUSE_WAIT: Duration = Duration::from_secs(2);

/// DR6 bit of a completed single step.
pub const DR6_BS: u64 = 1 << 14;

/// Hardware breakpoints: DR0–DR3.
pub const HW_BREAKPOINTS: usize = 4;

/// What the stub arms on a vCPU: breakpoint addresses (execution, 1 byte,
/// DR0–DR3) and single-step.
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

    pub fn hits(&self, rip: u64) -> bool {
        self.breakpoints.contains(&Some(rip))
    }

    /// The same, without the breakpoint at `rip`, single-stepping.
    pub fn stepping_over(mut self, rip: u64) -> Self {
        for slot in &mut self.breakpoints {
            if *slot == Some(rip) {
                *slot = None;
            }
        }
        self.step = true;
        self
    }

    /// Arms this state on a vCPU (on its thread).
    pub fn arm(self, fd: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
        let mut kvm = self.to_kvm();
        if fd.set_guest_debug(&kvm).is_ok() {
            return Ok(());
        }
        // A KVM without KVM_GUESTDBG_BLOCKIRQ (before Linux 5.15).
        kvm.control &= !KVM_GUESTDBG_BLOCKIRQ;
        fd.set_guest_debug(&kvm)
    }
}

/// From the vCPU threads (and the main thread) to the stub.
#[derive(Debug)]
pub enum Event {
    /// KVM_EXIT_DEBUG on vCPU `index`, with DR6.
    Debug { index: u8, dr6: u64 },
    /// The vCPU thread ended (the guest exited, or a failure).
    Ended { index: u8 },
    /// The VM is over with this exit status (from the main thread).
    Exited(u8),
}

/// One vCPU thread's end of the stub.
#[derive(Debug)]
pub struct VcpuDebug {
    events: Sender<Event>,
    pause: Arc<PauseGate>,
}

impl VcpuDebug {
    pub fn new(events: Sender<Event>, pause: Arc<PauseGate>) -> Self {
        Self { events, pause }
    }

    /// Called once when the vCPU thread ends.
    pub fn ended(&self, index: u8) {
        let _ = self.events.send(Event::Ended { index });
    }

    /// A KVM_EXIT_DEBUG: tells the stub, then waits for its pause (the loop
    /// parks at its top), so no further guest instruction runs.
    pub fn debug_exit(&self, index: u8, dr6: u64, stop: &AtomicBool) {
        if self.events.send(Event::Debug { index, dr6 }).is_err() {
            return;
        }
        let deadline = Instant::now() + PAUSE_WAIT;
        while !self.pause.requested() && !stop.load(Ordering::Acquire) {
            if Instant::now() >= deadline {
                log::warn!("gdb: vCPU {index} stopped for the debugger, which did not answer");
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
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
}
