//! The VM as gdb sees it (`gdbstub`'s multi-threaded target): one thread
//! per vCPU (thread id = vCPU index + 1), registers (`regs.rs`: general,
//! segment, x87 and SSE) from the snapshot each vCPU gives when it parks,
//! memory through the guest's page tables, breakpoints in DR0–DR3.
//!
//! gdb's `break` (a software breakpoint, `Z0`) is placed in a debug
//! register too: an `int3` written into guest code ends in an emulation
//! failure on this platform (`docs/debugging.md`). So `break` and `hbreak`
//! share four slots, and a fifth is refused with a message on stderr (gdb
//! says it could not insert the breakpoint).
//!
//! Whenever a stop is reported to gdb the VM is paused (`pause.rs`): every
//! vCPU parked, device time frozen; registers are read once per stop on
//! each parked vCPU's thread. The pause is VM-wide, so while one vCPU
//! steps the others run (gdb's `scheduler-locking` cannot hold them).

use std::num::NonZeroUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gdbstub::common::{Signal, Tid};
use gdbstub::stub::MultiThreadStopReason;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::gate::{Event, GuestDebug, DR6_BS, HW_BREAKPOINTS};
use super::paging::Paging;
use super::regs::Snapshot;
use crate::pause::{self, PauseGate};

/// How long a vCPU gets to park once asked.
const PARK_GRACE: Duration = Duration::from_secs(2);

/// A stop reason as gdb gets it.
pub type StopReason = MultiThreadStopReason<u64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Continue,
    Step,
    /// gdb's scheduler locking: treated as `Continue` (the pause is
    /// VM-wide).
    Stay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Software,
    Hardware,
}

#[derive(Debug)]
struct VcpuView {
    alive: bool,
    /// Its registers at the current stop.
    parked: Option<Snapshot>,
    action: Option<Action>,
    /// Stepping past a breakpoint: the state to arm after the step.
    step_over: Option<GuestDebug>,
    /// Resumed with a single step.
    stepping: bool,
}

/// The VM behind the gdb connection.
#[derive(Debug)]
pub struct VmTarget {
    vcpus: Vec<VcpuView>,
    events: Receiver<Event>,
    pause: Arc<PauseGate>,
    /// The stub holds the VM paused.
    stopped: bool,
    memory: GuestMemoryMmap,
    breakpoints: [Option<(u64, Kind)>; HW_BREAKPOINTS],
    default_action: Action,
    /// The VM's exit status once it is over.
    exited: Option<u8>,
}

fn tid(index: usize) -> Tid {
    NonZeroUsize::new(index + 1).unwrap_or(NonZeroUsize::MIN)
}

fn index(tid: Tid) -> usize {
    tid.get() - 1
}

impl VmTarget {
    pub fn new(
        vcpus: usize,
        events: Receiver<Event>,
        pause: Arc<PauseGate>,
        memory: GuestMemoryMmap,
    ) -> Self {
        let vcpus = (0..vcpus)
            .map(|_| VcpuView {
                alive: true,
                parked: None,
                action: None,
                step_over: None,
                stepping: false,
            })
            .collect();
        Self {
            vcpus,
            events,
            pause,
            stopped: false,
            memory,
            breakpoints: [None; HW_BREAKPOINTS],
            default_action: Action::Continue,
            exited: None,
        }
    }

    pub fn exited(&self) -> Option<u8> {
        self.exited
    }

