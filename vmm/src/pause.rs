//! The VM-wide pause gate: stops every vCPU and the device, and starts
//! them again (the control socket's `pause`/`resume`; a debugger's stop).
//!
//! Pausing: the gate raises its flag, tells its listeners (the DMA device
//! freezes its clock and disarms its timer, `Dma::paused`), then kicks
//! every vCPU thread out of KVM_RUN with the same signal as the timeout
//! (`vcpu_kick.rs`: no window in which a kick is lost). Each vCPU thread
//! sees the flag at the top of its loop and parks on the gate's condition
//! variable, outside KVM_RUN and holding no lock. `pause` returns once
//! every vCPU is parked, or is held inside a device access that waits for
//! stepped time (`PauseListener::held_vcpus`): such a vCPU parks as soon
//! as its access ends, and runs no guest instruction meanwhile.
//!
//! While parked, a vCPU thread runs jobs handed to it (`with_vcpu`): a
//! vCPU's registers can only be read on the thread that owns its fd.
//!
//! Resuming: the flag drops, the listeners resume (the device's realtime
//! origin moves by the paused span, so device time did not move), and each
//! vCPU, before it enters the guest again, adds the span it was parked to
//! the `steal` field of its KVM steal-time record (`MSR_KVM_STEAL_TIME`,
//! read from the vCPU: the guest-physical address the guest enabled). The
//! guest's verifier already leaves steal time out of an ISR's or DPC's own
//! time (`guest-driver/kernel/steal.h`, `docs/wdm.md`), so a pause inside
//! a DPC is no "DPC over 100 µs". KVM itself only counts the time a vCPU
//! thread was runnable but not running, and a parked thread sleeps; it
//! reads `steal` back from guest memory before adding its own share
//! (`record_steal_time`), so the two never overwrite each other. The
//! record is written as KVM writes it (version odd, steal, version even)
//! and only while its vCPU is out of the guest.
//!
//! The run ending (`release`) unparks everything for good, so a paused VM
//! still stops on a timeout or a signal.
//!
//! The same goes for a vCPU held inside a register access until stepped
//! device time reaches idle (`Dma::wait_idle`): the access notes the span
//! (`note_held`, a thread-local of the vCPU thread) and the vCPU adds it
//! to its steal time before it enters the guest again, so a driver's DPC
//! that waits for someone to step the device is not a long DPC either.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_msr_entry, Msrs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::vcpu_kick;

/// KVM's steal-time MSR (`MSR_KVM_STEAL_TIME`).
const MSR_KVM_STEAL_TIME: u32 = 0x4b56_4d03;
/// Bit 0 of the MSR: the guest enabled the record.
const STEAL_ENABLED: u64 = 1;
/// The record is 64-byte aligned: the low 6 bits are flags.
const STEAL_ADDR_MASK: u64 = !0x3f;
/// Offsets in `struct kvm_steal_time`.
const STEAL_FIELD: u64 = 0;
const VERSION_FIELD: u64 = 8;

/// How long `pause` waits for every vCPU to park.
pub const PARK_WAIT: Duration = Duration::from_secs(2);

/// Work for a parked vCPU's thread, which owns its fd.
pub type VcpuJob = Box<dyn FnOnce(&VcpuFd) + Send>;

/// Told when the VM pauses and resumes (the DMA device).
pub trait PauseListener: Send + Sync {
    /// The VM is pausing: stop time.
    fn paused(&self);
    /// The VM resumes: restart time, leaving out the paused span.
    fn resumed(&self);
    /// vCPUs held inside a device access (stepped time): they run no guest
    /// code and park when the access ends.
    fn held_vcpus(&self) -> usize {
        0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the VM is not paused (pause it first)")]
    NotPaused,
    #[error("no vCPU {0} (the VM has {1})")]
    NoVcpu(usize, usize),
    #[error("vCPU {0} is not parked (it is held in a device access or has ended)")]
    NotParked(usize),
    #[error("vCPUs {0:?} did not stop within {PARK_WAIT:?}; the VM stays paused for them")]
    NotStopped(Vec<usize>),
    #[error("the run is ending")]
    Ending,
}

/// One vCPU's slot.
#[derive(Default)]
struct Slot {
    /// Its thread while it runs (kick target).
    thread: Option<libc::pthread_t>,
    parked: bool,
    job: Option<VcpuJob>,
}

#[derive(Default)]
struct Inner {
    slots: Vec<Slot>,
    /// When the current pause began.
    since: Option<Instant>,
    /// Paused time before the current pause.
    total: Duration,
    pauses: u64,
    released: bool,
}

/// The gate every vCPU thread passes at the top of its loop.
pub struct PauseGate {
    /// Raised while paused: the vCPUs' hot-path check.
    requested: AtomicBool,
    inner: Mutex<Inner>,
    changed: Condvar,
    listeners: Mutex<Vec<Arc<dyn PauseListener>>>,
}

impl fmt::Debug for PauseGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PauseGate")
            .field("paused", &self.is_paused())
            .finish_non_exhaustive()
    }
}

