//! The device lock's guard, which measures how long each hold lasts.
//!
//! The model works under the device lock, so the longest hold is how long
//! a vCPU (or the device thread) may wait for the device: the bound the
//! slicing in `mod.rs` promises. Every hold is timed from the moment the
//! lock is taken to the guard's drop (or to a condition-variable wait,
//! which releases the lock); `--timings` prints the longest and the count.
//! Two `Instant::now()` per hold (~50 ns) against the ~11 µs of the exit
//! that usually causes it.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::DeviceState;

/// How long the device lock was held: the longest hold and the count.
#[derive(Debug, Default)]
pub struct HoldStats {
    longest_ns: AtomicU64,
    holds: AtomicU64,
}

impl HoldStats {
    fn record(&self, held: Duration) {
        let ns = u64::try_from(held.as_nanos()).unwrap_or(u64::MAX);
        self.longest_ns.fetch_max(ns, Ordering::Relaxed);
        self.holds.fetch_add(1, Ordering::Relaxed);
    }

    /// The longest hold so far.
    pub fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_ns.load(Ordering::Relaxed))
    }

    /// Holds so far.
    pub fn holds(&self) -> u64 {
        self.holds.load(Ordering::Relaxed)
    }
}

/// The device lock, held; the hold is recorded when it ends.
pub struct DeviceGuard<'a> {
    guard: Option<MutexGuard<'a, DeviceState>>,
    since: Instant,
    stats: &'a HoldStats,
}

impl<'a> DeviceGuard<'a> {
    pub(super) fn new(guard: MutexGuard<'a, DeviceState>, stats: &'a HoldStats) -> Self {
        Self {
            guard: Some(guard),
            since: Instant::now(),
            stats,
        }
    }

    /// Waits on `cv` (the lock released meanwhile, so that time is not a
    /// hold) for at most `timeout`.
    pub(super) fn wait_timeout(mut self, cv: &Condvar, timeout: Duration) -> Self {
        self.stats.record(self.since.elapsed());
        let guard = self
            .guard
            .take()
            .expect("a guard holds the lock until dropped");
        let guard = match cv.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(poisoned) => poisoned.into_inner().0,
        };
        Self::new(guard, self.stats)
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
            self.stats.record(self.since.elapsed());
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

/// `Mutex::lock` that survives a poisoned lock (a panicked holder left the
/// model as it was; the run is ending anyway).
pub(super) fn lock_state(m: &std::sync::Mutex<DeviceState>) -> MutexGuard<'_, DeviceState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
