//! PCI configuration mechanism #1 and the host bridge.
//!
//! `PciConfigIo` is attached at ports 0xCF8 (address, 4 ports) and 0xCFC
//! (data, 4 ports). A dword write to 0xCF8 latches the address: bit 31
//! enable, bits 23:16 bus, 15:11 device, 10:8 function, 7:2 register. A
//! 1-, 2- or 4-byte access at 0xCFC + *n* reaches byte *n* of that register
//! (an access that would cross the dword never arrives: the bus rejects it
//! and it reads as all ones). With the enable bit clear, data reads are all
//! ones and writes are dropped. Sub-dword accesses to 0xCF8 are not the
//! address register (on real chipsets they go elsewhere): ignored.
//!
//! The host bridge at 00:00.0 is Intel vendor 0x8086, device 0x0d57 (the ID
//! Firecracker's PCI root uses), class 06/00/00 (host bridge), header type
//! 0, no BARs, no capabilities; its configuration space is read-only.

use super::bus::BusDevice;
use super::pci::{ConfigAddress, PciBus, PciDevice, CONFIG_REGISTERS};

pub const CONFIG_ADDRESS_PORT: u16 = 0xcf8;
pub const CONFIG_DATA_PORT: u16 = 0xcfc;
pub const PORTS: u16 = 4;

const ENABLE: u32 = 1 << 31;

pub const HOST_BRIDGE_VENDOR: u16 = 0x8086;
pub const HOST_BRIDGE_DEVICE: u16 = 0x0d57;
const CLASS_BRIDGE_HOST: u32 = 0x0600_0000;

/// Decodes a conf1 address register value.
pub fn decode(address: u32) -> Option<ConfigAddress> {
    if address & ENABLE == 0 {
        return None;
    }
    let [reg, devfn, bus, _] = address.to_le_bytes();
    Some(ConfigAddress {
        bus,
        device: devfn >> 3,
        function: devfn & 0x7,
        register: usize::from(reg >> 2),
    })
}

/// The conf1 ports and the bus behind them.
#[derive(Debug)]
pub struct PciConfigIo {
    address: u32,
    bus: PciBus,
}

impl PciConfigIo {
    /// Conf1 over `bus`.
    pub fn new(bus: PciBus) -> Self {
        Self { address: 0, bus }
    }

    /// The bus, to add devices before the VM starts.
    pub fn bus_mut(&mut self) -> &mut PciBus {
        &mut self.bus
    }

    fn data_read(&self, offset: usize, data: &mut [u8]) {
        let value = match decode(self.address) {
            Some(addr) => self.bus.config_read(addr),
            None => u32::MAX,
        };
        let bytes = value.to_le_bytes();
        match bytes.get(offset..offset + data.len()) {
            Some(src) => data.copy_from_slice(src),
            None => data.fill(0xff),
        }
    }

    fn data_write(&self, offset: usize, data: &[u8]) {
        if offset + data.len() > 4 {
            return;
        }
        if let Some(addr) = decode(self.address) {
            self.bus.config_write(addr, offset, data);
        }
    }
}

impl BusDevice for PciConfigIo {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if base == u64::from(CONFIG_DATA_PORT) {
            self.data_read(offset, data);
        } else if offset == 0 && data.len() == 4 {
            data.copy_from_slice(&self.address.to_le_bytes());
        } else {
            data.fill(0xff);
        }
    }

    fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if base == u64::from(CONFIG_DATA_PORT) {
            self.data_write(offset, data);
        } else if let (0, Ok(dword)) = (offset, <[u8; 4]>::try_from(data)) {
            self.address = u32::from_le_bytes(dword) & !0x3;
        }
    }
}

/// The host bridge at 00:00.0.
#[derive(Debug)]
pub struct HostBridge {
    config: [u32; CONFIG_REGISTERS],
}

impl Default for HostBridge {
    fn default() -> Self {
        let mut config = [0u32; CONFIG_REGISTERS];
        config[0] = (u32::from(HOST_BRIDGE_DEVICE) << 16) | u32::from(HOST_BRIDGE_VENDOR);
        config[2] = CLASS_BRIDGE_HOST; // revision 0
        Self { config }
    }
}

impl PciDevice for HostBridge {
    fn config_read(&mut self, reg: usize) -> u32 {
        self.config.get(reg).copied().unwrap_or(u32::MAX)
    }

