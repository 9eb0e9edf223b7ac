//! The dmalab DMA controller as a pure state machine.
//!
//! No KVM, no file descriptors, no threads, no wall clock: side effects enter
//! through small traits (guest memory, interrupt delivery, the clock, the fault
//! plan) that the VMM implements and the tests fake. See `docs/device-spec.md`.
//!
//! Layout: `controller/` is the device, and its submodules are the only
//! code that sees its state: `mod.rs` (the struct, config space, BAR
//! dispatch, the clock and its bounded slices), `bar0.rs` (the register
//! state machine), `doorbell.rs` (`TAIL` writes, shadow kicks, the
//! completion head), `channel_ctrl.rs` (`CTRL`: enable, abort, reset;
//! errors, removal), `pipeline.rs` (fetch → bursts → write-back, fault
//! effects), `interrupts.rs` (causes, coalescing, `INT_STATUS`/`INT_MASK`),
//! `guest_mem.rs` (every guest-memory access) and `channel.rs`
//! (per-channel registers and pipeline state). Around it: `descriptor.rs`
//! (ring formats), `regs.rs` (the BAR0 map), `pci/` (config space, MSI-X,
//! MSI), `interrupt_sink.rs` (the delivery trait), `trace/` (events, exact
//! counters, Chrome JSON), `config.rs` (parameters), `fault/` (fault plans
//! and engine).
//!
//! ```
//! use device_model::{Controller, DeviceConfig, RecordingSink};
//! use device_model::descriptor::{Descriptor, FLAG_IOC, OP_COPY, Completion};
//! use device_model::regs::{self, channel_reg};
//! use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let mut dev = Controller::new(DeviceConfig::default(), mem.clone(), RecordingSink::default()).unwrap();
//! dev.config_write(4, &[0x06, 0]); // memory space + bus master
//! let w = |dev: &mut Controller<_, _>, r, v: u32| dev.mmio_write(0, channel_reg(0, r), &v.to_le_bytes());
//! w(&mut dev, regs::CH_RING_BASE, 0x1000);
//! w(&mut dev, regs::CH_RING_SIZE, 16);
//! w(&mut dev, regs::CH_COMP_BASE, 0x2000);
//! w(&mut dev, regs::CH_CTRL, regs::CTRL_ENABLE);
//! mem.write_slice(&[7u8; 64], GuestAddress(0x8000)).unwrap();
//! let d = Descriptor { src: 0x8000, dst: 0x9000, len: 64, op: OP_COPY, flags: FLAG_IOC, cookie: 42 };
//! mem.write_slice(&d.to_bytes(), GuestAddress(0x1000)).unwrap();
//! w(&mut dev, regs::CH_TAIL, 1); // the doorbell
//! dev.run_until_idle();
//! let mut rec = [0u8; 32];
//! mem.read_slice(&mut rec, GuestAddress(0x2000)).unwrap();
//! let rec = Completion::from_bytes(&rec);
//! assert_eq!((rec.cookie, rec.bytes_done, rec.status, rec.phase()), (42, 64, 0, true));
//! let mut out = [0u8; 64];
//! mem.read_slice(&mut out, GuestAddress(0x9000)).unwrap();
//! assert_eq!(out, [7u8; 64]);
//! ```

pub mod config;
mod controller;
pub mod descriptor;
pub mod fault;
mod interrupt_sink;
mod pci;
pub mod regs;
pub mod trace;

pub use config::{ConfigError, DeviceConfig, TimingConfig, PROFILES};
pub use controller::{Controller, Progress};
pub use interrupt_sink::{CountingSink, InterruptSink, MsiMessage, RecordingSink};
pub use pci::BarReprogrammed;
pub use trace::{Counters, EventKind, TraceEvent};

#[cfg(test)]
mod tests;
