//! The ioeventfd floor's second host thread: the bare mechanism of
//! `--doorbell ioeventfd`, without a device model behind it.
//!
//! The doorbell GPA is a KVM ioeventfd (the guest's write does not exit to
//! user space); a relay thread blocks in `read()` on it and answers each
//! wake-up with one write to an irqfd whose GSI routes the MSI. No
//! user-space exit, but a thread wake-up per round trip, which is what any
//! ioeventfd doorbell pays before its device does anything. On this 2-core
//! host that wake-up is bimodal: p50 ~16 µs in short runs, ~33 µs in some
//! 100,000-iteration ones, against a steady ~14.4 µs for the exit floor
//! (`docs/benchmarks.md`, "Interrupt round trip").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use kvm_bindings::{kvm_irq_routing_entry, KvmIrqRouting, KVM_IRQ_ROUTING_MSI};
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use vmm_sys_util::eventfd::EventFd;

/// The one GSI the floor routes (the first dmalab uses for MSI-X).
const GSI: u32 = 24;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
    #[error("KVM {0} failed")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("cannot build the GSI routing table")]
    Table,
    #[error("cannot spawn the relay thread")]
    Spawn(#[source] std::io::Error),
    #[error("the relay thread failed: {0}")]
    Relay(String),
}

/// An ioeventfd on the doorbell and an irqfd for the MSI, not yet relaying.
#[derive(Debug)]
pub struct Wiring {
    doorbell_fd: EventFd,
    irq: EventFd,
}

impl Wiring {
    /// Routes GSI 24 to the MSI `(address, data)`, registers the irqfd on
    /// it and the ioeventfd on the 4-byte doorbell at `doorbell`.
    pub fn new(vm: &VmFd, doorbell: u64, address: u32, data: u32) -> Result<Self, Error> {
        let mut entry = kvm_irq_routing_entry {
            gsi: GSI,
            type_: KVM_IRQ_ROUTING_MSI,
            ..Default::default()
        };
        entry.u.msi.address_lo = address;
        entry.u.msi.data = data;
        let table = KvmIrqRouting::from_entries(&[entry]).map_err(|_| Error::Table)?;
        vm.set_gsi_routing(&table)
            .map_err(|e| Error::Kvm("KVM_SET_GSI_ROUTING", e))?;
        let irq = EventFd::new(0).map_err(Error::EventFd)?;
        vm.register_irqfd(&irq, GSI)
            .map_err(|e| Error::Kvm("KVM_IRQFD", e))?;
        let doorbell_fd = EventFd::new(0).map_err(Error::EventFd)?;
        vm.register_ioevent(&doorbell_fd, &IoEventAddress::Mmio(doorbell), NoDatamatch)
            .map_err(|e| Error::Kvm("KVM_IOEVENTFD", e))?;
        Ok(Self { doorbell_fd, irq })
    }

    /// Starts relaying doorbells to the irqfd on a thread of its own.
    pub fn start(&self) -> Result<Relay, Error> {
        let doorbell_fd = self.doorbell_fd.try_clone().map_err(Error::EventFd)?;
        let irq = self.irq.try_clone().map_err(Error::EventFd)?;
        let wake = self.doorbell_fd.try_clone().map_err(Error::EventFd)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::Builder::new()
            .name("floor-relay".into())
            .spawn(move || relay(&doorbell_fd, &irq, &stopping))
            .map_err(Error::Spawn)?;
        Ok(Relay { thread, stop, wake })
    }
}

/// A running relay thread.
#[derive(Debug)]
pub struct Relay {
    thread: JoinHandle<Result<u64, String>>,
    stop: Arc<AtomicBool>,
    wake: EventFd,
}

impl Relay {
    /// Stops the thread; returns how many doorbells it relayed.
    pub fn stop(self) -> Result<u64, Error> {
        self.stop.store(true, Ordering::SeqCst);
        self.wake
            .write(1)
            .map_err(|e| Error::Relay(format!("cannot wake it: {e}")))?;
        self.thread
            .join()
            .map_err(|_| Error::Relay("it panicked".into()))?
            .map_err(Error::Relay)
    }
}

/// Each wake-up: one irqfd write. The eventfd count adds up the doorbell
/// writes since the last read (one at queue depth 1).
fn relay(doorbell_fd: &EventFd, irq: &EventFd, stop: &AtomicBool) -> Result<u64, String> {
    let mut doorbells = 0u64;
    loop {
        let n = doorbell_fd
            .read()
            .map_err(|e| format!("ioeventfd read: {e}"))?;
        if stop.load(Ordering::SeqCst) {
            return Ok(doorbells);
        }
        doorbells += n;
        irq.write(1).map_err(|e| format!("irqfd write: {e}"))?;
    }
}
