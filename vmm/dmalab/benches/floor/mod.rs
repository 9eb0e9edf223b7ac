//! The floor of the interrupt round trip: a bare KVM guest, no device model,
//! no bus, no dmalab code, measured the way the dmalab `irq-bench` scenario
//! measures itself.
//!
//! The guest (`guest.S`, assembled by gcc when the benchmark runs, see
//! `image.rs`) rings a doorbell with one MMIO write, which exits to the
//! host; the host's vCPU thread answers with `KVM_SIGNAL_MSI` (vector 0x40,
//! the in-kernel irqchip as dmalab has, xAPIC); the guest, waiting in
//! `cli; cmp; sti; hlt`, takes the interrupt, its ISR counts it, EOIs and
//! `iretq`s, and the loop stamps the TSC. One sample per iteration:
//! `t1 - t0` in guest TSC cycles, from just before the doorbell write to
//! just after the wait loop saw the interrupt. This is the least any VMM
//! can do for "doorbell → MSI → ISR → EOI" on a given host. The platform
//! probe (`/work/shared/platform/kvm-probe.c`, `irq` section) runs the
//! same loop: ~26.5 µs on its reference machine, 14.05 µs on the one the
//! figures in `docs/benchmarks.md` come from (this floor: 14.4 µs p50).
//!
//! After the round trips the guest times as many self-IPI rounds (ICR
//! write → the same ISR → back in the loop): what the bare guest's own
//! interrupt path costs, to set against irq-bench's `ipi_ns_p50`.
//!
//! The floor rings its doorbell with interrupts on, as kvm-probe does: in
//! exit mode the MSI is injected as the vCPU re-enters from the exit and
//! the guest never reaches `hlt`. Ringing with interrupts off and taking
//! the MSI at `sti; hlt` (irq-bench's order) measured 1.8 µs more here
//! (16.25 µs against 14.49 µs p50); the floor is the cheaper order.
//!
//! The doorbell is an MMIO write (as dmalab's `TAIL` register is), not an
//! `out`: the probe puts a PIO exit at 11.0 µs against 10.6 µs for MMIO on
//! its reference machine (7.6 against 7.8 µs on the newer one), so the
//! floor simply uses the kind of exit the device path pays.

mod image;
mod relay;
mod vm;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub use image::assemble;
pub use vm::MAX_ITERS;

/// A guest that has not finished after this long is stuck (an interrupt
/// lost): 20,000 iterations (round trips and self-IPIs) take ~0.5 s.
const MIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build or run the floor VM")]
    Vm(#[source] vm::Error),
    #[error("the floor guest did not finish within {0:?} (an interrupt lost?)")]
    Timeout(Duration),
    #[error("the floor's vCPU thread died")]
    ThreadDied,
}

/// How the floor guest's doorbell reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doorbell {
    /// An MMIO exit; the vCPU thread calls `KVM_SIGNAL_MSI`: the floor.
    Exit,
    /// A KVM ioeventfd (no exit); a relay thread writes an irqfd: the
    /// least an ioeventfd doorbell costs (`relay.rs`).
    Ioeventfd,
}

/// What one floor run measured, in guest TSC cycles.
#[derive(Debug, Clone)]
pub struct FloorRun {
    /// Guest TSC frequency (`KVM_GET_TSC_KHZ`).
    pub tsc_khz: u32,
    /// One round trip per iteration, in TSC cycles.
    pub samples: Vec<u64>,
    /// One self-IPI round trip per iteration (the guest alone), in TSC
    /// cycles.
    pub ipi_samples: Vec<u64>,
    /// TSC cycles from before the first doorbell to after the last
    /// interrupt, loop overhead included.
    pub cycles_total: u64,
}

/// Runs `iters` round trips in a fresh bare VM whose guest is `image`
/// (from [`assemble`]). The VM lives on its own thread; if the guest is
/// stuck, the caller gets `Timeout` and the thread stays in `KVM_RUN`
/// until the process exits.
pub fn measure(image: &[u8], iters: u32, doorbell: Doorbell) -> Result<FloorRun, Error> {
    let (tx, rx) = mpsc::channel();
    let image = image.to_vec();
    thread::Builder::new()
        .name("floor-vcpu".into())
        .spawn(move || {
            // The receiver may be gone after a timeout: nothing to tell.
            let _ = tx.send(vm::FloorVm::new(&image, iters, doorbell).and_then(|mut v| v.run()));
        })
        .map_err(|_| Error::ThreadDied)?;
    // ~15–30 µs per round trip; allow 1 ms each on slower hosts.
    let timeout = MIN_TIMEOUT.max(Duration::from_millis(u64::from(iters)));
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(Error::Vm),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::ThreadDied),
    }
}
