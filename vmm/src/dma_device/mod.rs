//! The DMA controller of `device-model` inside the VM (`docs/dma-device.md`).
//!
//! The guest sees it at PCI 00:01.0 behind the host bridge, with BAR0
//! (registers) at 0xC000_0000 and BAR2 (MSI-X table + PBA) at 0xC000_1000,
//! assigned before boot like firmware would; the command register is left
//! 0. Pieces, one file each:
//! - `pci_adapter.rs`: config space on the PCI bus (conf1), the BARs on the
//!   MMIO bus, BAR moves (re-register the ranges and the doorbells);
//! - `msix_delivery.rs`: the model's `InterruptSink`: an irqfd and a KVM GSI
//!   MSI route per message slot;
//! - `doorbell.rs`: the channels' `TAIL` registers as KVM ioeventfds
//!   (`--doorbell ioeventfd`);
//! - `clock.rs`: `--timing instant|realtime|stepped`, the realtime timerfd;
//! - `realtime.rs`: catching the model up to host time, lateness, spins,
//!   the timer wake-up;
//! - `device_thread.rs`: the event loop (event-manager) that takes the
//!   ioeventfd doorbells, the timerfd and the control socket;
//! - `control_socket.rs`: the stepped mode's line protocol;
//! - `device_state.rs`: what the device lock guards, and the trace drain;
//! - `stats.rs`: the counters of the run report.
//!
//! Locking: the model lives in one `Mutex<DeviceState>` (the "device
//! lock", handed fairly between slices of long work: `device_lock.rs`).
//! Once the run is stopping, no thread does model work any more, so a
//! vCPU's last access and the summary never wait behind the device. A vCPU holds it for one register access (MMIO exit, or a config
//! access through conf1), the device thread for one doorbell, timer expiry
//! or control request. Interrupt delivery inside it is an eventfd write
//! (no lock); route updates are an ioctl that waits on no lock of ours
//! (`msix_delivery.rs`). BAR moves take the MMIO bus's write lock only after
//! the device lock is released (`pci_adapter.rs`), so the two locks are
//! never held in opposite orders.
//!
//! Every access goes through `Dma::access`, which applies the timing mode:
//! realtime advances the model to host time before the access and re-arms
//! the timer after it; instant runs the model to idle after it; stepped
//! makes a vCPU's access wait (device lock released, on a condition
//! variable) until the control socket's steps have brought the device to
//! idle. So in instant and in stepped mode every guest access acts at the
//! same device cycle — the one where the work before it ended — whatever
//! the host's scheduling, and the trace (device cycles only) of the same
//! guest with the same plan and seed is the same, byte for byte. (A
//! doorbell taken by the device thread from an ioeventfd is not a vCPU
//! access and does not wait: that thread also serves the steps.)

pub mod clock;
pub mod control_socket;
pub mod device_lock;
mod device_state;
pub mod device_thread;
pub mod doorbell;
pub mod lateness;
pub mod msix_delivery;
pub mod pci_adapter;
mod realtime;
pub mod stats;
pub mod steps;
pub mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use device_model::fault::{FaultEngine, FaultPlan};
use device_model::{Controller, DeviceConfig};
use kvm_ioctls::VmFd;
use vm_memory::GuestMemoryMmap;

use crate::devices::bus::MmioBus;
use crate::devices::guest_log;
use crate::devices::pci::PciBus;
use crate::pause::{PauseGate, PauseListener};

use clock::DeviceClock;
pub use clock::TimingMode;
use device_lock::{DeviceGuard, HoldStats};
pub use device_state::DeviceState;
use msix_delivery::IrqRoutes;
use stats::{RegisterExits, Tally};

/// The device's slot on bus 0 (00:01.0).
pub const PCI_SLOT: usize = 1;
/// Where BAR0 is placed before boot.
pub const BAR0_ADDR: u64 = 0xc000_0000;
/// Where BAR2 is placed before boot.
pub const BAR2_ADDR: u64 = 0xc000_1000;

