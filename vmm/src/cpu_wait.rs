//! How long the VM's threads waited for a host CPU: the part of a run's
//! wall-clock time the guest did not get because the host was busy.
//!
//! `--timeout` is wall-clock time, but on a loaded host a vCPU thread can
//! spend seconds runnable and not running, and a guest that needs one
//! second alone then times out. Linux counts that wait per thread
//! (`run_delay`, the second field of `/proc/self/task/TID/schedstat`); the
//! run's timeout is extended by the longest such wait among the vCPU
//! threads and the device thread (which register with
//! `count_this_thread`) since the guest started, up to the
//! timeout itself, so that `--timeout S` ends a run within 2·S (plus time
//! paused) however loaded the host. A guest halted forever waits on no
//! runqueue, so it still ends at S. Without schedstat (a kernel without
//! `CONFIG_SCHED_INFO`) nothing is extended.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// The threads whose waits count: each vCPU thread and the device thread
/// register themselves when they start.
static COUNTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Counts the calling thread's waits from now on (a vCPU or the device
/// thread, at its start).
pub fn count_this_thread() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    if let Ok(tid) = u32::try_from(tid) {
        COUNTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tid);
    }
}

/// `run_delay` (ns) of each counted thread that still runs. Only open,
/// read and close: the main thread's seccomp filter allows no more.
fn run_delays() -> HashMap<u32, u64> {
    let tids = COUNTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut delays = HashMap::new();
    for tid in tids {
        let path = format!("/proc/self/task/{tid}/schedstat");
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let mut buf = [0u8; 128];
        let Ok(n) = file.read(&mut buf) else {
            continue;
        };
        if let Some(delay) = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(parse_run_delay)
        {
            delays.insert(tid, delay);
        }
    }
    delays
}

/// The second field of a schedstat line: ns spent waiting on a runqueue.
fn parse_run_delay(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// The counted threads' waits since `start`.
#[derive(Debug)]
pub struct CpuWait {
    baseline: HashMap<u32, u64>,
}

impl CpuWait {
    /// Starts counting (threads counted later count from their start).
    pub fn start() -> Self {
        Self {
            baseline: run_delays(),
        }
    }

    /// The longest wait of one counted thread since `start`.
    pub fn longest(&self) -> Duration {
        let ns = run_delays()
            .into_iter()
            .map(|(tid, now)| now.saturating_sub(self.baseline.get(&tid).copied().unwrap_or(0)))
            .max()
            .unwrap_or(0);
        Duration::from_nanos(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_delay_is_the_second_schedstat_field() {
        assert_eq!(parse_run_delay("123 4567 8\n"), Some(4567));
        assert_eq!(parse_run_delay("123"), None);
        assert_eq!(parse_run_delay(""), None);
        assert_eq!(parse_run_delay("1 x 2"), None);
    }

    /// Two counted threads pinned to one CPU: one waits while the other
    /// spins, and the wait is seen while they live.
    #[test]
    fn a_vcpu_thread_kept_off_the_cpu_is_counted() {
        if parse_run_delay(&std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default())
            .is_none()
        {
            eprintln!("no schedstat on this kernel: nothing to measure");
            return;
        }
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let cpu = first_allowed_cpu();
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (stop, ready) = (stop.clone(), ready.clone());
                std::thread::Builder::new()
                    .name(format!("vcpu{i}"))
                    .spawn(move || {
                        count_this_thread();
                        pin_to(cpu);
                        ready.fetch_add(1, Ordering::Release);
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .unwrap()
            })
            .collect();
        // Both counted and pinned before the window opens (on a loaded
        // host a new thread may wait a while for its first run).
        while ready.load(Ordering::Acquire) < 2 {
            std::thread::yield_now();
        }
        let wait = CpuWait::start();
        std::thread::sleep(Duration::from_millis(200));
        let longest = wait.longest();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        // Two spinners share one CPU for 200 ms: each waits about half.
        assert!(longest >= Duration::from_millis(40), "{longest:?}");
    }

    fn first_allowed_cpu() -> usize {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: reads this thread's affinity into a valid set.
        unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        // SAFETY: every index is within the set's size.
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .unwrap_or(0)
    }

    fn pin_to(cpu: usize) {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` comes from the affinity set, within its size.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: pins the calling thread with a valid set.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    }
}