    /// Takes in one event; returns the stop it means for gdb, if any
    /// (the VM is paused for a debug exit first).
    fn take(&mut self, event: Event) -> Option<StopReason> {
        match event {
            Event::Debug { index, dr6 } => {
                let i = usize::from(index);
                self.stop_all();
                let view = self.vcpus.get_mut(i)?;
                let stepping = std::mem::take(&mut view.stepping);
                let rip = view.parked.as_ref().map_or(0, |p| p.regs.rip);
                if let Some(full) = view.step_over.take() {
                    // The step past a breakpoint ended: arm them all and go
                    // on, unless gdb asked for the step or it landed on one.
                    if !stepping && !full.hits(rip) {
                        if let Err(e) = self.pause.with_vcpu(i, move |fd| full.arm(fd)) {
                            log::warn!("gdb: cannot re-arm vCPU {i}'s breakpoints: {e}");
                        }
                        self.run_on();
                        return None;
                    }
                }
                if stepping || dr6 & DR6_BS != 0 {
                    return Some(StopReason::SignalWithThread {
                        tid: tid(i),
                        signal: Signal::SIGTRAP,
                    });
                }
                Some(match self.kind_at(rip) {
                    Some(Kind::Software) => StopReason::SwBreak(tid(i)),
                    _ => StopReason::HwBreak(tid(i)),
                })
            }
            Event::Ended { index } => {
                if let Some(view) = self.vcpus.get_mut(usize::from(index)) {
                    view.alive = false;
                    view.parked = None;
                }
                None
            }
            Event::Exited(status) => {
                self.exited = Some(status);
                Some(StopReason::Exited(status))
            }
        }
    }

    fn kind_at(&self, rip: u64) -> Option<Kind> {
        self.breakpoints
            .iter()
            .flatten()
            .find(|(addr, _)| *addr == rip)
            .map(|(_, kind)| *kind)
    }

