//! The VMM's emulated devices and the buses they sit on.
//!
//! - `bus.rs`: the one small `BusDevice` trait (default no-ops) and the
//!   adapter onto vm-device's `IoManager`, which decodes port and MMIO
//!   ranges; unmodelled accesses are logged and read as all ones.
//! - `pci.rs`: the `PciDevice` trait on top of it and bus 0's slots.
//! - `pci_host.rs`: configuration mechanism #1 (0xCF8/0xCFC) and the host
//!   bridge at 00:00.0.
//! - `serial.rs`: COM1 (vm-superio 16550) writing to stdout.
//! - `debug_port.rs`: the debug-exit (0xF4) and marker (0xF8) ports.
//! - `cmos.rs`: a read-only CMOS clock (0x70/0x71) for Linux guests.
//! - `guest_log.rs`: rate-limited logging of guest misbehaviour.

pub mod bus;
pub mod cmos;
pub mod debug_port;
pub mod guest_log;
pub mod pci;
pub mod pci_host;
pub mod serial;

#[cfg(test)]
mod fuzz_tests;
