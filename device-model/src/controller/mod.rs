//! The top-level device: construction, config space, the BAR0/BAR2
//! dispatch, and the clock (whole runs and bounded slices).
//!
//! The VMM drives it with four kinds of calls: register accesses
//! ([`Controller::config_read`]/[`config_write`](Controller::config_write),
//! [`mmio_read`](Controller::mmio_read)/[`mmio_write`](Controller::mmio_write)),
//! value-less doorbells ([`doorbell`](Controller::doorbell)), and time
//! ([`next_event`](Controller::next_event), [`advance_to`](Controller::advance_to)).
//! Register accesses act at the current device cycle; the caller advances
//! the clock first if it models time. The pipeline's event handlers live in
//! `pipeline.rs`, the doorbell in `doorbell.rs`, memory access in
//! `guest_mem.rs`; the fields are private to this module and those files.

mod bar0;
mod channel;
mod channel_ctrl;
mod doorbell;
mod guest_mem;
mod interrupts;
mod pipeline;

use vm_memory::GuestMemory;

use self::channel::{Channel, NEVER};
use self::guest_mem::GuestMem;
use self::interrupts::Causes;
use crate::config::{ConfigError, DeviceConfig};
use crate::fault::{AppliedFault, FaultEngine};
use crate::interrupt_sink::{InterruptSink, MsiMessage};
use crate::pci::{BarReprogrammed, PciFunction};
use crate::trace::{chrome, AccessError, Counters, EventKind, Space, Trace, TraceEvent};

/// How far a bounded call ([`Controller::run_slice`],
/// [`Controller::advance_slice`]) got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events processed.
    pub events: u64,
    /// The goal was reached: the device is idle (`run_slice`), or no event
    /// is due and the clock is at the target cycle (`advance_slice`).
    pub done: bool,
}

/// The DMA controller.
///
/// ```
/// use device_model::{Controller, DeviceConfig, RecordingSink};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
/// let mut dev = Controller::new(DeviceConfig::default(), mem, RecordingSink::default()).unwrap();
/// let mut id = [0u8; 4];
/// dev.config_write(4, &[0x06, 0]); // memory space + bus master
/// dev.mmio_read(0, 0x000, &mut id);
/// assert_eq!(u32::from_le_bytes(id), 0x4C41_4D44);
/// assert_eq!(dev.next_event(), None);
/// ```
pub struct Controller<M: GuestMemory, S: InterruptSink> {
    cfg: DeviceConfig,
    guest: GuestMem<M>,
    irq: S,
    pci: PciFunction,
    channels: Vec<Channel>,
    faults: FaultEngine,
    fault_buf: Vec<AppliedFault>,
    trace: Trace,
    now: u64,
    next_seq: u64,
    causes: Causes,
    bad_access: u32,
    removed: bool,
    bus_owner: Option<u8>,
    full_burst_cycles: u64,
}

impl<M: GuestMemory, S: InterruptSink> std::fmt::Debug for Controller<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("now", &self.now)
            .field("channels", &self.channels.len())
            .field("next_seq", &self.next_seq)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

