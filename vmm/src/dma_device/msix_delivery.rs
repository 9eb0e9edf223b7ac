//! MSI-X (and MSI) delivery: one irqfd and one KVM GSI per message slot.
//!
//! Slot *i* (MSI-X table entry *i*, or slot 0 for the single MSI message)
//! is KVM GSI `24 + i`, with an irqfd registered on it once at start-up.
//! `signal` is one eventfd write: no ioctl, so it is cheap to call from
//! inside the device lock on any thread (a vCPU in its MMIO exit, the
//! device thread).
//!
//! Routing: `KVM_SET_GSI_ROUTING` replaces KVM's whole table, so the table
//! we install always starts with KVM's own default routes for GSIs 0–23
//! (`kvm_setup_default_irq_routing`: GSI *i* → IOAPIC pin *i*, and for
//! *i* < 16 also PIC master/slave pin *i* mod 8; COM1's irqfd on GSI 4
//! relies on it), then one MSI entry per slot that currently has a
//! message. A slot without a message (MSI-X and MSI off, FLR, or a vector
//! the model reports as masked) has no entry: an irqfd write on a GSI with
//! no route injects nothing. The model keeps masked messages pending in
//! its PBA and signals them after the unmask, always after it reported the
//! new route (`route_changed` comes before the first `signal` with it).
//!
//! **The routing ioctl runs outside the device lock.** `KVM_SET_GSI_ROUTING`
//! waits for an SRCU grace period of KVM's `irq_srcu` (measured here:
//! see `docs/hardening.md`), far longer than a register access. So
//! `route_changed` (called by the model, under the device lock) only
//! records the new table in [`Routing`] and marks it pending; the vCPU
//! that made the register or config access installs it with
//! [`Routing::flush`] once the device lock is released (`pci_adapter.rs`).
//! The order "route, then signal" still holds: `signal` installs a pending
//! table itself before its eventfd write (under the device lock, only when
//! a route change and a message fall in the same hold: an unmask that
//! releases a pending message). `Routing`'s own mutex makes concurrent
//! installs of the same table harmless: the last table reported is the
//! one KVM ends up with, and every message is written after it.
//! The ioctl takes no lock of ours and waits for nothing a vCPU holds in
//! user space (KVM serialises routing updates with its `irq_lock`; the
//! SRCU readers are interrupt injections, never a vCPU stopped in user
//! space). The message's destination APIC ID (address bits 19:12) goes to
//! KVM as given, so the interrupt reaches the vCPU the guest programmed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use device_model::regs::{hi32, lo32};
use device_model::{InterruptSink, MsiMessage};
use kvm_bindings::{
    kvm_irq_routing_entry, KvmIrqRouting, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI,
};
use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::guest_warn;

