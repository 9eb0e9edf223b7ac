//! What each thread may ask of the kernel once its work is set up, and why.
//!
//! Every entry carries the reason it is there; the unit tests check that
//! each has one, that no list names a system call twice, and that the
//! calls a VMM has no business making after setup (opening `/dev/kvm`,
//! creating VMs, vCPUs or sockets, `execve`, `fork`, `ptrace`, …) are in
//! no thread's list. The lists were taken from `strace -ff` of runs in
//! every timing mode and doorbell path, with a control socket, `--gdb`,
//! `--trace`/`--report`, timeouts and signals, then checked by the
//! integration tests running with the filters on.
//!
//! `ioctl` is allowed per request number: a thread may issue only the KVM
//! requests it uses (and `FIONBIO` where it makes a socket non-blocking).

use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

use kvm_bindings::{
    kvm_fpu, kvm_guest_debug, kvm_ioeventfd, kvm_irq_routing, kvm_msrs, kvm_regs, kvm_sregs,
    kvm_translation,
};

use super::Thread;

const KVMIO: u32 = 0xAE;
ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
ioctl_iow_nr!(KVM_SET_REGS, KVMIO, 0x82, kvm_regs);
ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_sregs);
ioctl_iowr_nr!(KVM_TRANSLATE, KVMIO, 0x85, kvm_translation);
ioctl_iowr_nr!(KVM_GET_MSRS, KVMIO, 0x88, kvm_msrs);
ioctl_ior_nr!(KVM_GET_FPU, KVMIO, 0x8c, kvm_fpu);
ioctl_iow_nr!(KVM_SET_FPU, KVMIO, 0x8d, kvm_fpu);
ioctl_iow_nr!(KVM_SET_GUEST_DEBUG, KVMIO, 0x9b, kvm_guest_debug);
ioctl_iow_nr!(KVM_SET_GSI_ROUTING, KVMIO, 0x6a, kvm_irq_routing);
ioctl_iow_nr!(KVM_IOEVENTFD, KVMIO, 0x79, kvm_ioeventfd);

/// One allowed system call.
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    pub nr: libc::c_long,
    pub name: &'static str,
    pub why: &'static str,
}

/// One allowed `ioctl` request.
#[derive(Debug, Clone, Copy)]
pub struct Ioctl {
    pub request: u64,
    pub name: &'static str,
    pub why: &'static str,
}

macro_rules! sys {
    ($name:ident, $why:expr) => {
        Syscall {
            nr: libc::$name,
            name: stringify!($name),
            why: $why,
        }
    };
}

/// Every thread, after its setup.
const COMMON: &[Syscall] = &[
    sys!(SYS_read, "eventfds (stop, watch, timer), sockets, pipes"),
    sys!(
        SYS_write,
        "eventfds (irqfd messages, wake-ups), stdout console, stderr lines"
    ),
    sys!(SYS_writev, "stderr lines (the logger may write in pieces)"),
    sys!(
        SYS_futex,
        "mutexes, condition variables and channels between threads"
    ),
    sys!(
        SYS_clock_gettime,
        "host time: the vDSO's fallback, and per-thread CPU time of lock holds"
    ),
    sys!(
        SYS_clock_nanosleep,
        "short sleeps while waiting for another thread (pause, gdb polling)"
    ),
    sys!(SYS_nanosleep, "std::thread::sleep on older C libraries"),
    sys!(
        SYS_sched_yield,
        "spin-waits that yield (device run loop, stepped waits)"
    ),
    sys!(SYS_mmap, "the memory allocator"),
    sys!(
        SYS_munmap,
        "the memory allocator; a thread's stack and signal stack at its end"
    ),
    sys!(
        SYS_mremap,
        "the memory allocator growing a large buffer (trace, console)"
    ),
    sys!(
        SYS_madvise,
        "the allocator and glibc returning a finished thread's stack"
    ),
    sys!(SYS_mprotect, "the memory allocator (new heap arenas)"),
    sys!(SYS_brk, "the memory allocator (main heap)"),
    sys!(SYS_rt_sigprocmask, "glibc masks signals around thread exit"),
    sys!(
        SYS_rt_sigreturn,
        "return from the kick, stop and SIGSYS handlers"
    ),
    sys!(
        SYS_sigaltstack,
        "a Rust thread removes its signal stack when it ends"
    ),
    sys!(
        SYS_restart_syscall,
        "a wait interrupted by a signal resumes"
    ),
    sys!(SYS_close, "dropped eventfds, connections and files"),
    sys!(
        SYS_fcntl,
        "descriptor flags (std checks F_GETFD when it drops a descriptor)"
    ),
    sys!(
        SYS_getpid,
        "addressing a thread for a kick (tgkill needs the process id)"
    ),
    sys!(SYS_gettid, "thread identity (logging, the C library)"),
    sys!(
        SYS_getrandom,
        "the keys of a HashMap first made on this thread"
    ),
    sys!(SYS_sched_getaffinity, "std::thread::available_parallelism"),
    sys!(SYS_exit, "the thread ends"),
    sys!(
        SYS_exit_group,
        "the process ends (also the SIGSYS handler's exit)"
    ),
];

