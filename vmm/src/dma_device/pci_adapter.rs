//! The device on the VM's buses: configuration space in slot 00:01.0 of PCI
//! bus 0 (reached through conf1), BAR0 and BAR2 on the MMIO bus.
//!
//! `DmaPci` is the slot's `PciDevice`: config accesses go to the model
//! (`Controller::config_read/config_write`, dword registers split into the
//! bytes the guest wrote). A write that moves a BAR comes back as
//! `BarReprogrammed`; the adapter then — with the device lock released —
//! re-registers the BAR's range on the MMIO bus and, for BAR0, moves the
//! doorbell ioeventfds. Sizing writes (all ones) are not reported by the
//! model, so the range stays where it was until the guest restores or
//! moves the BAR. An FLR clears the BARs to 0 in the model: after every
//! config write a BAR the model holds at 0 is unmapped, and a BAR left
//! unmapped because it overlapped the other one is mapped once it no
//! longer does.
//!
//! A BAR is decoded only inside the PCI MMIO window `[0xC000_0000,
//! 0xFEC0_0000)`, aligned to its size, and not overlapping another range;
//! otherwise it is not mapped (reads all ones through the bus, writes
//! dropped) and the guest error is logged (rate-limited). Memory space off
//! is enforced by the model (it reads all ones and counts the access).
//!
//! `DmaBar` is what the MMIO bus calls for one BAR: it counts the exit per
//! register (`stats.rs`) and runs the access through `Dma::access`. After
//! a write (BAR or config space), with the device lock released, a routing
//! change the write caused goes to KVM (`msix_delivery.rs`: the ioctl is
//! slow and stays out of the lock). A
//! `TAIL` write that exits (`--doorbell exit`) is the model's doorbell with
//! its value; in instant mode `Dma::access` then runs the model to idle
//! before the vCPU returns to the guest.

use std::sync::Arc;

use device_model::BarReprogrammed;
use vm_device::bus::{MmioAddress, MmioAddressOffset};
use vm_device::DeviceMmio;

use super::doorbell::Doorbells;
use super::msix_delivery::Routing;
use super::{guest_warn, Dma, BAR0_ADDR, BAR2_ADDR};
use crate::boot::layout;
use crate::devices::bus::{self, MmioBus};
use crate::devices::pci::PciDevice;

/// The PCI MMIO window BARs may be decoded in.
const WINDOW: (u64, u64) = (
    layout::PCI_MMIO_BASE,
    layout::PCI_MMIO_BASE + layout::PCI_MMIO_SIZE,
);
/// Both BARs are 4 KiB.
const BAR_SIZE: u64 = 0x1000;

/// One BAR on the MMIO bus.
#[derive(Debug)]
pub struct DmaBar {
    dma: Arc<Dma>,
    routing: Arc<Routing>,
    bar: u8,
}

impl DeviceMmio for DmaBar {
    fn mmio_read(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.dma.exits.count(self.bar, offset);
        self.dma.access(|m| m.mmio_read(self.bar, offset, data));
    }

    fn mmio_write(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.dma.exits.count(self.bar, offset);
        self.dma.access(|m| m.mmio_write(self.bar, offset, data));
        self.routing.flush();
    }
}

/// Slot 00:01.0: config space, and where the BARs are mapped.
#[derive(Debug)]
pub struct DmaPci {
    dma: Arc<Dma>,
    routing: Arc<Routing>,
    mmio: MmioBus,
    doorbells: Option<Doorbells>,
    /// Where BAR0 / BAR2 are mapped on the MMIO bus now.
    mapped: [Option<u64>; 2],
}

impl DmaPci {
    pub fn new(dma: Arc<Dma>, mmio: MmioBus, doorbells: Option<Doorbells>) -> Self {
        let routing = dma.lock().model.interrupts().routing();
        Self {
            dma,
            routing,
            mmio,
            doorbells,
            mapped: [None, None],
        }
    }

    /// Firmware's job: BAR0 = 0xC000_0000, BAR2 = 0xC000_1000 (64-bit),
    /// command register left 0.
    pub fn place_initial_bars(&mut self) -> Result<(), bus::Error> {
        for (reg, addr) in [(0x10u64, BAR0_ADDR), (0x18, BAR2_ADDR)] {
            let moved = self.dma.access(|m| {
                let lo = m.config_write(reg, &device_model::regs::lo32(addr).to_le_bytes());
                let hi = m.config_write(reg + 4, &device_model::regs::hi32(addr).to_le_bytes());
                hi.or(lo)
            });
            if let Some(moved) = moved {
                self.map(moved.bar, Some(moved.new))?;
            }
        }
        Ok(())
    }