/// The first GSI used for the device's message slots.
pub const FIRST_MSI_GSI: u32 = 24;
/// GSIs KVM routes to the PIC/IOAPIC by default.
const IRQCHIP_GSIS: u32 = 24;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create an irqfd eventfd")]
    EventFd(#[source] std::io::Error),
    #[error("KVM_IRQFD on GSI {0} failed")]
    Irqfd(u32, #[source] kvm_ioctls::Error),
    #[error("KVM_SET_GSI_ROUTING failed")]
    Routing(#[source] kvm_ioctls::Error),
    #[error("cannot build the GSI routing table")]
    Table,
}

/// Per-slot delivery counters (read for the run report).
#[derive(Debug, Default, Clone)]
pub struct SignalCounts {
    /// Messages signalled per slot.
    pub per_slot: Vec<u64>,
    /// Route changes the model reported.
    pub route_updates: u64,
}

/// The routing table KVM should have, and whether it still has to be
/// installed. Shared by the sink (inside the model, under the device lock)
/// and the vCPU access paths (outside it).
#[derive(Debug)]
pub struct Routing {
    vm: Arc<VmFd>,
    routes: Mutex<Vec<Option<MsiMessage>>>,
    pending: AtomicBool,
    installs: AtomicU64,
    failures: AtomicU64,
}

impl Routing {
    /// Installs the latest table if a change is pending. Call it without
    /// the device lock (it may wait for KVM's grace period).
    pub fn flush(&self) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have installed it while we waited.
        if !self.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        match self.install(&routes) {
            Ok(()) => {
                self.installs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("cannot route MSI slots ({:x?}): {e}", *routes);
            }
        }
    }

    fn install(&self, routes: &[Option<MsiMessage>]) -> Result<(), Error> {
        let table = routing_table(routes)?;
        self.vm.set_gsi_routing(&table).map_err(Error::Routing)
    }

    fn set(&self, slot: usize, route: Option<MsiMessage>) -> bool {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = routes.get_mut(slot) else {
            return false;
        };
        *entry = route;
        self.pending.store(true, Ordering::Release);
        true
    }

    /// The current route of each slot.
    pub fn routes(&self) -> Vec<Option<MsiMessage>> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tables installed since start-up (the first included), and installs
    /// KVM refused.
    pub fn installs(&self) -> (u64, u64) {
        (
            self.installs.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

/// Messages whose send times are kept at most between two takes
/// (realtime takes them after every slice of model events).
const SENDS_KEPT: usize = 4096;

/// When one message was sent: CLOCK_MONOTONIC ns as its eventfd write
/// began and as it returned (KVM has queued the interrupt and kicked the
/// vCPU by then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiSend {
    pub begun_ns: u64,
    pub done_ns: u64,
}

/// The device's interrupt sink: irqfds + GSI routes.
#[derive(Debug)]
pub struct IrqRoutes {
    irqfds: Vec<EventFd>,
    routing: Arc<Routing>,
    counts: SignalCounts,
    /// Realtime: each message's send times since the last take (`None`:
    /// not kept). More than [`SENDS_KEPT`] untaken are dropped, and the
    /// take says so.
    sends: Option<Vec<MsiSend>>,
    sends_dropped: bool,
}

impl IrqRoutes {
    /// `slots` irqfds on GSIs 24.., and the default table installed.
    pub fn new(vm: Arc<VmFd>, slots: u16) -> Result<Self, Error> {
        let mut irqfds = Vec::with_capacity(usize::from(slots));
        for slot in 0..slots {
            let fd = EventFd::new(EFD_NONBLOCK).map_err(Error::EventFd)?;
            let gsi = FIRST_MSI_GSI + u32::from(slot);
            vm.register_irqfd(&fd, gsi)
                .map_err(|e| Error::Irqfd(gsi, e))?;
            irqfds.push(fd);
        }
        let routing = Arc::new(Routing {
            vm,
            routes: Mutex::new(vec![None; usize::from(slots)]),
            pending: AtomicBool::new(false),
            installs: AtomicU64::new(1),
            failures: AtomicU64::new(0),
        });
        routing.install(&routing.routes())?;
        Ok(IrqRoutes {
            irqfds,
            routing,
            counts: SignalCounts {
                per_slot: vec![0; usize::from(slots)],
                ..SignalCounts::default()
            },
            sends: None,
            sends_dropped: false,
        })
    }

    /// Keeps each message's send times (realtime lateness).
    pub fn keep_sends(&mut self) {
        self.sends = Some(Vec::new());
    }

    /// Moves the send times kept since the last take into `out`, in send
    /// order; whether they are all there (kept, and none dropped).
    pub fn take_sends(&mut self, out: &mut Vec<MsiSend>) -> bool {
        out.clear();
        let Some(sends) = &mut self.sends else {
            return false;
        };
        out.append(sends);
        !std::mem::take(&mut self.sends_dropped)
    }

    /// Counters so far.
    pub fn counts(&self) -> &SignalCounts {
        &self.counts
    }

    /// The routing table, for installing pending changes outside the
    /// device lock.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.clone()
    }
}

impl InterruptSink for IrqRoutes {
    fn signal(&mut self, vector: u16, _msg: MsiMessage) {
        let slot = usize::from(vector);
        let Some(fd) = self.irqfds.get(slot) else {
            return;
        };
        // A route reported in this hold goes to KVM before its message.
        self.routing.flush();
        let begun_ns = self.sends.is_some().then(super::clock::monotonic_ns);
        let r = fd.write(1);
        if let (Some(sends), Some(begun_ns)) = (&mut self.sends, begun_ns) {
            if sends.len() < SENDS_KEPT {
                let done_ns = super::clock::monotonic_ns();
                sends.push(MsiSend { begun_ns, done_ns });
            } else {
                self.sends_dropped = true;
            }
        }
        if let Err(e) = r {
            guest_warn(format_args!("irqfd write for slot {slot} failed: {e}"));
            return;
        }
        self.counts.per_slot[slot] += 1;
    }

    fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
        if self.routing.set(usize::from(vector), route) {
            self.counts.route_updates += 1;
        }
    }
}

/// KVM's default irqchip routes plus one MSI entry per routed slot.
fn routing_table(routes: &[Option<MsiMessage>]) -> Result<KvmIrqRouting, Error> {
    let mut entries: Vec<kvm_irq_routing_entry> = Vec::with_capacity(40 + routes.len());
    for gsi in 0..IRQCHIP_GSIS {
        entries.push(irqchip_entry(gsi, KVM_IRQCHIP_IOAPIC, gsi));
        if gsi < 16 {
            let chip = if gsi < 8 {
                KVM_IRQCHIP_PIC_MASTER
            } else {
                KVM_IRQCHIP_PIC_SLAVE
            };
            entries.push(irqchip_entry(gsi, chip, gsi % 8));
        }
    }
    for (slot, route) in (0u32..).zip(routes) {
        if let Some(msg) = route {
            entries.push(msi_entry(FIRST_MSI_GSI + slot, *msg));
        }
    }
    KvmIrqRouting::from_entries(&entries).map_err(|_| Error::Table)
}

fn irqchip_entry(gsi: u32, irqchip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u.irqchip.irqchip = irqchip;
    e.u.irqchip.pin = pin;
    e
}

fn msi_entry(gsi: u32, msg: MsiMessage) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u.msi.address_lo = lo32(msg.address);
    e.u.msi.address_hi = hi32(msg.address);
    e.u.msi.data = msg.data;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(t: &KvmIrqRouting) -> Vec<kvm_irq_routing_entry> {
        t.as_slice().to_vec()
    }

    #[test]
    fn default_routes_come_first_and_msi_slots_follow() {
        let msg = MsiMessage {
            address: 0xfee0_1000,
            data: 0x41,
        };
        let t = routing_table(&[None, Some(msg), None]).unwrap();
        let e = entries(&t);
        // 24 IOAPIC pins + 16 PIC pins + one MSI slot.
        assert_eq!(e.len(), 24 + 16 + 1);
        let com1: Vec<_> = e.iter().filter(|e| e.gsi == 4).collect();
        assert_eq!(com1.len(), 2, "GSI 4 goes to the IOAPIC and the PIC");
        let last = e.last().unwrap();
        assert_eq!((last.gsi, last.type_), (25, KVM_IRQ_ROUTING_MSI));
        // SAFETY: this entry was built as an MSI entry.
        let m = unsafe { last.u.msi };
        assert_eq!((m.address_lo, m.address_hi, m.data), (0xfee0_1000, 0, 0x41));
    }

    /// A VM with an irqchip, or `None` under the KVM skip rule.
    fn vm() -> Option<Arc<VmFd>> {
        let test = dmalab_protocol::kvm_skip::current_test();
        if !dmalab_protocol::kvm_skip::kvm_usable(&test) {
            return None;
        }
        let vm = kvm_ioctls::Kvm::new().unwrap().create_vm().unwrap();
        vm.create_irq_chip().unwrap();
        Some(Arc::new(vm))
    }

    #[test]
    fn a_route_change_waits_for_flush_or_for_the_next_message() {
        let Some(vm) = vm() else { return };
        let mut sink = IrqRoutes::new(vm, 2).unwrap();
        let routing = sink.routing();
        assert_eq!(routing.installs(), (1, 0), "the default table at start-up");
        let msg = MsiMessage {
            address: 0xfee0_0000,
            data: 0x31,
        };
        // Under the device lock: recorded, not installed.
        sink.route_changed(0, Some(msg));
        assert_eq!(routing.installs(), (1, 0));
        assert_eq!(routing.routes()[0], Some(msg));
        // After the lock: installed once.
        routing.flush();
        routing.flush();
        assert_eq!(routing.installs(), (2, 0));
        // A change and a message in the same hold: the route goes first.
        sink.route_changed(1, Some(msg));
        sink.signal(1, msg);
        assert_eq!(routing.installs(), (3, 0));
        assert_eq!(sink.counts().per_slot, vec![0, 1]);
        assert_eq!(sink.counts().route_updates, 2);
        // A slot the device does not have changes nothing.
        sink.route_changed(7, Some(msg));
        routing.flush();
        assert_eq!(routing.installs(), (3, 0));
    }

    #[test]
    fn pic_pins_split_master_and_slave() {
        let e = entries(&routing_table(&[]).unwrap());
        let pic: Vec<_> = e
            .iter()
            .filter(|e| e.gsi == 9)
            // SAFETY: every entry of the default table is an irqchip entry.
            .map(|e| unsafe { e.u.irqchip })
            .map(|c| (c.irqchip, c.pin))
            .collect();
        assert!(pic.contains(&(KVM_IRQCHIP_PIC_SLAVE, 1)), "{pic:?}");
        assert!(pic.contains(&(KVM_IRQCHIP_IOAPIC, 9)), "{pic:?}");
    }
}