const VCPU: &[Syscall] = &[
    sys!(
        SYS_ioctl,
        "the KVM requests below, on this vCPU's and the VM's fds"
    ),
    sys!(
        SYS_timerfd_settime,
        "realtime mode: a register access re-arms the device clock"
    ),
];

const DEVICE: &[Syscall] = &[
    sys!(SYS_ioctl, "the requests below"),
    sys!(SYS_epoll_wait, "the event loop"),
    sys!(SYS_epoll_pwait, "the event loop (some C libraries)"),
    sys!(
        SYS_epoll_ctl,
        "adding and removing control-socket connections"
    ),
    sys!(SYS_accept4, "control-socket connections"),
    sys!(SYS_recvfrom, "control-socket requests"),
    sys!(SYS_sendto, "control-socket replies and events"),
    sys!(
        SYS_timerfd_settime,
        "realtime mode: arming the device clock for its next event"
    ),
    sys!(
        SYS_tgkill,
        "kicking vCPUs out of KVM_RUN for a pause (control socket)"
    ),
    sys!(
        SYS_openat,
        "the control socket's `trace stop` writes the file it names"
    ),
];

const GDB: &[Syscall] = &[
    sys!(SYS_ioctl, "the requests below"),
    sys!(SYS_accept4, "gdb connections"),
    sys!(
        SYS_recvfrom,
        "gdb packets, and peeking for gdb's interrupt byte"
    ),
    sys!(SYS_sendto, "gdb replies"),
    sys!(SYS_poll, "waiting for the connection"),
    sys!(SYS_shutdown, "closing a gdb connection"),
    sys!(
        SYS_unlink,
        "removing a Unix --gdb socket when the stub ends"
    ),
    sys!(
        SYS_tgkill,
        "kicking vCPUs out of KVM_RUN to stop the VM for gdb"
    ),
    sys!(SYS_timerfd_settime, RESUMES),
];

const MAIN: &[Syscall] = &[
    sys!(
        SYS_tgkill,
        "kicking vCPUs (timeout, signals, console drain)"
    ),
    sys!(
        SYS_openat,
        "writing --trace and --report at the end; reading the vCPU and device \
         threads' schedstat for the timeout's CPU-wait extension (cpu_wait.rs)"
    ),
    sys!(SYS_unlink, "removing the control socket at the end"),
    sys!(SYS_timerfd_settime, RESUMES),
    sys!(SYS_ioctl, "the requests below"),
];

/// A thread that ends a pause (gdb's stub, the main thread releasing the
/// VM at the end, the control socket) restarts the device clock and rings
/// the doorbells deferred meanwhile: device work on that thread.
const RESUMES: &str = "ending a pause restarts the device clock and runs deferred doorbells";

macro_rules! req {
    ($name:ident, $why:expr) => {
        Ioctl {
            request: $name() as u64,
            name: stringify!($name),
            why: $why,
        }
    };
    ($name:ident = $value:expr, $why:expr) => {
        Ioctl {
            request: $value as u64,
            name: stringify!($name),
            why: $why,
        }
    };
}

fn vcpu_ioctls() -> Vec<Ioctl> {
    vec![
        req!(KVM_RUN, "running the guest"),
        req!(KVM_GET_REGS, "register dumps (timeout, failure) and gdb"),
        req!(KVM_SET_REGS, "gdb writes registers"),
        req!(KVM_GET_FPU, "gdb reads x87 and SSE registers"),
        req!(KVM_SET_FPU, "gdb writes x87 and SSE registers"),
        req!(KVM_GET_SREGS, "register dumps and gdb"),
        req!(KVM_TRANSLATE, "register dumps name the code at RIP"),
        req!(
            KVM_GET_MSRS,
            "crediting a pause to the guest's steal-time record"
        ),
        req!(KVM_SET_GUEST_DEBUG, "gdb breakpoints and single steps"),
        req!(
            KVM_SET_GSI_ROUTING,
            "the guest reprograms an MSI-X or MSI message (a register write in an MMIO exit)"
        ),
        req!(
            KVM_IOEVENTFD,
            "the guest moves BAR0: the doorbell ioeventfds move with it"
        ),
    ]
}

fn device_ioctls() -> Vec<Ioctl> {
    vec![
        req!(
            FIONBIO = libc::FIONBIO,
            "control-socket connections are non-blocking"
        ),
        req!(
            KVM_SET_GSI_ROUTING,
            "a route change the device thread's work reports (unmask on a doorbell path)"
        ),
    ]
}

fn gdb_ioctls() -> Vec<Ioctl> {
    vec![
        req!(
            FIONBIO = libc::FIONBIO,
            "gdbstub peeks at the connection without blocking"
        ),
        req!(KVM_SET_GSI_ROUTING, PENDING_ROUTE),
    ]
}

