//! Least privilege, as Firecracker does it: one seccomp filter per kind of
//! thread (rust-vmm's `seccompiler`), installed by each thread itself once
//! its setup is done, so that a guest that took over the device model or a
//! vCPU's exit handling could not open files, make sockets, start
//! programs or issue KVM requests the thread never needs.
//!
//! - `prepare` (the main thread, before any thread starts) compiles the
//!   four filters and installs the SIGSYS handler. Without it (`--no-seccomp`,
//!   unit tests) `enter` does nothing.
//! - `enter(thread)` installs the calling thread's filter: a vCPU thread
//!   before its first KVM_RUN, the device thread before its event loop, the
//!   gdb thread before it accepts, the main thread once every vCPU thread
//!   is started (a filter is inherited only by threads started after it,
//!   so the main thread's comes last and is the only one on no other).
//! - A call outside the thread's list raises SIGSYS (`SECCOMP_RET_TRAP`):
//!   the handler prints one line naming the thread and the call, and the
//!   process exits 70 (VMM internal error). A refused call is a VMM bug or
//!   an attack, never something to retry.
//!
//! `rules.rs` holds the lists, each entry with its reason. The cost is one
//! BPF program run per system call; `docs/hardening.md` has the figures.

mod rules;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use libc::{c_int, c_void, siginfo_t};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

pub use rules::{ioctls, syscalls, Ioctl, Syscall};

/// The kinds of thread, each with its own filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    Main,
    Vcpu,
    Device,
    Gdb,
}

impl Thread {
    /// The thread's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Thread::Main => "main",
            Thread::Vcpu => "vcpu",
            Thread::Device => "dma-device",
            Thread::Gdb => "gdb",
        }
    }

    fn index(self) -> usize {
        match self {
            Thread::Main => 0,
            Thread::Vcpu => 1,
            Thread::Device => 2,
            Thread::Gdb => 3,
        }
    }
}

const THREADS: [Thread; 4] = [Thread::Main, Thread::Vcpu, Thread::Device, Thread::Gdb];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this kernel has no seccomp filters (run with --no-seccomp)")]
    Unsupported(#[source] std::io::Error),
    #[error("cannot build the seccomp filter of the {0} thread")]
    Build(&'static str, #[source] seccompiler::BackendError),
    #[error("cannot compile the seccomp filter of the {0} thread")]
    Compile(&'static str, #[source] seccompiler::BackendError),
    #[error("cannot install the SIGSYS handler")]
    Handler(#[source] vmm_sys_util::errno::Error),
}

/// The compiled filters, once `prepare` ran.
static FILTERS: OnceLock<Vec<BpfProgram>> = OnceLock::new();

thread_local! {
    /// The calling thread's kind, for the SIGSYS message.
    static CURRENT: Cell<&'static str> = const { Cell::new("unfiltered") };
}

/// Compiles the filters and installs the SIGSYS handler; from now on
/// `enter` installs them. Call once, before the threads start.
pub fn prepare() -> Result<(), Error> {
    // SAFETY: PR_GET_SECCOMP takes no pointer; it fails with EINVAL on a
    // kernel built without seccomp.
    if unsafe { libc::prctl(libc::PR_GET_SECCOMP) } < 0 {
        return Err(Error::Unsupported(std::io::Error::last_os_error()));
    }
    let programs = THREADS
        .iter()
        .map(|&t| program(t))
        .collect::<Result<Vec<_>, _>>()?;
    vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, on_sigsys)
        .map_err(Error::Handler)?;
    let _ = FILTERS.set(programs);
    Ok(())
}

/// Whether `prepare` ran (the filters are in force for new threads).
pub fn enabled() -> bool {
    FILTERS.get().is_some()
}

/// Installs `thread`'s filter on the calling thread (nothing if `prepare`
/// did not run). Failing here, after `prepare` checked the kernel, leaves
/// a thread unprotected: the process says so and exits 70.
pub fn enter(thread: Thread) {
    let Some(programs) = FILTERS.get() else {
        return;
    };
    CURRENT.with(|c| c.set(thread.name()));
    if let Err(e) = seccompiler::apply_filter(&programs[thread.index()]) {
        eprintln!(
            "dmalab: cannot install the seccomp filter of the {} thread: {e} \
             (run with --no-seccomp)",
            thread.name()
        );
        // SAFETY: _exit ends the process at once; nothing is left half-done
        // that the exit status does not report.
        unsafe { libc::_exit(c_int::from(dmalab_protocol::status::INTERNAL)) };
    }
}

/// The BPF program of `thread`: its calls allowed, `ioctl` only with its
/// requests, anything else SIGSYS.
pub fn program(thread: Thread) -> Result<BpfProgram, Error> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in syscalls(thread) {
        map.insert(call.nr, Vec::new());
    }
    let requests = ioctls(thread);
    if !requests.is_empty() {
        let build = |e| Error::Build(thread.name(), e);
        let rules = requests
            .iter()
            .map(|r| {
                let cond =
                    SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, r.request)
                        .map_err(build)?;
                SeccompRule::new(vec![cond]).map_err(build)
            })
            .collect::<Result<Vec<_>, _>>()?;
        map.insert(libc::SYS_ioctl, rules);
    }
    let filter = SeccompFilter::new(
        map,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| Error::Build(thread.name(), e))?;
    BpfProgram::try_from(filter).map_err(|e| Error::Compile(thread.name(), e))
}