    fn index(bar: u8) -> usize {
        usize::from(bar != 0)
    }

    /// Maps `bar` at `at` (or nowhere), moving its doorbells with it.
    fn map(&mut self, bar: u8, at: Option<u64>) -> Result<(), bus::Error> {
        let i = Self::index(bar);
        if self.mapped[i] == at {
            return Ok(());
        }
        if let Some(old) = self.mapped[i].take() {
            self.mmio.unregister(old);
        }
        let result = match at {
            Some(base) => self
                .mmio
                .register(
                    base,
                    BAR_SIZE,
                    Arc::new(DmaBar {
                        dma: self.dma.clone(),
                        routing: self.routing.clone(),
                        bar,
                    }),
                )
                .map(|()| self.mapped[i] = Some(base)),
            None => Ok(()),
        };
        if bar == 0 {
            if let Some(d) = self.doorbells.as_mut() {
                if let Err(e) = d.move_to(self.mapped[0]) {
                    log::warn!("doorbells stay unmapped: {e}");
                }
            }
        }
        result
    }

    /// The guest moved a BAR: decode it there if it may be.
    fn moved(&mut self, moved: BarReprogrammed) {
        let new = moved.new;
        if !in_window(new, moved.size) {
            guest_warn(format_args!(
                "BAR{} moved to {new:#x}, outside the PCI window {:#x}..{:#x} or unaligned: \
                 not decoded",
                moved.bar, WINDOW.0, WINDOW.1
            ));
            let _ = self.map(moved.bar, None);
        } else if let Err(e) = self.map(moved.bar, Some(new)) {
            guest_warn(format_args!(
                "BAR{} moved to {new:#x}, overlapping another range: not decoded ({e})",
                moved.bar
            ));
        }
    }

    /// Brings the mappings in line with the model's BARs after a config
    /// write that did not move one: unmaps a BAR the model holds at 0
    /// (after an FLR), and maps a BAR that was not decoded because it
    /// overlapped a range that has moved away since.
    fn resync(&mut self) {
        let bars = self.dma.lock().model.bars();
        for (bar, addr, size) in bars {
            let mapped = self.mapped[Self::index(bar)];
            if addr == 0 && mapped.is_some() {
                let _ = self.map(bar, None);
            } else if addr != 0 && mapped.is_none() && in_window(addr, size) {
                // Still overlapping: stays unmapped (already logged).
                let _ = self.map(bar, Some(addr));
            }
        }
    }
}

/// Whether a BAR of `size` bytes at `addr` may be decoded: inside the PCI
/// window and aligned to its size.
fn in_window(addr: u64, size: u64) -> bool {
    addr >= WINDOW.0
        && addr.checked_add(size).is_some_and(|end| end <= WINDOW.1)
        && addr % size.max(1) == 0
}

impl PciDevice for DmaPci {
    fn config_read(&mut self, reg: usize) -> u32 {
        let mut data = [0u8; 4];
        self.dma
            .access(|m| m.config_read(reg as u64 * 4, &mut data));
        u32::from_le_bytes(data)
    }

    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
        let at = (reg * 4 + offset) as u64;
        // The device lock is released when `access` returns: only then are
        // the MMIO bus and the ioeventfds touched.
        let moved = self.dma.access(|m| m.config_write(at, data));
        self.routing.flush();
        if let Some(moved) = moved {
            self.moved(moved);
        }
        self.resync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::pci::ConfigAddress;
    use crate::dma_device::testing::rig;
    use crate::dma_device::{DoorbellMode, TimingMode, PCI_SLOT};
    use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
    use vmm_sys_util::eventfd::EventFd;

    fn reg(register: usize) -> ConfigAddress {
        ConfigAddress {
            bus: 0,
            device: u8::try_from(PCI_SLOT).unwrap(),
            function: 0,
            register,
        }
    }

    fn id_at(mmio: &MmioBus, addr: u64) -> Option<u32> {
        let mut d = [0u8; 4];
        mmio.read(addr, &mut d).then(|| u32::from_le_bytes(d))
    }

    /// Whether a doorbell ioeventfd is registered at `addr`: KVM refuses a
    /// second one with the same address, length and (no) datamatch.
    fn doorbell_at(vm: &VmFd, addr: u64) -> bool {
        let probe = EventFd::new(0).unwrap();
        let at = IoEventAddress::Mmio(addr);
        match vm.register_ioevent(&probe, &at, NoDatamatch) {
            Ok(()) => {
                vm.unregister_ioevent(&probe, &at, NoDatamatch).unwrap();
                false
            }
            Err(_) => true,
        }
    }

