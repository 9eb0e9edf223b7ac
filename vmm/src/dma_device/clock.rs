//! The device's clock in each timing mode, and the timerfd that wakes the
//! device thread in realtime mode.
//!
//! - `instant`: no modelled delay. After every register access, doorbell
//!   or config write the caller runs the model to idle (`run_slice` until
//!   done, releasing the device lock between slices), so device time is
//!   always the stamp of the last event processed.
//! - `realtime`: device cycle = host nanoseconds since the VM was built
//!   (CLOCK_MONOTONIC), converted with `TimingConfig::cycles_from_nanos`.
//!   Before every register access the model is advanced to "now"; after
//!   it, the model's next event is armed on a timerfd (absolute
//!   CLOCK_MONOTONIC deadline) that the device thread waits on.
//! - `stepped`: time moves only when the control socket asks; register
//!   accesses act at whatever cycle the model stands.
//!
//! A VM pause (`pause.rs`) freezes the realtime clock: `now_cycles` stays
//! at the cycle of the pause and the timer is disarmed; `thaw` moves the
//! origin forward by the paused span, so device time did not move.
//!
//! Nothing here stamps the trace: trace stamps are device cycles only.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use device_model::TimingConfig;

/// `--timing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingMode {
    /// Events complete as fast as the host can copy.
    Instant,
    /// Events are released when host time reaches their modelled time.
    Realtime,
    /// Time moves only when asked over the control socket.
    Stepped,
}