impl<M: GuestMemory, S: InterruptSink> Controller<M, S> {
    /// A device at power-on over guest memory `mem`, signalling through
    /// `irq`, with no fault rules.
    pub fn new(cfg: DeviceConfig, mem: M, irq: S) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let burst = cfg.timing.burst_bytes as usize;
        Ok(Controller {
            pci: PciFunction::new(cfg.vectors()),
            channels: (0..cfg.channels).map(|_| Channel::new()).collect(),
            faults: FaultEngine::disabled(),
            fault_buf: Vec::with_capacity(8),
            trace: Trace::new(cfg.trace_capacity, cfg.trace, cfg.channels),
            now: 0,
            next_seq: 1,
            causes: Causes::default(),
            bad_access: 0,
            removed: false,
            bus_owner: None,
            full_burst_cycles: cfg.timing.burst_cycles(cfg.timing.burst_bytes),
            cfg,
            guest: GuestMem::new(mem, burst),
            irq,
        })
    }

    /// Replaces the fault engine (builder style).
    pub fn with_faults(mut self, engine: FaultEngine) -> Self {
        self.faults = engine;
        self
    }

    /// The fault engine (to add rules at run time).
    pub fn faults_mut(&mut self) -> &mut FaultEngine {
        &mut self.faults
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// Guest memory.
    pub fn memory(&self) -> &M {
        self.guest.memory()
    }

    /// The interrupt sink.
    pub fn interrupts(&self) -> &S {
        &self.irq
    }

    /// The interrupt sink, mutably.
    pub fn interrupts_mut(&mut self) -> &mut S {
        &mut self.irq
    }

    /// The current device cycle.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Whether the device was surprise-removed.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// BAR0 and BAR2 as (index, guest address, size).
    pub fn bars(&self) -> [(u8, u64, u64); 2] {
        self.pci.bars()
    }

    /// Trace events recorded since the last drain.
    pub fn trace_events(&self) -> &[TraceEvent] {
        self.trace.events()
    }

    /// Moves recorded trace events to `out` (the buffer keeps its memory).
    pub fn drain_trace(&mut self, out: &mut Vec<TraceEvent>) {
        self.trace.drain_into(out);
    }

    /// Events lost because the trace buffer was full.
    pub fn trace_lost(&self) -> u64 {
        self.trace.lost()
    }

    /// Exact counters of what the device did since power-on, whatever the
    /// trace buffer lost.
    pub fn counters(&self) -> &Counters {
        self.trace.counters()
    }

    /// Turns trace recording on or off.
    pub fn set_trace_enabled(&mut self, on: bool) {
        self.trace.set_enabled(on);
    }

    /// Renders `events` (drained from this device) as Chrome trace JSON.
    pub fn chrome_json(&self, events: &[TraceEvent]) -> String {
        chrome::to_chrome_json(events, self.cfg.channels, self.cfg.timing.clock_hz)
    }

    fn bad(&mut self, space: Space, offset: u64, size: usize, error: AccessError) {
        self.bad_access = self.bad_access.saturating_add(1);
        let size = u8::try_from(size).unwrap_or(u8::MAX);
        self.trace.push(
            self.now,
            EventKind::RegisterError {
                space,
                offset,
                size,
                error,
            },
        );
    }

    // ---- config space -------------------------------------------------

    /// A guest config-space read. Bad sizes/offsets and a removed device
    /// read all ones.
    pub fn config_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xFF);
        if self.removed {
            return;
        }
        if !PciFunction::config_access_ok(offset, data.len()) {
            return self.bad(Space::Config, offset, data.len(), AccessError::BadSize);
        }
        self.pci
            .config()
            .read(usize::try_from(offset).unwrap_or(usize::MAX), data);
    }

    /// A guest config-space write; returns the BAR that moved, if any.
    pub fn config_write(&mut self, offset: u64, data: &[u8]) -> Option<BarReprogrammed> {
        if self.removed {
            return None;
        }
        if !PciFunction::config_access_ok(offset, data.len()) {
            self.bad(Space::Config, offset, data.len(), AccessError::BadSize);
            return None;
        }
        let was_bus_master = self.pci.config().bus_master();
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        let fx = self
            .pci
            .config_write(at, data, &mut self.irq, &mut self.trace, self.now);
        if fx.flr {
            self.function_level_reset();
            return None;
        }
        if !was_bus_master && self.pci.config().bus_master() {
            self.pci
                .release_pending(&mut self.irq, &mut self.trace, self.now);
        }
        fx.bar
    }

    fn function_level_reset(&mut self) {
        self.device_reset();
        self.pci.reset(&mut self.irq);
        self.trace.push(self.now, EventKind::Reset { flr: true });
    }

    /// `GCTRL.RESET`: every channel reset, global registers cleared.
    fn device_reset(&mut self) {
        for c in &mut self.channels {
            c.reset();
        }
        self.bus_owner = None;
        self.causes = Causes::default();
        self.bad_access = 0;
        self.trace.push(self.now, EventKind::Reset { flr: false });
    }

    // ---- BARs ---------------------------------------------------------

    /// A guest read of BAR `bar` (0 or 2) at `offset` within it.
    pub fn mmio_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if self.removed {
            return data.fill(0xFF);
        }
        let space = if bar == 2 { Space::Bar2 } else { Space::Bar0 };
        if !self.pci.config().memory_enabled() {
            data.fill(0xFF);
            return self.bad(space, offset, data.len(), AccessError::NotDecoded);
        }
        data.fill(0);
        match bar {
            0 => self.bar0_read(offset, data),
            2 => {
                if self.pci.bar2_read(offset, data).is_err() {
                    data.fill(0);
                    self.bad(Space::Bar2, offset, data.len(), AccessError::BadSize);
                }
            }
            _ => self.bad(Space::Bar0, offset, data.len(), AccessError::NoRegister),
        }
    }

    /// BAR0's 32-bit register at `offset` as a guest read would see it, with
    /// no trace event and no state change (for debuggers; `None` where no
    /// register is).
    pub fn peek_bar0(&self, offset: u64) -> Option<u32> {
        self.read_dword(offset)
    }

    /// MSI-X vector `v`'s entry: its message, whether it is masked, and
    /// its pending bit (for debuggers; `None` past the table).
    pub fn peek_msix(&self, v: usize) -> Option<(MsiMessage, bool, bool)> {
        let t = self.pci.msix();
        Some((t.message(v)?, t.masked(v), t.pending(v)))
    }

    /// A guest write to BAR `bar` (0 or 2) at `offset` within it.
    pub fn mmio_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if self.removed {
            return;
        }
        let space = if bar == 2 { Space::Bar2 } else { Space::Bar0 };
        if !self.pci.config().memory_enabled() {
            return self.bad(space, offset, data.len(), AccessError::NotDecoded);
        }
        match bar {
            0 => self.bar0_write(offset, data),
            2 => {
                let r = self
                    .pci
                    .bar2_write(offset, data, &mut self.irq, &mut self.trace, self.now);
                if r.is_err() {
                    self.bad(Space::Bar2, offset, data.len(), AccessError::BadSize);
                }
            }
            _ => self.bad(Space::Bar0, offset, data.len(), AccessError::NoRegister),
        }
    }

    /// The next cycle at which something happens, or `None` when idle.
    pub fn next_event(&self) -> Option<u64> {
        let t = self
            .channels
            .iter()
            .map(|c| c.next_timer().0)
            .min()
            .unwrap_or(NEVER);
        (t != NEVER).then_some(t)
    }

    /// Processes every event due at or before `cycle`, in order, then sets
    /// the clock to `cycle` (never backwards). Advancing in several steps
    /// gives the same cycle stamps as advancing at once.
    ///
    /// ```
    /// use device_model::{Controller, DeviceConfig, RecordingSink};
    /// use vm_memory::{GuestAddress, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
    /// let mut dev = Controller::new(DeviceConfig::default(), mem, RecordingSink::default()).unwrap();
    /// dev.advance_to(1_000);
    /// dev.advance_to(10); // never backwards
    /// assert_eq!(dev.now(), 1_000);
    /// ```
    pub fn advance_to(&mut self, cycle: u64) {
        self.process(cycle, u64::MAX);
        self.now = self.now.max(cycle);
    }

    /// Instant mode: processes events until none is left; returns the
    /// number of events processed.
    pub fn run_until_idle(&mut self) -> u64 {
        self.process(NEVER, u64::MAX)
    }

    /// [`advance_to`](Self::advance_to) in bounded slices: processes at
    /// most `max_events` of the events due at or before `cycle`; once none
    /// is left due, sets the clock to `cycle`. Each event does a bounded
    /// amount of work (at most one burst of data), so a caller holding a
    /// lock can release it between slices. Calling it until `done` gives
    /// the same cycle stamps, trace and memory as one `advance_to`.
    ///
    /// ```
    /// use device_model::{Controller, DeviceConfig, RecordingSink};
    /// use vm_memory::{GuestAddress, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
    /// let mut dev = Controller::new(DeviceConfig::default(), mem, RecordingSink::default()).unwrap();
    /// let p = dev.advance_slice(1_000, 16);
    /// assert!(p.done && p.events == 0 && dev.now() == 1_000);
    /// ```
    pub fn advance_slice(&mut self, cycle: u64, max_events: u64) -> Progress {
        let events = self.process(cycle, max_events);
        let done = self.earliest().is_none_or(|(t, _, _)| t > cycle);
        if done {
            self.now = self.now.max(cycle);
        }
        Progress { events, done }
    }

    /// [`run_until_idle`](Self::run_until_idle) in bounded slices: at most
    /// `max_events` events; `done` once the device is idle. Calling it
    /// until `done` gives the same result as one `run_until_idle`.
    pub fn run_slice(&mut self, max_events: u64) -> Progress {
        let events = self.process(NEVER, max_events);
        let done = self.earliest().is_none();
        Progress { events, done }
    }

    /// Processes up to `max_events` events due at or before `until`, in
    /// order (earliest first; ties by channel, then timer slot). Returns
    /// how many it processed.
    fn process(&mut self, until: u64, max_events: u64) -> u64 {
        let mut n = 0;
        while n < max_events {
            let Some((t, c, slot)) = self.earliest() else {
                break;
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.channels[usize::from(c)].timers[slot] = NEVER;
            self.dispatch(c, slot);
            n += 1;
            if slot == channel::T_BURST {
                n += self.burst_streak(until, max_events - n);
            }
        }
        self.guest.flush();
        n
    }

    /// After a burst: the bursts that follow it on the bus, whichever
    /// channel owns the bus for each (channels interleave round robin), as
    /// long as each is the next event of all (strictly before every other
    /// timer, so ties still go through `process`'s order) and due by
    /// `until`, without a scan of every timer per burst. The bus has one
    /// owner at a time, so at most one burst timer is armed: the others
    /// are scanned once. Processes exactly what `process` would, in the
    /// same order; stops when a burst ends its transfer (which arms other
    /// timers) or the bus goes idle. Returns the events processed (at
    /// most `budget`).
    fn burst_streak(&mut self, until: u64, budget: u64) -> u64 {
        let mut other = None;
        let mut n = 0;
        while n < budget {
            let Some(c) = self.bus_owner else {
                break;
            };
            let i = usize::from(c);
            let Some(seq) = self.channels[i].active.map(|a| a.seq) else {
                break;
            };
            let t = self.channels[i].timers[channel::T_BURST];
            if t > until || t >= *other.get_or_insert_with(|| self.earliest_but_bursts()) {
                break;
            }
            self.now = self.now.max(t);
            self.channels[i].timers[channel::T_BURST] = NEVER;
            self.dispatch(c, channel::T_BURST);
            n += 1;
            if self.channels[i].active.map(|a| a.seq) != Some(seq) {
                break;
            }
        }
        n
    }

    /// The earliest armed timer that is not a burst's (`NEVER` if none).
    fn earliest_but_bursts(&self) -> u64 {
        self.channels
            .iter()
            .flat_map(|ch| {
                ch.timers
                    .iter()
                    .enumerate()
                    .filter(|&(slot, _)| slot != channel::T_BURST)
                    .map(|(_, &t)| t)
            })
            .min()
            .unwrap_or(NEVER)
    }

    #[inline]
    fn earliest(&self) -> Option<(u64, u8, usize)> {
        let mut best = (NEVER, 0, 0);
        for (c, ch) in (0u8..).zip(self.channels.iter()) {
            let (t, slot) = ch.next_timer();
            if t < best.0 {
                best = (t, c, slot);
            }
        }
        (best.0 != NEVER).then_some(best)
    }
}
