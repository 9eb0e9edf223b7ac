//! The device lock's guard, which measures how long each hold lasts.
//!
//! The model works under the device lock, so the longest hold is how long
//! a vCPU (or the device thread) may wait for the device: the bound the
//! slicing in `mod.rs` promises. Every hold is timed from the moment the
//! lock is taken to the guard's drop (or to a condition-variable wait,
//! which releases the lock); `--timings` prints the longest and the count.
//! A hold is measured twice: in host time (what a waiting thread waits,
//! including any time the holder was preempted: on a loaded 2-core host
//! that dominates) and in the holder's CPU time (the work done under the
//! lock). Two clock reads of each kind per hold (~1 µs together) against
//! the ~11 µs of the exit that usually causes it.
//!
//! The lock is fair where it matters. The device thread and a vCPU in
//! realtime catch-up work in slices, dropping the lock between them; with
//! an unfair lock the dropper takes it straight back while the woken
//! waiter is still being scheduled, and on a loaded host a vCPU's register
//! access waited seconds that way. Between slices the lock is handed to
//! the longest waiter (`DeviceGuard::yield_fair`), and parking_lot's
//! eventual fairness bounds every other hand-over to about 0.5 ms.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::DeviceState;

/// How long the device lock was held: the longest hold and the count.
#[derive(Debug, Default)]
pub struct HoldStats {
    longest_ns: AtomicU64,
    longest_cpu_ns: AtomicU64,
    holds: AtomicU64,
}

impl HoldStats {
    fn record(&self, since: &Since) {
        let ns = u64::try_from(since.host.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.longest_ns.fetch_max(ns, Ordering::Relaxed);
        let cpu = thread_cpu_ns().saturating_sub(since.cpu_ns);
        self.longest_cpu_ns.fetch_max(cpu, Ordering::Relaxed);
        self.holds.fetch_add(1, Ordering::Relaxed);
    }

    /// The longest hold so far, in host time.
    pub fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_ns.load(Ordering::Relaxed))
    }

    /// The longest hold so far, in the holder's CPU time.
    pub fn longest_cpu(&self) -> Duration {
        Duration::from_nanos(self.longest_cpu_ns.load(Ordering::Relaxed))
    }

    /// Holds so far.
    pub fn holds(&self) -> u64 {
        self.holds.load(Ordering::Relaxed)
    }
}

/// When a hold began.
#[derive(Debug)]
struct Since {
    host: Instant,
    cpu_ns: u64,
}

impl Since {
    fn now() -> Self {
        Self {
            host: Instant::now(),
            cpu_ns: thread_cpu_ns(),
        }
    }
}

/// This thread's CPU time in ns (0 if the clock cannot be read).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The device lock, held; the hold is recorded when it ends.
pub struct DeviceGuard<'a> {
    guard: Option<MutexGuard<'a, DeviceState>>,
    since: Since,
    stats: &'a HoldStats,
}

impl<'a> DeviceGuard<'a> {
    pub(super) fn new(guard: MutexGuard<'a, DeviceState>, stats: &'a HoldStats) -> Self {
        Self {
            guard: Some(guard),
            since: Since::now(),
            stats,
        }
    }

    /// Waits on `cv` (the lock released meanwhile, so that time is not a
    /// hold) for at most `timeout`.
    pub(super) fn wait_timeout(mut self, cv: &Condvar, timeout: Duration) -> Self {
        self.stats.record(&self.since);
        let guard = self.held();
        cv.wait_for(guard, timeout);
        self.since = Since::now();
        self
    }

    /// Ends this hold and hands the lock to the longest waiter, if any,
    /// before taking it again (at the back of the queue): between slices
    /// of long work, so that waiting threads get in at once.
    pub(super) fn yield_fair(&mut self) {
        self.stats.record(&self.since);
        MutexGuard::unlocked_fair(self.held(), || ());
        self.since = Since::now();
    }

    fn held(&mut self) -> &mut MutexGuard<'a, DeviceState> {
        self.guard
            .as_mut()
            .expect("a guard holds the lock until dropped")
    }
}

impl Deref for DeviceGuard<'_> {
    type Target = DeviceState;
    fn deref(&self) -> &DeviceState {
        self.guard
            .as_deref()
            .expect("a guard holds the lock until dropped")
    }
}

impl DerefMut for DeviceGuard<'_> {
    fn deref_mut(&mut self) -> &mut DeviceState {
        self.guard
            .as_deref_mut()
            .expect("a guard holds the lock until dropped")
    }
}

impl Drop for DeviceGuard<'_> {
    fn drop(&mut self) {
        if self.guard.take().is_some() {
            self.stats.record(&self.since);
        }
    }
}

impl std::fmt::Debug for DeviceGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceGuard")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// Takes the device lock (parking_lot: no poisoning; a panicked holder
/// left the model as it was and the run is ending anyway).
pub(super) fn lock_state(m: &Mutex<DeviceState>) -> MutexGuard<'_, DeviceState> {
    m.lock()
}
