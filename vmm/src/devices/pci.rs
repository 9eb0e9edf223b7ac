//! The PCI device trait and the slots of bus 0.
//!
//! `PciDevice` is a register state machine over configuration space (dword
//! registers, sub-dword writes) plus its BARs' MMIO. Every `PciDevice` is a
//! `BusDevice` through the blanket impl below (crosvm's pattern), so once
//! its BAR ranges are known it is attached to the MMIO bus with
//! `Buses::attach_mmio` and no glue; the same `Arc<Mutex<_>>` goes into a
//! slot here for configuration accesses.
//!
//! Bus 0 only, function 0 only (single-function devices). An empty slot, a
//! non-zero function or another bus reads as all ones ("no device").

use std::sync::{Arc, Mutex};

use super::bus::{lock, BusDevice};

/// Slots (device numbers) on bus 0.
pub const SLOTS: usize = 32;
/// 256-byte configuration space: 64 dword registers.
pub const CONFIG_REGISTERS: usize = 64;
/// What a read from an absent function returns.
pub const ABSENT: u32 = 0xffff_ffff;

/// A PCI function.
pub trait PciDevice: Send {
    /// The 32-bit configuration register `reg` (0..64).
    fn config_read(&mut self, reg: usize) -> u32;
    /// Writes `data` (1, 2 or 4 bytes) at byte `offset` of register `reg`;
    /// `offset + data.len() <= 4`.
    fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]);
    /// An MMIO read at guest-physical `addr` inside one of its BARs.
    fn bar_read(&mut self, addr: u64, data: &mut [u8]) {
        let _ = addr;
        data.fill(0xff);
    }
    /// An MMIO write at guest-physical `addr` inside one of its BARs.
    fn bar_write(&mut self, addr: u64, data: &[u8]) {
        let _ = (addr, data);
    }
}

impl<T: PciDevice> BusDevice for T {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        self.bar_read(base.wrapping_add(offset), data);
    }
    fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
        self.bar_write(base.wrapping_add(offset), data);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PCI slot {0} does not exist on bus 0")]
    NoSuchSlot(usize),
    #[error("PCI slot {0} is already taken")]
    SlotTaken(usize),
}

/// Configuration address of one function (conf1 decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigAddress {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
    /// Dword register index, 0..64.
    pub register: usize,
}

/// Bus 0 and the devices in its slots.
#[derive(Default)]
pub struct PciBus {
    slots: Vec<Option<Arc<Mutex<dyn PciDevice>>>>,
}

impl std::fmt::Debug for PciBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_some())
            .collect();
        f.debug_struct("PciBus").field("slots_used", &used).finish()
    }
}

impl PciBus {
    pub fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }

    /// Puts `device` in `slot` of bus 0 (function 0).
    pub fn add(&mut self, slot: usize, device: Arc<Mutex<dyn PciDevice>>) -> Result<(), Error> {
        match self.slots.get_mut(slot) {
            None => Err(Error::NoSuchSlot(slot)),
            Some(Some(_)) => Err(Error::SlotTaken(slot)),
            Some(entry) => {
                *entry = Some(device);
                Ok(())
            }
        }
    }

    fn function(&self, addr: ConfigAddress) -> Option<&Arc<Mutex<dyn PciDevice>>> {
        if addr.bus != 0 || addr.function != 0 || addr.register >= CONFIG_REGISTERS {
            return None;
        }
        self.slots.get(usize::from(addr.device))?.as_ref()
    }

    pub fn config_read(&self, addr: ConfigAddress) -> u32 {
        match self.function(addr) {
            Some(device) => lock(device).config_read(addr.register),
            None => ABSENT,
        }
    }

    pub fn config_write(&self, addr: ConfigAddress, offset: usize, data: &[u8]) {
        if let Some(device) = self.function(addr) {
            lock(device).config_write(addr.register, offset, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Configuration space of plain registers; BAR MMIO echoes the address.
    struct Regs([u32; CONFIG_REGISTERS]);

    impl PciDevice for Regs {
        fn config_read(&mut self, reg: usize) -> u32 {
            self.0[reg]
        }
        fn config_write(&mut self, reg: usize, offset: usize, data: &[u8]) {
            let mut bytes = self.0[reg].to_le_bytes();
            bytes[offset..offset + data.len()].copy_from_slice(data);
            self.0[reg] = u32::from_le_bytes(bytes);
        }
        fn bar_read(&mut self, addr: u64, data: &mut [u8]) {
            data.copy_from_slice(&addr.to_le_bytes()[..data.len()]);
        }
    }

    fn at(device: u8, register: usize) -> ConfigAddress {
        ConfigAddress {
            bus: 0,
            device,
            function: 0,
            register,
        }
    }

    #[test]
    fn slots_answer_and_empty_ones_read_all_ones() {
        let mut bus = PciBus::new();
        let mut regs = [0u32; CONFIG_REGISTERS];
        regs[0] = 0x1234_abcd;
        bus.add(3, Arc::new(Mutex::new(Regs(regs)))).unwrap();
        assert_eq!(bus.config_read(at(3, 0)), 0x1234_abcd);
        assert_eq!(bus.config_read(at(4, 0)), ABSENT);
        assert_eq!(
            bus.config_read(ConfigAddress {
                function: 1,
                ..at(3, 0)
            }),
            ABSENT
        );
        assert_eq!(
            bus.config_read(ConfigAddress { bus: 1, ..at(3, 0) }),
            ABSENT
        );
        bus.config_write(at(3, 1), 2, &[0xaa, 0xbb]);
        assert_eq!(bus.config_read(at(3, 1)), 0xbbaa_0000);
        assert!(matches!(
            bus.add(3, Arc::new(Mutex::new(Regs(regs)))),
            Err(Error::SlotTaken(3))
        ));
        assert!(matches!(
            bus.add(32, Arc::new(Mutex::new(Regs(regs)))),
            Err(Error::NoSuchSlot(32))
        ));
    }

    #[test]
    fn a_pci_device_is_a_bus_device() {
        let mut dev = Regs([0; CONFIG_REGISTERS]);
        let mut data = [0u8; 4];
        BusDevice::read(&mut dev, 0xc000_0000, 0x10, &mut data);
        assert_eq!(u32::from_le_bytes(data), 0xc000_0010);
    }
}