/// Trace events drained from the model once this many wait in its buffer.
const DRAIN_AT: usize = 1 << 15;
/// Data one device-lock hold may move at most (about 0.1–1 ms of copying
/// here): the model runs in slices of this many bytes' worth of bursts,
/// and the lock is released between slices.
const SLICE_BYTES: u64 = 1 << 20;
/// Realtime: host ns the device lock's holder spins for an event about to
/// fall due rather than leaving it to the timer (`Dma::spin_due`).
const SPIN_NS: u64 = 5_000;
/// Realtime: host ns the device thread spins, in all, following one
/// stream of dense events (`Dma::follow`) before it leaves the rest to
/// the timer: a 64 KiB copy is ~8 µs of bursts, a 4 MiB one ~0.5 ms.
const FOLLOW_NS: u64 = 200_000;

/// A vCPU access this long or longer is reported to the guest as stolen
/// time (`Dma::access`): well above a plain exit's ~10 µs, so that the
/// usual access costs no steal-time update.
const HELD_FROM: Duration = Duration::from_micros(100);

/// Model events per slice: two per burst of `burst_bytes`, bounded.
fn slice_events(burst_bytes: u32) -> u64 {
    (2 * SLICE_BYTES / u64::from(burst_bytes.max(1))).clamp(16, 1 << 13)
}

/// `--doorbell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DoorbellMode {
    /// `TAIL` writes are KVM ioeventfds taken by the device thread.
    Ioeventfd,
    /// `TAIL` writes exit to the vCPU thread, which runs the doorbell.
    Exit,
}

impl DoorbellMode {
    pub fn name(self) -> &'static str {
        match self {
            DoorbellMode::Ioeventfd => "ioeventfd",
            DoorbellMode::Exit => "exit",
        }
    }
}