impl TimingMode {
    pub fn name(self) -> &'static str {
        match self {
            TimingMode::Instant => "instant",
            TimingMode::Realtime => "realtime",
            TimingMode::Stepped => "stepped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the device timerfd")]
    Create(#[source] std::io::Error),
    #[error("cannot arm the device timerfd")]
    Arm(#[source] std::io::Error),
}

/// Host monotonic time in ns.
pub(super) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Host time ↔ device cycles, and the realtime wake-up timer.
#[derive(Debug)]
pub struct DeviceClock {
    mode: TimingMode,
    timing: TimingConfig,
    /// CLOCK_MONOTONIC ns at device cycle 0 (moved forward by pauses).
    origin_ns: AtomicU64,
    /// CLOCK_MONOTONIC ns when the clock was frozen; 0 while it runs.
    frozen_at: AtomicU64,
    timer: OwnedFd,
    /// Realtime: how long before an event's modelled time the timer fires
    /// (`--realtime-spin`); the device thread spins the rest.
    lead_ns: u64,
}

impl DeviceClock {
    pub fn new(mode: TimingMode, timing: TimingConfig) -> Result<Self, Error> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let timer = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            mode,
            timing,
            origin_ns: AtomicU64::new(monotonic_ns()),
            frozen_at: AtomicU64::new(0),
            timer,
            lead_ns: 0,
        })
    }

    /// The timer fires `lead_ns` before each event's modelled time
    /// (`--realtime-spin`: the wake-up's own latency is spent early, the
    /// rest spun).
    pub fn with_lead(mut self, lead_ns: u64) -> Self {
        self.lead_ns = lead_ns;
        self
    }

    /// How long before an event the timer fires.
    pub fn lead_ns(&self) -> u64 {
        self.lead_ns
    }

    pub fn mode(&self) -> TimingMode {
        self.mode
    }

    /// Realtime: the device cycle host time has reached (the cycle of the
    /// pause while frozen).
    pub fn now_cycles(&self) -> u64 {
        self.timing.cycles_from_nanos(self.elapsed_ns())
    }

    /// Realtime: host ns since device cycle 0 (paused spans left out).
    pub fn elapsed_ns(&self) -> u64 {
        let now = match self.frozen_at.load(Ordering::Acquire) {
            0 => monotonic_ns(),
            at => at,
        };
        now.saturating_sub(self.origin_ns.load(Ordering::Acquire))
    }

    /// Host ns since device cycle 0 at CLOCK_MONOTONIC `mono_ns` (a time
    /// taken while the clock ran).
    pub fn since_origin(&self, mono_ns: u64) -> u64 {
        mono_ns.saturating_sub(self.origin_ns.load(Ordering::Acquire))
    }

    /// Modelled ns of device `cycle` since cycle 0.
    pub fn modelled_ns(&self, cycle: u64) -> u64 {
        self.timing.nanos_from_cycles(cycle)
    }

    /// Stops device time (a VM pause) and disarms the timer.
    pub fn freeze(&self) -> Result<(), Error> {
        let _ = self.frozen_at.compare_exchange(
            0,
            monotonic_ns().max(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.settime(0)
    }

    /// Restarts device time where `freeze` stopped it. The caller re-arms.
    pub fn thaw(&self) {
        let at = self.frozen_at.swap(0, Ordering::AcqRel);
        if at != 0 {
            let span = monotonic_ns().saturating_sub(at);
            self.origin_ns.fetch_add(span, Ordering::AcqRel);
        }
    }

    /// Whether `freeze` stopped the clock.
    pub fn frozen(&self) -> bool {
        self.frozen_at.load(Ordering::Acquire) != 0
    }

    /// Arms the timer to fire when host time reaches device `cycle`, less
    /// the lead (at once if it already has).
    pub fn arm_at(&self, cycle: u64) -> Result<(), Error> {
        // One ns late rather than early: `nanos_from_cycles` rounds down, and
        // a wake-up before `cycle` would find nothing due and re-arm at once
        // (with a lead, the wake-up spins until `cycle` instead).
        let ns = self
            .origin_ns
            .load(Ordering::Acquire)
            .saturating_add(self.timing.nanos_from_cycles(cycle))
            .saturating_add(1)
            .saturating_sub(self.lead_ns)
            .max(1);
        self.settime(ns)
    }

    /// Sets the timer to absolute CLOCK_MONOTONIC `ns`; 0 disarms it.
    fn settime(&self, ns: u64) -> Result<(), Error> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(ns / 1_000_000_000).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::try_from(ns % 1_000_000_000).unwrap_or(0),
            },
        };
        // SAFETY: `timer` is our timerfd; `spec` is a valid itimerspec and
        // the old value is not asked for.
        let r = unsafe {
            libc::timerfd_settime(
                self.timer.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(Error::Arm(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Consumes the timer's expiry count (after epoll said it is readable).
    pub fn acknowledge(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `buf` from our timerfd; a
        // nonblocking read with nothing pending fails with EAGAIN, ignored.
        let _ = unsafe { libc::read(self.timer.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }
}

impl AsRawFd for DeviceClock {
    fn as_raw_fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_cycles_advance_with_host_time_and_the_timer_fires() {
        let clock = DeviceClock::new(TimingMode::Realtime, TimingConfig::default()).unwrap();
        let a = clock.now_cycles();
        let b = clock.now_cycles();
        assert!(b >= a);
        // A deadline already passed fires at once: the fd becomes readable.
        clock.arm_at(0).unwrap();
        let mut pfd = libc::pollfd {
            fd: clock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a bounded wait.
        let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
        assert_eq!(n, 1, "an expired deadline makes the timerfd readable");
        clock.acknowledge();
        // SAFETY: as above, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        assert_eq!(n, 0, "acknowledged");
    }

    #[test]
    fn a_frozen_clock_stands_still_and_thaws_without_a_jump() {
        let clock = DeviceClock::new(TimingMode::Realtime, TimingConfig::default()).unwrap();
        clock.freeze().unwrap();
        let at = clock.now_cycles();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(clock.now_cycles(), at, "no time passes while frozen");
        clock.thaw();
        let after = clock.now_cycles();
        let twenty_ms = TimingConfig::default().cycles_from_nanos(20_000_000);
        assert!(after >= at && after - at < twenty_ms, "{at} -> {after}");
    }
}