    /// Pauses the VM (if the stub does not hold it yet) and reads every
    /// parked vCPU's registers.
    pub fn stop_all(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Err(e) = self.pause.pause() {
            log::warn!("gdb: {e}");
        }
        for i in 0..self.vcpus.len() {
            if !self.vcpus[i].alive {
                continue;
            }
            // A vCPU may still be on its way to the gate (`--gdb-wait`: the
            // pause came before the threads).
            let deadline = Instant::now() + PARK_GRACE;
            let snapshot = loop {
                match self.pause.with_vcpu(i, Snapshot::read) {
                    Ok(regs) => break regs,
                    Err(pause::Error::NotParked(_)) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        log::warn!("gdb: cannot read vCPU {i}'s registers: {e}");
                        break None;
                    }
                }
            };
            self.vcpus[i].parked = snapshot;
        }
    }

    /// Lets the VM run again.
    fn run_on(&mut self) {
        for v in &mut self.vcpus {
            v.parked = None;
        }
        self.stopped = false;
        self.pause.resume();
    }

    /// Waits up to `wait` for a vCPU to stop or the VM to end.
    pub fn poll(&mut self, wait: Duration) -> Option<StopReason> {
        match self.events.recv_timeout(wait) {
            Ok(event) => self.take(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(StopReason::Exited(0)),
        }
    }

    /// A stop that waits in the queue (the VM ended before gdb came).
    pub fn pending(&mut self) -> Option<StopReason> {
        self.poll(Duration::ZERO)
    }

    /// The first vCPU still alive, for a stop gdb asked for (Ctrl-C).
    pub fn first_alive(&self) -> Tid {
        tid(self.vcpus.iter().position(|v| v.alive).unwrap_or(0))
    }

    fn snapshot(&self, tid: Tid) -> Result<&Snapshot, TargetError<String>> {
        self.vcpus
            .get(index(tid))
            .and_then(|v| v.parked.as_ref())
            .ok_or(TargetError::NonFatal)
    }

    fn armed(&self, step: bool) -> GuestDebug {
        let mut debug = GuestDebug {
            step,
            ..GuestDebug::default()
        };
        for (slot, bp) in debug.breakpoints.iter_mut().zip(&self.breakpoints) {
            *slot = bp.map(|(addr, _)| addr);
        }
        debug
    }

    /// gdb detached: no breakpoint stays armed at the next resume.
    pub fn forget_breakpoints(&mut self) {
        self.breakpoints = [None; HW_BREAKPOINTS];
    }

    fn add(&mut self, addr: u64, kind: Kind) -> bool {
        match self.breakpoints.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some((addr, kind));
                true
            }
            None => {
                eprintln!(
                    "dmalab: gdb: no breakpoint at {addr:#x}: all {HW_BREAKPOINTS} hardware \
                     breakpoints (DR0-DR3) are in use; delete one first"
                );
                false
            }
        }
    }

    fn remove(&mut self, addr: u64, kind: Kind) -> bool {
        match self
            .breakpoints
            .iter_mut()
            .find(|s| **s == Some((addr, kind)))
        {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    /// Copies between gdb and guest memory at virtual `start`, page by page;
    /// returns how many bytes were done.
    fn access(
        &self,
        tid: Tid,
        start: u64,
        len: usize,
        mut each: impl FnMut(GuestAddress, usize, usize) -> bool,
    ) -> Result<usize, TargetError<String>> {
        let paging = Paging::from_sregs(&self.snapshot(tid)?.sregs);
        let mut done = 0usize;
        while done < len {
            let va = start.wrapping_add(done as u64);
            let Some((pa, in_page)) = paging.translate(&self.memory, va) else {
                break;
            };
            let n = usize::try_from(in_page)
                .unwrap_or(usize::MAX)
                .min(len - done);
            if !each(GuestAddress(pa), done, n) {
                break;
            }
            done += n;
        }
        if done == 0 && len > 0 {
            return Err(TargetError::Errno(14)); // EFAULT
        }
        Ok(done)
    }
}

impl Target for VmTarget {
    type Arch = X86_64_SSE;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for VmTarget {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        *regs = self.snapshot(tid)?.to_gdb();
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let i = index(tid);
        let new = self.snapshot(tid)?.with_gdb(regs);
        let written = new.clone();
        self.pause
            .with_vcpu(i, move |fd| written.write(fd))
            .map_err(|e| TargetError::Fatal(e.to_string()))?
            .map_err(|_| TargetError::NonFatal)?;
        if let Some(parked) = self.vcpus.get_mut(i).and_then(|v| v.parked.as_mut()) {
            *parked = new;
        }
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let memory = self.memory.clone();
        self.access(tid, start, data.len(), |pa, at, n| {
            memory.read_slice(&mut data[at..at + n], pa).is_ok()
        })
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let memory = self.memory.clone();
        let done = self.access(tid, start, data.len(), |pa, at, n| {
            memory.write_slice(&data[at..at + n], pa).is_ok()
        })?;
        if done < data.len() {
            return Err(TargetError::Errno(14));
        }
        Ok(())
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        for (i, v) in self.vcpus.iter().enumerate() {
            if v.alive {
                thread_is_active(tid(i));
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadResume for VmTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        for i in 0..self.vcpus.len() {
            let action = self.vcpus[i].action.take().unwrap_or(self.default_action);
            if !self.vcpus[i].alive {
                continue;
            }
            let step = action == Action::Step;
            let debug = self.armed(step);
            let armed = self.pause.with_vcpu(i, move |fd| {
                let rip = fd.get_regs().map(|r| r.rip).unwrap_or(0);
                let over = debug.hits(rip);
                let state = if over {
                    debug.stepping_over(rip)
                } else {
                    debug
                };
                state.arm(fd).map(|()| over)
            });
            let view = &mut self.vcpus[i];
            view.stepping = step;
            view.step_over = None;
            match armed {
                Ok(Ok(true)) => view.step_over = Some(debug),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => log::warn!("gdb: KVM_SET_GUEST_DEBUG on vCPU {i} failed: {e}"),
                Err(e) => log::warn!("gdb: vCPU {i}: {e}"),
            }
        }
        self.run_on();
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        for v in &mut self.vcpus {
            v.action = None;
        }
        self.default_action = Action::Continue;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        if let Some(v) = self.vcpus.get_mut(index(tid)) {
            v.action = Some(Action::Continue);
        }
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for VmTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        if let Some(v) = self.vcpus.get_mut(index(tid)) {
            v.action = Some(Action::Step);
        }
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for VmTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.default_action = Action::Stay;
        Ok(())
    }
}

impl Breakpoints for VmTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for VmTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add(addr, Kind::Software))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove(addr, Kind::Software))
    }
}

impl HwBreakpoint for VmTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add(addr, Kind::Hardware))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove(addr, Kind::Hardware))
    }
}