/// What `status` reports of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateStatus {
    pub paused: bool,
    /// vCPUs parked now.
    pub parked: usize,
    pub vcpus: usize,
    /// Time paused so far, the current pause included.
    pub paused_total: Duration,
    pub pauses: u64,
}

impl PauseGate {
    /// A gate for `vcpus` vCPU threads.
    pub fn new(vcpus: usize) -> Arc<Self> {
        let mut inner = Inner::default();
        inner.slots.resize_with(vcpus, Slot::default);
        Arc::new(Self {
            requested: AtomicBool::new(false),
            inner: Mutex::new(inner),
            changed: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>, d: Duration) -> MutexGuard<'a, Inner> {
        match self.changed.wait_timeout(g, d) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    fn listeners(&self) -> Vec<Arc<dyn PauseListener>> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds a listener (before the vCPUs start).
    pub fn add_listener(&self, l: Arc<dyn PauseListener>) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(l);
    }

    /// Whether a pause is requested (one atomic load: the vCPU hot path).
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    pub fn is_paused(&self) -> bool {
        self.requested()
    }

    pub fn status(&self) -> GateStatus {
        let g = self.lock();
        GateStatus {
            paused: g.since.is_some(),
            parked: g.slots.iter().filter(|s| s.parked).count(),
            vcpus: g.slots.len(),
            paused_total: g.total + g.since.map_or(Duration::ZERO, |s| s.elapsed()),
            pauses: g.pauses,
        }
    }

    /// Time paused so far (the current pause included).
    pub fn paused_total(&self) -> Duration {
        self.status().paused_total
    }

    /// The calling thread runs vCPU `index` (until `leave`).
    pub fn enter(&self, index: usize) {
        let mut g = self.lock();
        if let Some(slot) = g.slots.get_mut(index) {
            // SAFETY: pthread_self has no preconditions.
            slot.thread = Some(unsafe { libc::pthread_self() });
        }
    }

    /// vCPU `index`'s thread is ending: it is no kick target any more.
    pub fn leave(&self, index: usize) {
        let mut g = self.lock();
        if let Some(slot) = g.slots.get_mut(index) {
            slot.thread = None;
            slot.parked = false;
        }
        self.changed.notify_all();
    }

    /// Pauses the VM: the device first (its time stops now), then every
    /// vCPU. Pausing a paused VM does nothing.
    pub fn pause(&self) -> Result<(), Error> {
        {
            let mut g = self.lock();
            if g.released {
                return Err(Error::Ending);
            }
            if g.since.is_some() {
                return Ok(());
            }
            g.since = Some(Instant::now());
            g.pauses += 1;
            self.requested.store(true, Ordering::Release);
        }
        let listeners = self.listeners();
        for l in &listeners {
            l.paused();
        }
        self.kick_all();
        let held = || listeners.iter().map(|l| l.held_vcpus()).sum::<usize>();
        let deadline = Instant::now() + PARK_WAIT;
        let mut g = self.lock();
        loop {
            let running: Vec<usize> = (0..g.slots.len())
                .filter(|&i| g.slots[i].thread.is_some() && !g.slots[i].parked)
                .collect();
            if running.len() <= held() || g.released {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::NotStopped(running));
            }
            g = self.wait(g, left.min(Duration::from_millis(10)));
        }
    }

    /// Kicks every running vCPU thread out of KVM_RUN.
    fn kick_all(&self) {
        let g = self.lock();
        for (index, slot) in g.slots.iter().enumerate() {
            if let (Some(thread), false) = (slot.thread, slot.parked) {
                // SAFETY: `thread` is a live thread: a vCPU thread clears its
                // slot (`leave`, under this same lock) before it ends.
                let r = unsafe { libc::pthread_kill(thread, vcpu_kick::signal()) };
                if r != 0 {
                    log::warn!("cannot kick vCPU {index} for the pause: errno {r}");
                }
            }
        }
    }

    /// Resumes the VM. Resuming a running VM does nothing.
    pub fn resume(&self) {
        {
            let mut g = self.lock();
            let Some(since) = g.since.take() else {
                return;
            };
            g.total += since.elapsed();
            self.requested.store(false, Ordering::Release);
        }
        for l in self.listeners() {
            l.resumed();
        }
        self.changed.notify_all();
    }

    /// The run is ending: unparks every vCPU for good.
    pub fn release(&self) {
        let mut g = self.lock();
        g.released = true;
        self.requested.store(false, Ordering::Release);
        if let Some(since) = g.since.take() {
            g.total += since.elapsed();
        }
        drop(g);
        self.changed.notify_all();
    }