/// What `dmalab run` asks of the device.
#[derive(Debug, Clone)]
pub struct DmaOptions {
    pub timing: TimingMode,
    /// `--device-profile`: the timing model's parameters.
    pub profile: device_model::TimingConfig,
    pub doorbell: DoorbellMode,
    pub plan: FaultPlan,
    pub seed: u64,
    /// Keep trace events for `--trace`.
    pub keep_trace: bool,
    /// Stepped mode: the control socket's path.
    pub control: Option<PathBuf>,
    /// The VM's pause gate: the device listens to it, the control socket
    /// drives it.
    pub pause: Arc<PauseGate>,
    /// `--realtime-priority`: the device thread's SCHED_FIFO priority.
    pub realtime_priority: Option<u8>,
    /// `--realtime-spin`: µs the device thread wakes early and spins.
    pub realtime_spin_us: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad device configuration")]
    Config(#[source] device_model::ConfigError),
    #[error("cannot set up the device's interrupts")]
    Irq(#[source] msix_delivery::Error),
    #[error("cannot set up the device clock")]
    Clock(#[source] clock::Error),
    #[error("cannot set up the doorbells")]
    Doorbell(#[source] doorbell::Error),
    #[error("cannot place the device on PCI bus 0")]
    Pci(#[source] crate::devices::pci::Error),
    #[error("cannot map the device's BARs")]
    Bars(#[source] crate::devices::bus::Error),
    #[error("cannot start the device thread")]
    Thread(#[source] device_thread::Error),
    #[error("cannot create the watch eventfd")]
    WatchFd(#[source] std::io::Error),
}

impl Error {
    /// True for the user's mistakes (a `--control` path that cannot be
    /// bound): exit status 64.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Thread(
                device_thread::Error::Listen(..)
                    | device_thread::Error::NotASocket(_)
                    | device_thread::Error::InUse(_)
            )
        )
    }
}

/// The model as the VMM instantiates it.
pub type Model = Controller<GuestMemoryMmap, IrqRoutes>;

/// The device as the VMM's threads share it.
#[derive(Debug)]
pub struct Dma {
    state: parking_lot::Mutex<DeviceState>,
    /// Stepped mode: signalled when a step may have made the device idle.
    stepped: parking_lot::Condvar,
    /// Set when the run ends: waiting accesses stop waiting.
    stopping: AtomicBool,
    /// vCPU accesses waiting for steps now.
    waiting: AtomicUsize,
    /// A control-socket step is running (between its slices too): waiting
    /// accesses go on waiting, so they act where the whole step ends.
    stepping: AtomicBool,
    /// The VM is paused: device time stands still.
    paused: AtomicBool,
    /// Written when events wait for watchers (the device thread pushes
    /// them).
    pub watch_ready: vmm_sys_util::eventfd::EventFd,
    /// Model events per device-lock hold.
    slice: u64,
    /// How long the device lock was held (`--timings`).
    pub holds: HoldStats,
    pub clock: DeviceClock,
    pub doorbell: DoorbellMode,
    pub exits: RegisterExits,
    pub channels: u8,
}

impl Dma {
    /// The device lock.
    pub fn lock(&self) -> DeviceGuard<'_> {
        DeviceGuard::new(device_lock::lock_state(&self.state), &self.holds)
    }

    /// One vCPU access (register or config) under the device lock, with
    /// the clock handled as the timing mode says.
    ///
    /// An access that kept its vCPU out of the guest for `HELD_FROM` or
    /// more — waiting for the lock, catching the device up to host time,
    /// running it to idle — reports that span to the guest as stolen time
    /// (`pause::note_held`), as a stepped wait does: it is the VMM's work
    /// on the device's timeline (an interrupt storm's messages, a large
    /// copy), not time the guest's code ran, so a driver's verifier must
    /// not charge it to the routine that made the access.
    pub fn access<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let start = Instant::now();
        let mut st = self.lock();
        let mode = self.clock.mode();
        match mode {
            TimingMode::Realtime => st = self.catch_up(st),
            TimingMode::Stepped => st = self.wait_idle(st),
            TimingMode::Instant => {}
        }
        let r = f(&mut st.model);
        self.settle_sliced(st);
        let held = start.elapsed();
        if mode != TimingMode::Stepped && held >= HELD_FROM {
            crate::pause::note_held(held);
        }
        r
    }

    /// A doorbell from the device thread: as `access`, but never
    /// waits for steps (the same thread serves them).
    pub fn doorbell_access(&self, f: impl FnOnce(&mut Model)) {
        let mut st = self.lock();
        let realtime = self.clock.mode() == TimingMode::Realtime;
        if realtime {
            st = self.catch_up(st);
        }
        f(&mut st.model);
        if realtime && !self.stopping() {
            st = self.follow(st);
        }
        self.settle_sliced(st);
    }

    /// Channel `c`'s ioeventfd doorbell (the tail comes from the shadow),
    /// unless memory decoding is off.
    pub fn eventfd_doorbell(&self, c: u8) {
        self.doorbell_access(|m| {
            let mut command = [0u8; 2];
            m.config_read(4, &mut command);
            if command[0] & 0x2 != 0 {
                m.doorbell(c, None);
            }
        });
    }

    /// Whether the run is ending.
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Ends one lock hold between slices: drains the trace if it piles up,
    /// hands the lock to a waiting thread, takes it again.
    fn next_slice<'a>(&'a self, mut st: DeviceGuard<'a>) -> DeviceGuard<'a> {
        if st.model.trace_events().len() >= DRAIN_AT {
            st.drain();
        }
        st.yield_fair();
        st
    }

    /// `settle` for vCPU accesses and kicks: instant mode runs to idle a
    /// slice per lock hold, and stops early when the run ends.
    fn settle_sliced<'a>(&'a self, mut st: DeviceGuard<'a>) {
        if self.clock.mode() == TimingMode::Instant {
            while !self.stopping() && !st.model.run_slice(self.slice).done {
                st = self.next_slice(st);
            }
            self.drain_if_due(&mut st);
            return;
        }
        self.settle(&mut st);
    }

    /// Stepped mode: waits until the device has no pending event (or the
    /// run ends).
    fn wait_idle<'a>(&'a self, mut st: DeviceGuard<'a>) -> DeviceGuard<'a> {
        let busy = |st: &DeviceState| {
            st.model.next_event().is_some() || self.stepping.load(Ordering::Acquire)
        };
        if !busy(&st) {
            return st;
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let held = Instant::now();
        while busy(&st) && !self.stopping.load(Ordering::Acquire) {
            st = st.wait_timeout(&self.stepped, Duration::from_millis(50));
        }
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        // The vCPU ran no guest code meanwhile: steal time for the guest.
        crate::pause::note_held(held.elapsed());
        st
    }

    /// A control-socket step: the model to `cycle`, or to idle with
    /// `None`, a slice per lock hold (vCPU accesses keep waiting in
    /// between); stops early when the run ends.
    pub fn step<'a>(&'a self, mut st: DeviceGuard<'a>, cycle: Option<u64>) -> DeviceGuard<'a> {
        self.stepping.store(true, Ordering::Release);
        loop {
            let p = match cycle {
                Some(c) => st.model.advance_slice(c, self.slice),
                None => st.model.run_slice(self.slice),
            };
            if p.done || self.stopping() {
                break;
            }
            st = self.next_slice(st);
        }
        self.stepping.store(false, Ordering::Release);
        st
    }

    /// vCPU accesses waiting for steps now (stepped mode).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Wakes vCPU accesses waiting for steps (after a step).
    pub fn stepped(&self) {
        self.stepped.notify_all();
    }

    /// The run is over: nothing waits for steps any more.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stepped.notify_all();
    }

    /// After an access or a step: run to idle (instant) or re-arm the
    /// timer (realtime); drain the trace if it piles up, or at once while
    /// someone watches. Once the run is stopping, only the drain.
    pub fn settle(&self, st: &mut DeviceState) {
        match self.clock.mode() {
            _ if self.stopping() => {}
            TimingMode::Instant => {
                st.model.run_until_idle();
            }
            TimingMode::Realtime => {
                self.spin_due(st);
                self.rearm(st);
            }
            TimingMode::Stepped => {}
        }
        self.drain_if_due(st);
    }

    /// Drains the trace if it piles up or someone watches; tells the
    /// device thread when events wait for watchers.
    pub fn drain_if_due(&self, st: &mut DeviceState) {
        let watching = st.watch.watchers > 0;
        if watching || st.model.trace_events().len() >= DRAIN_AT {
            st.drain();
        }
        if watching && !st.watch.events.is_empty() {
            let _ = self.watch_ready.write(1);
        }
    }

    /// Whether the VM is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// A doorbell from the device thread while the VM is paused: rung on
    /// resume (device time does not move while paused).
    pub fn defer_doorbell(&self, channel: u8) {
        if channel < 64 {
            self.lock().deferred |= 1 << channel;
        }
    }
}

impl PauseListener for Dma {
    fn paused(&self) {
        let mut st = self.lock();
        self.paused.store(true, Ordering::Release);
        if self.clock.mode() == TimingMode::Realtime {
            if let Err(e) = self.clock.freeze() {
                log::warn!("device timer: {e}");
            }
            st.armed = None;
        }
    }

    fn resumed(&self) {
        let mut st = self.lock();
        self.clock.thaw();
        self.paused.store(false, Ordering::Release);
        let deferred = std::mem::take(&mut st.deferred);
        drop(st);
        for c in (0..self.channels).filter(|c| deferred & (1 << c) != 0) {
            self.eventfd_doorbell(c);
        }
        let mut st = self.lock();
        self.settle(&mut st);
    }

    fn held_vcpus(&self) -> usize {
        self.waiting()
    }
}

/// The device wired into a VM: its shared state and its thread.
#[derive(Debug)]
pub struct DmaDevice {
    pub dma: Arc<Dma>,
    pub thread: device_thread::DeviceThread,
}

impl DmaDevice {
    /// Builds the model over `memory`, puts it at 00:01.0 on `pci`, maps
    /// its BARs on `mmio`, and starts the device thread.
    pub fn attach(
        vm: &Arc<VmFd>,
        memory: &GuestMemoryMmap,
        pci: &mut PciBus,
        mmio: &MmioBus,
        options: &DmaOptions,
    ) -> Result<Self, Error> {
        let config = DeviceConfig {
            timing: options.profile,
            ..DeviceConfig::default()
        };
        config.validate().map_err(Error::Config)?;
        let mut irq = IrqRoutes::new(vm.clone(), config.vectors()).map_err(Error::Irq)?;
        if options.timing == TimingMode::Realtime {
            irq.keep_sends();
        }
        let model = Controller::new(config, memory.clone(), irq)
            .map_err(Error::Config)?
            .with_faults(FaultEngine::new(options.plan.clone(), options.seed));
        let clock = DeviceClock::new(options.timing, config.timing)
            .map_err(Error::Clock)?
            .with_lead(u64::from(options.realtime_spin_us) * 1000);
        let dma = Arc::new(Dma {
            state: parking_lot::Mutex::new(DeviceState {
                model,
                tally: Tally::default(),
                kept: options.keep_trace.then(Vec::new),
                kept_lost: 0,
                scratch: Vec::with_capacity(DRAIN_AT),
                armed: None,
                deferred: 0,
                started: Instant::now(),
                last_completion: vec![None; usize::from(config.channels)],
                planned_rules: options.plan.rules.len(),
                injected: Vec::new(),
                watch: watch::WatchQueue::default(),
                recording: None,
                lateness: if options.keep_trace {
                    lateness::LatenessTally::with_samples(device_state::KEEP_AT_MOST)
                } else {
                    lateness::LatenessTally::default()
                },
                sends: Vec::new(),
                send_ns: Vec::new(),
                release_ns: Vec::new(),
            }),
            stepped: parking_lot::Condvar::new(),
            stopping: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            stepping: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            watch_ready: vmm_sys_util::eventfd::EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK)
                .map_err(Error::WatchFd)?,
            slice: slice_events(config.timing.burst_bytes),
            holds: HoldStats::default(),
            clock,
            doorbell: options.doorbell,
            exits: RegisterExits::default(),
            channels: config.channels,
        });
        let doorbells = match options.doorbell {
            DoorbellMode::Ioeventfd => Some(
                doorbell::Doorbells::new(vm.clone(), config.channels).map_err(Error::Doorbell)?,
            ),
            DoorbellMode::Exit => None,
        };
        let doorbell_fds = match &doorbells {
            Some(d) => d.clones().map_err(Error::Doorbell)?,
            None => Vec::new(),
        };
        options.pause.add_listener(dma.clone());
        let mut adapter = pci_adapter::DmaPci::new(dma.clone(), mmio.clone(), doorbells);
        adapter.place_initial_bars().map_err(Error::Bars)?;
        pci.add(PCI_SLOT, Arc::new(Mutex::new(adapter)))
            .map_err(Error::Pci)?;
        let thread = device_thread::DeviceThread::start(dma.clone(), doorbell_fds, options)
            .map_err(Error::Thread)?;
        Ok(Self { dma, thread })
    }
}

/// Logs guest misbehaviour around the device (rate-limited).
pub(crate) fn guest_warn(args: std::fmt::Arguments<'_>) {
    guest_log::warn(args);
}

#[cfg(test)]
mod long_work_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod timing_tests;
