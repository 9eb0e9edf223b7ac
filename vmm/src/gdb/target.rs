//! The VM as gdb sees it (`gdbstub`'s multi-threaded target): one thread
//! per vCPU (thread id = vCPU index + 1), registers from the snapshot each
//! vCPU sends when it parks, memory through the guest's page tables,
//! breakpoints in DR0–DR3.
//!
//! gdb's `break` (a software breakpoint, `Z0`) is placed in a debug
//! register too: an `int3` written into guest code ends in an emulation
//! failure on this platform (`docs/debugging.md`). So `break` and `hbreak`
//! share four slots, and a fifth is refused with a message on stderr (gdb
//! says it could not insert the breakpoint).
//!
//! Whenever a stop is reported to gdb every vCPU is parked: one that hits a
//! breakpoint or ends a step makes the others park too (`stop_all`).

use std::num::NonZeroUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

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
use kvm_bindings::{kvm_regs, kvm_sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::gate::{Cause, Command, DebugGate, Event, GuestDebug, HW_BREAKPOINTS};
use super::paging::Paging;

/// How long a vCPU gets to park once asked.
const PARK_GRACE: Duration = Duration::from_secs(2);

/// A stop reason as gdb gets it.
pub type StopReason = MultiThreadStopReason<u64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Continue,
    Step,
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
    parked: Option<(Box<kvm_regs>, Box<kvm_sregs>)>,
    action: Option<Action>,
}

/// The VM behind the gdb connection.
#[derive(Debug)]
pub struct VmTarget {
    vcpus: Vec<VcpuView>,
    commands: Vec<Sender<Command>>,
    events: Receiver<Event>,
    gate: Arc<DebugGate>,
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
        commands: Vec<Sender<Command>>,
        events: Receiver<Event>,
        gate: Arc<DebugGate>,
        memory: GuestMemoryMmap,
    ) -> Self {
        let vcpus = commands
            .iter()
            .map(|_| VcpuView {
                alive: true,
                parked: None,
                action: None,
            })
            .collect();
        Self {
            vcpus,
            commands,
            events,
            gate,
            memory,
            breakpoints: [None; HW_BREAKPOINTS],
            default_action: Action::Continue,
            exited: None,
        }
    }

    pub fn exited(&self) -> Option<u8> {
        self.exited
    }

    /// Takes in one event; returns the stop it means for gdb, if any.
    fn take(&mut self, event: Event) -> Option<StopReason> {
        match event {
            Event::Parked {
                index,
                cause,
                regs,
                sregs,
            } => {
                let i = usize::from(index);
                let view = self.vcpus.get_mut(i)?;
                let rip = regs.rip;
                view.parked = Some((regs, sregs));
                match cause {
                    Cause::Halted => None,
                    Cause::Stepped => Some(StopReason::SignalWithThread {
                        tid: tid(i),
                        signal: Signal::SIGTRAP,
                    }),
                    Cause::Breakpoint => Some(match self.kind_at(rip) {
                        Some(Kind::Software) => StopReason::SwBreak(tid(i)),
                        _ => StopReason::HwBreak(tid(i)),
                    }),
                }
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

    fn waiting(&self) -> bool {
        self.vcpus.iter().any(|v| v.alive && v.parked.is_none())
    }

    /// Parks every vCPU; returns the first stop that came meanwhile (a
    /// breakpoint on another vCPU, the VM's exit).
    pub fn stop_all(&mut self) -> Option<StopReason> {
        let mut first = None;
        if self.waiting() {
            self.gate.halt();
        }
        while self.waiting() && self.exited.is_none() {
            match self.events.recv_timeout(PARK_GRACE) {
                Ok(event) => {
                    let stop = self.take(event);
                    first = first.or(stop);
                }
                Err(RecvTimeoutError::Timeout) => {
                    log::warn!("gdb: a vCPU did not stop within {PARK_GRACE:?}");
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        first
    }

    /// Waits up to `wait` for a vCPU to stop or the VM to end; parks the
    /// others when one stops.
    pub fn poll(&mut self, wait: Duration) -> Option<StopReason> {
        let event = match self.events.recv_timeout(wait) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => return Some(StopReason::Exited(0)),
        };
        let stop = self.take(event)?;
        if self.exited.is_none() {
            self.stop_all();
        }
        Some(stop)
    }

    /// The first vCPU still alive, for a stop gdb asked for (Ctrl-C).
    pub fn first_alive(&self) -> Tid {
        tid(self.vcpus.iter().position(|v| v.alive).unwrap_or(0))
    }

    fn snapshot(&self, tid: Tid) -> Result<&(Box<kvm_regs>, Box<kvm_sregs>), TargetError<String>> {
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
        let paging = Paging::from_sregs(&self.snapshot(tid)?.1);
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
        let (r, s) = self.snapshot(tid)?;
        regs.regs = [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        regs.rip = r.rip;
        regs.eflags = u32::try_from(r.rflags & 0xffff_ffff).unwrap_or(0);
        regs.segments.cs = u32::from(s.cs.selector);
        regs.segments.ss = u32::from(s.ss.selector);
        regs.segments.ds = u32::from(s.ds.selector);
        regs.segments.es = u32::from(s.es.selector);
        regs.segments.fs = u32::from(s.fs.selector);
        regs.segments.gs = u32::from(s.gs.selector);
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let i = index(tid);
        let mut r = self.snapshot(tid)?.0.clone();
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ] = regs.regs;
        r.rip = regs.rip;
        r.rflags = (r.rflags & !0xffff_ffff) | u64::from(regs.eflags);
        if let Some(view) = self.vcpus.get_mut(i) {
            if let Some(parked) = view.parked.as_mut() {
                parked.0 = r.clone();
            }
        }
        self.commands[i]
            .send(Command::SetRegs(r))
            .map_err(|_| TargetError::NonFatal)
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
        self.gate.release();
        for i in 0..self.vcpus.len() {
            let view = &mut self.vcpus[i];
            let action = view.action.take().unwrap_or(self.default_action);
            if !view.alive || view.parked.is_none() || action == Action::Stay {
                continue;
            }
            view.parked = None;
            let debug = self.armed(action == Action::Step);
            if self.commands[i].send(Command::Resume(debug)).is_err() {
                self.vcpus[i].alive = false;
            }
        }
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
