//! The dmalab DMA controller as a pure state machine.
//!
//! No KVM, no file descriptors, no threads, no wall clock: side effects enter
//! through small traits (guest memory, interrupt delivery, the clock, the fault
//! plan) that the VMM implements and the tests fake. See `docs/device-spec.md`.

pub mod fault;
