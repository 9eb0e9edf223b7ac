//! Rate-limited logging of guest misbehaviour (QEMU's `LOG_GUEST_ERROR`): an
//! access to a port or address nothing models, a malformed register write.
//! The first `BUDGET` messages are logged with `log::warn!`, then one line
//! says the rest are suppressed. A hostile guest cannot flood stderr or slow
//! the exit path with formatting.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Messages logged before suppression starts.
pub const BUDGET: u32 = 32;

static LOGGED: AtomicU32 = AtomicU32::new(0);

/// Logs `args` as a guest error, unless the budget is spent.
pub fn warn(args: fmt::Arguments<'_>) {
    let n = LOGGED.fetch_add(1, Ordering::Relaxed);
    if n < BUDGET {
        log::warn!("guest: {args}");
    } else if n == BUDGET {
        log::warn!("guest: further unmodelled accesses are not logged");
    }
}

/// How many guest errors were reported so far (logged or not).
pub fn count() -> u32 {
    LOGGED.load(Ordering::Relaxed)
}
