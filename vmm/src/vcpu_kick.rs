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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;
    use vmm_sys_util::signal::Killable;

    #[test]
    fn a_kick_sets_immediate_exit_of_the_signalled_thread_only() {
        install().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let spawn = |ready_tx: mpsc::Sender<()>, go_rx: mpsc::Receiver<()>| {
            thread::spawn(move || {
                // SAFETY: kvm_run is plain data; all zeroes is a valid value.
                let mut run: kvm_run = unsafe { std::mem::zeroed() };
                let registration = Registration::new(&mut run);
                ready_tx.send(()).unwrap();
                // Blocked here when kicked; the pending signal's handler
                // runs before `recv` returns.
                let _ = go_rx.recv();
                drop(registration);
                // SAFETY: reading our own local through a valid pointer.
                unsafe { ptr::addr_of!(run.immediate_exit).read_volatile() }
            })
        };
        let kicked = spawn(ready_tx.clone(), go_rx);
        let (other_go_tx, other_go_rx) = mpsc::channel::<()>();
        let other = spawn(ready_tx, other_go_rx);
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();
        // pthread_kill queues the signal before it returns.
        kicked.kill(signal()).unwrap();
        go_tx.send(()).unwrap();
        other_go_tx.send(()).unwrap();
        assert_eq!(kicked.join().unwrap(), 1);
        assert_eq!(other.join().unwrap(), 0);
    }
}