    /// Read-only: BAR sizing writes read back 0 (no BARs).
    fn config_write(&mut self, _reg: usize, _offset: usize, _data: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::{lock, Buses};
    use std::sync::{Arc, Mutex};

    fn address(bus: u32, dev: u32, func: u32, reg: u32) -> u32 {
        ENABLE | (bus << 16) | (dev << 11) | (func << 8) | (reg << 2)
    }

    fn machine() -> Buses {
        let mut bus = PciBus::new();
        bus.add(0, Arc::new(Mutex::new(HostBridge::default())))
            .unwrap();
        let conf1 = Arc::new(Mutex::new(PciConfigIo::new(bus)));
        let mut buses = Buses::new();
        buses
            .attach_pio(CONFIG_ADDRESS_PORT, PORTS, conf1.clone())
            .unwrap();
        buses.attach_pio(CONFIG_DATA_PORT, PORTS, conf1).unwrap();
        buses
    }

    fn read(buses: &Buses, port: u16, len: usize) -> u32 {
        let mut d = [0u8; 4];
        buses.pio_read(port, &mut d[..len]);
        u32::from_le_bytes(d) & (u32::MAX >> (32 - 8 * len))
    }

    #[test]
    fn decodes_bus_device_function_register() {
        let a = decode(address(0x12, 0x1f, 5, 0x3f)).unwrap();
        assert_eq!(
            (a.bus, a.device, a.function, a.register),
            (0x12, 0x1f, 5, 0x3f)
        );
        assert_eq!(decode(address(0, 3, 0, 4) & !ENABLE), None);
    }

    #[test]
    fn host_bridge_answers_at_00_00_0() {
        let buses = machine();
        buses.pio_write(CONFIG_ADDRESS_PORT, &address(0, 0, 0, 0).to_le_bytes());
        assert_eq!(read(&buses, CONFIG_ADDRESS_PORT, 4), address(0, 0, 0, 0));
        assert_eq!(read(&buses, CONFIG_DATA_PORT, 4), 0x0d57_8086);
        // Byte and word accesses at 0xCFD / 0xCFE.
        assert_eq!(read(&buses, CONFIG_DATA_PORT + 1, 1), 0x80);
        assert_eq!(read(&buses, CONFIG_DATA_PORT + 2, 2), 0x0d57);
        assert_eq!(read(&buses, CONFIG_DATA_PORT + 3, 1), 0x0d);
        buses.pio_write(CONFIG_ADDRESS_PORT, &address(0, 0, 0, 2).to_le_bytes());
        assert_eq!(read(&buses, CONFIG_DATA_PORT + 3, 1), 0x06, "class: bridge");
        assert_eq!(
            read(&buses, CONFIG_DATA_PORT + 2, 1),
            0x00,
            "subclass: host"
        );
    }

    #[test]
    fn absent_functions_and_disabled_accesses_read_all_ones() {
        let buses = machine();
        for addr in [
            address(0, 1, 0, 0),
            address(0, 0, 1, 0),
            address(1, 0, 0, 0),
        ] {
            buses.pio_write(CONFIG_ADDRESS_PORT, &addr.to_le_bytes());
            assert_eq!(read(&buses, CONFIG_DATA_PORT, 4), 0xffff_ffff);
            assert_eq!(read(&buses, CONFIG_DATA_PORT + 2, 2), 0xffff);
        }
        buses.pio_write(
            CONFIG_ADDRESS_PORT,
            &(address(0, 0, 0, 0) & !ENABLE).to_le_bytes(),
        );
        assert_eq!(read(&buses, CONFIG_DATA_PORT, 4), 0xffff_ffff);
        // A dword access at 0xCFE would cross the register: never delivered.
        buses.pio_write(CONFIG_ADDRESS_PORT, &address(0, 0, 0, 0).to_le_bytes());
        assert_eq!(read(&buses, CONFIG_DATA_PORT + 2, 4), 0xffff_ffff);
    }

    #[test]
    fn sub_dword_writes_to_the_address_port_are_ignored() {
        let conf1 = Arc::new(Mutex::new(PciConfigIo::new(PciBus::new())));
        let mut buses = Buses::new();
        buses
            .attach_pio(CONFIG_ADDRESS_PORT, PORTS, conf1.clone())
            .unwrap();
        buses.pio_write(CONFIG_ADDRESS_PORT, &address(0, 2, 0, 1).to_le_bytes());
        buses.pio_write(CONFIG_ADDRESS_PORT, &[0]);
        buses.pio_write(CONFIG_ADDRESS_PORT + 2, &[0, 0]);
        assert_eq!(lock(&conf1).address, address(0, 2, 0, 1));
    }

    #[test]
    fn host_bridge_is_read_only() {
        let mut hb = HostBridge::default();
        hb.config_write(4, 0, &[0xff; 4]);
        assert_eq!(hb.config_read(4), 0, "BAR0 sizing reads back 0: no BAR");
        assert_eq!(hb.config_read(64), u32::MAX);
    }
}