fn main_ioctls() -> Vec<Ioctl> {
    vec![req!(KVM_SET_GSI_ROUTING, PENDING_ROUTE)]
}

/// Device work run on a thread that ends a pause may send a message whose
/// route change is still to be installed (`msix_delivery.rs`).
const PENDING_ROUTE: &str = "a deferred doorbell's message installs a route change still pending";

/// The system calls only `thread` (of the four kinds) may make.
fn own(thread: Thread) -> &'static [Syscall] {
    match thread {
        Thread::Main => MAIN,
        Thread::Vcpu => VCPU,
        Thread::Device => DEVICE,
        Thread::Gdb => GDB,
    }
}

/// The system calls `thread` may make (common ones included).
pub fn syscalls(thread: Thread) -> Vec<Syscall> {
    COMMON.iter().chain(own(thread)).copied().collect()
}

/// The `ioctl` requests `thread` may issue.
pub fn ioctls(thread: Thread) -> Vec<Ioctl> {
    match thread {
        Thread::Main => main_ioctls(),
        Thread::Vcpu => vcpu_ioctls(),
        Thread::Device => device_ioctls(),
        Thread::Gdb => gdb_ioctls(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const THREADS: [Thread; 4] = [Thread::Main, Thread::Vcpu, Thread::Device, Thread::Gdb];

    #[test]
    fn every_allowed_call_says_why_and_appears_once() {
        for thread in THREADS {
            let calls = syscalls(thread);
            let mut seen = BTreeSet::new();
            for c in &calls {
                assert!(c.why.len() > 10, "{thread:?}: {} has no reason", c.name);
                assert!(seen.insert(c.nr), "{thread:?}: {} twice", c.name);
            }
            let reqs = ioctls(thread);
            let mut seen = BTreeSet::new();
            for r in &reqs {
                assert!(r.why.len() > 10, "{thread:?}: {} has no reason", r.name);
                assert!(seen.insert(r.request), "{thread:?}: {} twice", r.name);
            }
            let has_ioctl = calls.iter().any(|c| c.nr == libc::SYS_ioctl);
            assert_eq!(has_ioctl, !reqs.is_empty(), "{thread:?}");
        }
    }

    #[test]
    fn no_thread_may_open_kvm_spawn_or_trace_after_setup() {
        let forbidden = [
            libc::SYS_open,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_ptrace,
            libc::SYS_process_vm_writev,
            libc::SYS_kill,
            libc::SYS_mount,
            libc::SYS_setuid,
            libc::SYS_prctl,
            libc::SYS_seccomp,
        ];
        for thread in THREADS {
            for c in syscalls(thread) {
                assert!(!forbidden.contains(&c.nr), "{thread:?} allows {}", c.name);
            }
        }
        // Only the main thread (at the end) and the device thread (a
        // control-socket trace) write files.
        for thread in [Thread::Vcpu, Thread::Gdb] {
            assert!(!syscalls(thread).iter().any(|c| c.nr == libc::SYS_openat));
        }
    }

    /// docs/hardening.md names every call and request of each list, in
    /// that thread's table row (the common ones in their paragraph).
    #[test]
    fn the_hardening_page_names_every_allowed_call() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/hardening.md"));
        let row = |start: &str| {
            doc.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no row {start}"))
        };
        let common = &doc[doc.find("The common list is").unwrap()..];
        let common = &common[..common.find("Every entry in").unwrap()];
        let name = |c: &Syscall| format!("`{}`", c.name.trim_start_matches("SYS_"));
        for c in COMMON {
            assert!(common.contains(&name(c)), "common list: {}", name(c));
        }
        for (thread, start) in [
            (Thread::Vcpu, "| `vcpu0`"),
            (Thread::Device, "| `dma-device`"),
            (Thread::Gdb, "| `gdb`"),
            (Thread::Main, "| main"),
        ] {
            let text = row(start);
            for c in own(thread) {
                assert!(text.contains(&name(c)), "{thread:?}: {}", name(c));
            }
            for r in ioctls(thread) {
                assert!(
                    text.contains(&format!("`{}`", r.name)),
                    "{thread:?}: {}",
                    r.name
                );
            }
        }
    }

    #[test]
    fn kvm_requests_are_the_kernel_numbers() {
        // include/uapi/linux/kvm.h, x86-64.
        assert_eq!(KVM_RUN(), 0xae80);
        assert_eq!(KVM_GET_REGS(), 0x8090_ae81);
        assert_eq!(KVM_SET_GSI_ROUTING(), 0x4008_ae6a);
        assert_eq!(KVM_IOEVENTFD(), 0x4040_ae79);
        let vm_level =
            |r: &Ioctl| r.name.starts_with("KVM_CREATE") || r.name == "KVM_SET_USER_MEMORY_REGION";
        for thread in THREADS {
            assert!(!ioctls(thread).iter().any(vm_level), "{thread:?}");
        }
    }
}
