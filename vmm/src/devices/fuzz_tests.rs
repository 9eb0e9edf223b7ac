//! Property tests: no sequence of guest port or MMIO accesses, of any
//! width and value, panics the platform devices or the bus, and nothing
//! unmodelled ever reads as anything but all ones.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use proptest::prelude::*;
use vm_superio::Trigger;

use super::bus::Buses;
use super::debug_port::{
    DebugExit, ExitRequest, Marker, DEBUG_EXIT_PORT, DEBUG_EXIT_PORTS, MARKER_PORT, MARKER_PORTS,
};
use super::pci::PciBus;
use super::pci_host::{HostBridge, PciConfigIo, CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT, PORTS};
use super::serial::{SerialDevice, COM1_PORT, COM1_PORTS};
use crate::timings::Timings;

#[derive(Default)]
struct CountingTrigger(AtomicU32);

impl Trigger for CountingTrigger {
    type E = ();
    fn trigger(&self) -> Result<(), ()> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn platform() -> (Buses, Arc<ExitRequest>) {
    let exit = Arc::new(ExitRequest::default());
    let serial = Arc::new(Mutex::new(SerialDevice::new(
        CountingTrigger::default(),
        Vec::<u8>::new(),
    )));
    let mut pci = PciBus::new();
    pci.add(0, Arc::new(Mutex::new(HostBridge::default())))
        .unwrap();
    let conf1 = Arc::new(Mutex::new(PciConfigIo::new(pci)));
    let mut buses = Buses::new();
    buses.attach_pio(COM1_PORT, COM1_PORTS, serial).unwrap();
    buses
        .attach_pio(
            DEBUG_EXIT_PORT,
            DEBUG_EXIT_PORTS,
            Arc::new(Mutex::new(DebugExit::new(exit.clone()))),
        )
        .unwrap();
    buses
        .attach_pio(
            MARKER_PORT,
            MARKER_PORTS,
            Arc::new(Mutex::new(Marker::new(Arc::new(Timings::new(
                Instant::now(),
            ))))),
        )
        .unwrap();
    buses
        .attach_pio(CONFIG_ADDRESS_PORT, PORTS, conf1.clone())
        .unwrap();
    buses.attach_pio(CONFIG_DATA_PORT, PORTS, conf1).unwrap();
    (buses, exit)
}

/// Ports worth hitting often, plus anything at all.
fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        COM1_PORT..COM1_PORT + 10,
        0xf0u16..0x100,
        0xcf6u16..0xd02,
        any::<u16>(),
    ]
}

#[derive(Debug, Clone)]
enum Access {
    PioRead(u16, usize),
    PioWrite(u16, Vec<u8>),
    MmioRead(u64, usize),
    MmioWrite(u64, Vec<u8>),
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        (port(), 1usize..=8).prop_map(|(p, n)| Access::PioRead(p, n)),
        (port(), proptest::collection::vec(any::<u8>(), 1..=8))
            .prop_map(|(p, d)| Access::PioWrite(p, d)),
        (any::<u64>(), 1usize..=8).prop_map(|(a, n)| Access::MmioRead(a, n)),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 1..=8))
            .prop_map(|(a, d)| Access::MmioWrite(a, d)),
    ]
}

fn modelled(port: u16, len: usize) -> bool {
    let end = usize::from(port) + len;
    let inside = |base: u16, n: u16| port >= base && end <= usize::from(base) + usize::from(n);
    inside(COM1_PORT, COM1_PORTS)
        || inside(DEBUG_EXIT_PORT, DEBUG_EXIT_PORTS)
        || inside(MARKER_PORT, MARKER_PORTS)
        || inside(CONFIG_ADDRESS_PORT, PORTS)
        || inside(CONFIG_DATA_PORT, PORTS)
}

proptest! {
    #[test]
    fn no_access_sequence_panics(accesses in proptest::collection::vec(access(), 1..200)) {
        let (buses, exit) = platform();
        for a in accesses {
            match a {
                Access::PioRead(port, n) => {
                    let mut d = vec![0u8; n];
                    buses.pio_read(port, &mut d);
                    if !modelled(port, n) {
                        prop_assert!(d.iter().all(|b| *b == 0xff), "port {port:#x}: {d:02x?}");
                    }
                }
                Access::PioWrite(port, d) => buses.pio_write(port, &d),
                Access::MmioRead(addr, n) => {
                    let mut d = vec![0u8; n];
                    buses.mmio_read(addr, &mut d);
                    prop_assert!(d.iter().all(|b| *b == 0xff));
                }
                Access::MmioWrite(addr, d) => buses.mmio_write(addr, &d),
            }
        }
        if let Some(status) = exit.get() {
            prop_assert!(status <= 63);
        }
    }
}
