//! Kicking a vCPU thread out of KVM_RUN (timeout): the main thread sets the
//! stop flag, then sends `SIGRTMIN` to the thread (vmm-sys-util's
//! `Killable`). The handler sets `immediate_exit` in that thread's
//! `kvm_run`, found through a thread-local pointer (Firecracker's
//! `TLS_VCPU_PTR` pattern). Either KVM_RUN is interrupted (EINTR), or, if
//! the signal lands just before the ioctl, the next KVM_RUN returns at once:
//! no window in which the kick is lost. The vCPU loop then sees the flag.

use std::cell::Cell;
use std::ptr;

use kvm_bindings::kvm_run;
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

thread_local! {
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(ptr::null_mut()) };
}

/// The signal that kicks vCPU threads.
pub fn signal() -> c_int {
    SIGRTMIN()
}

extern "C" fn on_kick(_num: c_int, _info: *mut siginfo_t, _ctx: *mut c_void) {
    // Async-signal-safe: a const-initialised thread-local and one store.
    KVM_RUN.with(|run| {
        let run = run.get();
        if !run.is_null() {
            // SAFETY: the pointer was set by this very thread (the handler
            // runs on the signalled thread) to its vCPU's kvm_run mapping,
            // which outlives the registration (`Registration::drop`).
            unsafe { ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
        }
    });
}

/// Installs the process-wide handler (once, before vCPU threads start).
pub fn install() -> Result<(), vmm_sys_util::errno::Error> {
    register_signal_handler(signal(), on_kick)
}

/// The calling thread's kvm_run, published to the handler until dropped.
#[derive(Debug)]
pub struct Registration(());

impl Registration {
    /// Publishes `run` for kicks aimed at this thread. `run` must stay
    /// mapped until the `Registration` is dropped.
    pub fn new(run: *mut kvm_run) -> Self {
        KVM_RUN.with(|cell| cell.set(run));
        Self(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        KVM_RUN.with(|cell| cell.set(ptr::null_mut()));
    }
}
