//! dmalab's VMM: a KVM virtual machine that boots the dmalab guest kernel
//! directly in long mode (`docs/boot-protocol.md`), with COM1, the
//! debug-exit and marker ports, and a PCI host bridge on conf1.
//!
//! Module map: `cli` (arguments), `runner` (from arguments to an exit
//! status: threads, timeout, reporting), `vm` (KVM VM, memory, vCPUs,
//! devices), `vcpu` (the KVM_RUN loop), `kick` (signalling vCPU threads),
//! `regdump` (register dumps), `boot/` (everything written into guest memory
//! before entry), `devices/` (buses and devices), `timings` (`--timings`),
//! `error` (exit statuses), `guest_image` (the embedded guest),
//! `kernel_file` (`--kernel`/`--initrd` to a dmalab or Linux guest),
//! `console_ring` (the main thread's view of KVM's coalesced COM1 ring),
//! `dma/` (the DMA controller wired in: PCI, MSI-X routes, doorbells,
//! clocks, device thread), `report` (run report and exit summary),
//! `campaign/` (`dmalab campaign`: scenarios, oracle, parallel runner).

pub mod boot;
pub mod campaign;
pub mod cli;
pub mod console_ring;
pub mod devices;
pub mod dma;
pub mod error;
pub mod guest_image;
pub mod kernel_file;
pub mod kick;
pub mod regdump;
pub mod report;
pub mod runner;
pub mod timings;
pub mod vcpu;
pub mod vm;