    #[test]
    fn bar_moves_re_register_the_range_and_the_doorbells() {
        let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Ioeventfd) else {
            return;
        };
        let (vm, pci, mmio) = (&rig.vm, &rig.pci, &rig.mmio);
        let tail0 = |bar0: u64| Doorbells::tail_address(bar0, 0);

        // Placed by "firmware"; memory space still off: the model answers
        // all ones, but the range is decoded and the doorbells are there.
        assert_eq!(pci.config_read(reg(0)), 0xda1a_1234);
        assert_eq!(pci.config_read(reg(4)) & !0xf, 0xc000_0000);
        assert_eq!(id_at(mmio, BAR0_ADDR), Some(u32::MAX));
        assert!(doorbell_at(vm, tail0(BAR0_ADDR)));
        pci.config_write(reg(1), 0, &[0x06, 0]);
        assert_eq!(id_at(mmio, BAR0_ADDR), Some(0x4c41_4d44));

        // Sizing leaves the range where it is.
        pci.config_write(reg(4), 0, &[0xff; 4]);
        assert_eq!(pci.config_read(reg(4)) & !0xf, 0xffff_f000);
        assert!(id_at(mmio, BAR0_ADDR).is_some());
        pci.config_write(reg(4), 0, &0xc000_0000u32.to_le_bytes());

        // A move inside the window: decoded there only, doorbells moved.
        pci.config_write(reg(4), 0, &0xd000_0000u32.to_le_bytes());
        assert_eq!(id_at(mmio, 0xd000_0000), Some(0x4c41_4d44));
        assert_eq!(id_at(mmio, BAR0_ADDR), None);
        assert!(doorbell_at(vm, tail0(0xd000_0000)));
        assert!(!doorbell_at(vm, tail0(BAR0_ADDR)));

        // Outside the window, or onto BAR2: not decoded, no doorbells.
        pci.config_write(reg(4), 0, &0x1000_0000u32.to_le_bytes());
        assert_eq!(id_at(mmio, 0x1000_0000), None);
        assert_eq!(id_at(mmio, 0xd000_0000), None);
        assert!(!doorbell_at(vm, tail0(0xd000_0000)));
        pci.config_write(reg(4), 0, &0xc000_1000u32.to_le_bytes());
        assert!(!doorbell_at(vm, tail0(BAR2_ADDR)));
        let mut d = [0u8; 4];
        assert!(mmio.read(BAR2_ADDR + 12, &mut d), "BAR2 still answers");
        assert_eq!(u32::from_le_bytes(d), 1, "vector 0 masked at reset");
        // BAR2 moves away: BAR0, no longer overlapping, is decoded.
        pci.config_write(reg(6), 0, &0xc000_8000u32.to_le_bytes());
        assert_eq!(id_at(mmio, BAR2_ADDR), Some(0x4c41_4d44), "BAR0 there now");
        assert!(doorbell_at(vm, tail0(BAR2_ADDR)));
        assert!(mmio.read(0xc000_8000 + 12, &mut d), "BAR2 moved");
        pci.config_write(reg(6), 0, &0xc000_1000u32.to_le_bytes());
        assert!(mmio.read(BAR2_ADDR + 12, &mut d));
        assert_eq!(
            u32::from_le_bytes(d),
            16 << 20,
            "BAR0 (MAX_XFER) holds the place: BAR2 not decoded"
        );
        pci.config_write(reg(4), 0, &0xc000_0000u32.to_le_bytes());
        assert!(mmio.read(BAR2_ADDR + 12, &mut d));
        assert_eq!(
            u32::from_le_bytes(d),
            1,
            "BAR2 decoded again once BAR0 left"
        );

        // Back home.
        pci.config_write(reg(4), 0, &0xc000_0000u32.to_le_bytes());
        assert_eq!(id_at(mmio, BAR0_ADDR), Some(0x4c41_4d44));
        assert!(doorbell_at(vm, tail0(BAR0_ADDR)));

        // FLR clears the BARs: nothing decoded, no doorbells.
        pci.config_write(reg(0x6c / 4), 0, &[1]);
        assert_eq!(id_at(mmio, BAR0_ADDR), None);
        assert_eq!(id_at(mmio, BAR2_ADDR), None);
        assert!(!doorbell_at(vm, tail0(BAR0_ADDR)));
    }
}