/// A few names for the message; `ausyscall N` or the kernel's syscall
/// table names any other.
const NAMES: &[(libc::c_long, &str)] = &[
    (libc::SYS_open, "open"),
    (libc::SYS_openat, "openat"),
    (libc::SYS_socket, "socket"),
    (libc::SYS_connect, "connect"),
    (libc::SYS_bind, "bind"),
    (libc::SYS_execve, "execve"),
    (libc::SYS_clone, "clone"),
    (libc::SYS_clone3, "clone3"),
    (libc::SYS_fork, "fork"),
    (libc::SYS_ptrace, "ptrace"),
    (
        libc::SYS_ioctl,
        "ioctl (a request this thread does not use)",
    ),
    (libc::SYS_kill, "kill"),
    (libc::SYS_unlink, "unlink"),
    (libc::SYS_mkdirat, "mkdirat"),
    (libc::SYS_prctl, "prctl"),
    (libc::SYS_getuid, "getuid"),
    (libc::SYS_uname, "uname"),
    (libc::SYS_timerfd_settime, "timerfd_settime"),
    (libc::SYS_epoll_wait, "epoll_wait"),
    (libc::SYS_accept4, "accept4"),
];

/// Appends `n` in decimal to `buf` at `at`; returns the new end.
fn put_num(buf: &mut [u8], mut at: usize, n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        if at < buf.len() {
            buf[at] = d;
            at += 1;
        }
    }
    at
}

fn put(buf: &mut [u8], at: usize, s: &[u8]) -> usize {
    let n = s.len().min(buf.len() - at);
    buf[at..at + n].copy_from_slice(&s[..n]);
    at + n
}

/// The SIGSYS line: `dmalab: seccomp: the vcpu thread made system call 41
/// (socket), which its filter forbids; …`. Allocation-free.
fn message(buf: &mut [u8], thread: &str, nr: i32) -> usize {
    let mut at = put(buf, 0, b"dmalab: seccomp: the ");
    at = put(buf, at, thread.as_bytes());
    at = put(buf, at, b" thread made system call ");
    at = put_num(buf, at, u64::from(nr.unsigned_abs()));
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == libc::c_long::from(nr)) {
        at = put(buf, at, b" (");
        at = put(buf, at, name.as_bytes());
        at = put(buf, at, b")");
    }
    put(
        buf,
        at,
        b", which its filter forbids; stopped (a VMM bug: report it; \
          --no-seccomp runs without filters, docs/hardening.md)\n",
    )
}

extern "C" fn on_sigsys(_num: c_int, info: *mut siginfo_t, _ctx: *mut c_void) {
    // SIGSYS from seccomp: siginfo's `_sigsys` member holds the call
    // number at byte 24 (after signo, errno, code, padding and the
    // 8-byte call address), as Firecracker reads it.
    let nr = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passed a valid siginfo_t (128 bytes) for
        // this SA_SIGINFO handler; byte 24 is inside it and 4-aligned.
        unsafe { info.cast::<i32>().add(6).read() }
    };
    let thread = CURRENT.with(Cell::get);
    let mut buf = [0u8; 320];
    let len = message(&mut buf, thread, nr);
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `buf[..len]` is
    // initialised memory on this stack frame. Both calls are in every
    // thread's list.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::_exit(c_int::from(dmalab_protocol::status::INTERNAL));
    }
}

#[cfg(test)]
mod tests;
