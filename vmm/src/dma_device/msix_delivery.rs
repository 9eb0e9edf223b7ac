//! MSI-X (and MSI) delivery: one irqfd and one KVM GSI per message slot.
//!
//! Slot *i* (MSI-X table entry *i*, or slot 0 for the single MSI message)
//! is KVM GSI `24 + i`, with an irqfd registered on it once at start-up.
//! `signal` is one eventfd write: no lock, no ioctl, so it is safe to call
//! from inside the device lock on any thread (a vCPU in its MMIO exit, the
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
//! `route_changed` runs inside the device lock (it is called by the model).
//! The ioctl it makes takes no lock of ours and waits for nothing a vCPU
//! holds in user space: KVM serialises routing updates with its own
//! `irq_lock` and an SRCU grace period on `irq_srcu`, whose readers are
//! interrupt injections, never a vCPU stopped in user space. So updating
//! there is safe, and keeps the order "route, then signal" without a queue.
//! The message's destination APIC ID (address bits 19:12) goes to KVM as
//! given, so the interrupt reaches the vCPU the guest programmed.

use std::sync::Arc;

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
    /// Route updates made.
    pub route_updates: u64,
    /// Route updates KVM refused (logged).
    pub route_failures: u64,
}

/// The device's interrupt sink: irqfds + GSI routes.
#[derive(Debug)]
pub struct IrqRoutes {
    vm: Arc<VmFd>,
    irqfds: Vec<EventFd>,
    routes: Vec<Option<MsiMessage>>,
    counts: SignalCounts,
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
        let routes = IrqRoutes {
            vm,
            irqfds,
            routes: vec![None; usize::from(slots)],
            counts: SignalCounts {
                per_slot: vec![0; usize::from(slots)],
                ..SignalCounts::default()
            },
        };
        routes.install()?;
        Ok(routes)
    }

    /// Counters so far.
    pub fn counts(&self) -> &SignalCounts {
        &self.counts
    }

    /// The current route of each slot.
    pub fn routes(&self) -> &[Option<MsiMessage>] {
        &self.routes
    }

    fn install(&self) -> Result<(), Error> {
        let table = routing_table(&self.routes)?;
        self.vm.set_gsi_routing(&table).map_err(Error::Routing)
    }
}

impl InterruptSink for IrqRoutes {
    fn signal(&mut self, vector: u16, _msg: MsiMessage) {
        let slot = usize::from(vector);
        let Some(fd) = self.irqfds.get(slot) else {
            return;
        };
        if let Err(e) = fd.write(1) {
            guest_warn(format_args!("irqfd write for slot {slot} failed: {e}"));
            return;
        }
        self.counts.per_slot[slot] += 1;
    }

    fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
        let Some(entry) = self.routes.get_mut(usize::from(vector)) else {
            return;
        };
        *entry = route;
        self.counts.route_updates += 1;
        if let Err(e) = self.install() {
            self.counts.route_failures += 1;
            log::warn!("cannot route MSI slot {vector} ({route:x?}): {e}");
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