    /// Runs `job` on parked vCPU `index`'s thread and returns its result.
    pub fn with_vcpu<R: Send + 'static>(
        &self,
        index: usize,
        job: impl FnOnce(&VcpuFd) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = mpsc::channel();
        {
            let mut g = self.lock();
            let vcpus = g.slots.len();
            if g.since.is_none() {
                return Err(Error::NotPaused);
            }
            let slot = g.slots.get_mut(index).ok_or(Error::NoVcpu(index, vcpus))?;
            if !slot.parked {
                return Err(Error::NotParked(index));
            }
            slot.job = Some(Box::new(move |fd: &VcpuFd| {
                let _ = tx.send(job(fd));
            }));
        }
        self.changed.notify_all();
        rx.recv_timeout(PARK_WAIT)
            .map_err(|_| Error::NotParked(index))
    }

    /// The vCPU thread's side: if a pause is requested, parks until resumed
    /// (running jobs meanwhile), then reports the parked span to the guest
    /// as steal time.
    pub fn park(&self, index: usize, fd: &VcpuFd, memory: &GuestMemoryMmap) {
        if !self.requested() {
            return;
        }
        let start = Instant::now();
        let mut g = self.lock();
        let Some(slot) = g.slots.get_mut(index) else {
            return;
        };
        slot.parked = true;
        self.changed.notify_all();
        while g.since.is_some() && !g.released {
            if let Some(job) = g.slots[index].job.take() {
                drop(g);
                job(fd);
                g = self.lock();
                continue;
            }
            g = self.wait(g, Duration::from_millis(100));
        }
        g.slots[index].parked = false;
        drop(g);
        add_steal(fd, memory, start.elapsed());
    }
}

thread_local! {
    /// Nanoseconds this vCPU thread was held in a device access.
    static HELD_NS: Cell<u64> = const { Cell::new(0) };
}

/// Notes that the calling vCPU thread was held `span` inside an access.
pub fn note_held(span: Duration) {
    let ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    HELD_NS.with(|h| h.set(h.get().saturating_add(ns)));
}

/// The span noted by `note_held` since the last call (one thread-local
/// read when there is none: the vCPU's hot path).
pub fn take_held() -> Option<Duration> {
    match HELD_NS.with(|h| h.replace(0)) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// Adds `span` to the vCPU's KVM steal-time record, if the guest enabled
/// one. A hostile address (outside guest RAM) is skipped.
pub fn add_steal(fd: &VcpuFd, memory: &GuestMemoryMmap, span: Duration) {
    let Ok(mut msrs) = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_KVM_STEAL_TIME,
        ..Default::default()
    }]) else {
        return;
    };
    if !matches!(fd.get_msrs(&mut msrs), Ok(1)) {
        return;
    }
    let value = msrs.as_slice()[0].data;
    if value & STEAL_ENABLED == 0 {
        return;
    }
    let base = GuestAddress(value & STEAL_ADDR_MASK);
    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    let (Some(steal_at), Some(version_at)) = (
        base.0.checked_add(STEAL_FIELD),
        base.0.checked_add(VERSION_FIELD),
    ) else {
        return;
    };
    let (Ok(steal), Ok(version)) = (
        memory.read_obj::<u64>(GuestAddress(steal_at)),
        memory.read_obj::<u32>(GuestAddress(version_at)),
    ) else {
        log::warn!("steal-time record at {:#x} is outside guest RAM", base.0);
        return;
    };
    let _ = memory.write_obj(version.wrapping_add(1), GuestAddress(version_at));
    let _ = memory.write_obj(steal.wrapping_add(nanos), GuestAddress(steal_at));
    let _ = memory.write_obj(version.wrapping_add(2), GuestAddress(version_at));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Counting {
        paused: AtomicUsize,
        resumed: AtomicUsize,
    }

    impl PauseListener for Counting {
        fn paused(&self) {
            self.paused.fetch_add(1, Ordering::SeqCst);
        }
        fn resumed(&self) {
            self.resumed.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pause_and_resume_tell_listeners_once_and_count_the_span() {
        let gate = PauseGate::new(0);
        let l = Arc::new(Counting::default());
        gate.add_listener(l.clone());
        gate.pause().unwrap();
        gate.pause().unwrap();
        assert!(gate.status().paused);
        std::thread::sleep(Duration::from_millis(20));
        gate.resume();
        gate.resume();
        let s = gate.status();
        assert!(!s.paused);
        assert_eq!(s.pauses, 1);
        assert!(s.paused_total >= Duration::from_millis(20), "{s:?}");
        assert_eq!(l.paused.load(Ordering::SeqCst), 1);
        assert_eq!(l.resumed.load(Ordering::SeqCst), 1);
        assert!(matches!(gate.with_vcpu(0, |_| ()), Err(Error::NotPaused)));
    }

    #[test]
    fn a_vcpu_that_never_parks_is_named_and_release_unblocks() {
        let gate = PauseGate::new(1);
        vcpu_kick::install().unwrap();
        let g2 = gate.clone();
        let (tx, rx) = mpsc::channel();
        // A "vCPU" thread that registers but does not reach the gate.
        let t = std::thread::spawn(move || {
            g2.enter(0);
            tx.send(()).unwrap();
            std::thread::sleep(PARK_WAIT + Duration::from_millis(200));
            g2.leave(0);
        });
        rx.recv().unwrap();
        match gate.pause() {
            Err(Error::NotStopped(v)) => assert_eq!(v, vec![0]),
            other => panic!("{other:?}"),
        }
        gate.release();
        assert!(!gate.requested());
        assert!(matches!(gate.pause(), Err(Error::Ending)));
        t.join().unwrap();
    }
}
