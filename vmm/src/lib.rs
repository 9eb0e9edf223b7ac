//! dmalab's VMM: a KVM virtual machine that boots the dmalab guest kernel
//! directly in long mode (`docs/boot-protocol.md`), with COM1, the
//! debug-exit and marker ports, and a PCI host bridge on conf1.
//!
//! Module map (the glossary is in the README's layout table):
//! - `cli`: the options of `dmalab run`; `run`: from them to an exit status
//!   (threads, timeout, reporting); `error`: the errors and their statuses;
//! - `vm`: KVM VM, memory, vCPUs, devices; `vcpu`: the KVM_RUN loop;
//!   `vcpu_kick`: the signal that makes a vCPU leave KVM_RUN; `pause`: the
//!   VM-wide pause gate (vCPUs parked, device time stopped); `regdump`:
//!   register dumps; `timings`: `--timings`; `gdb/`: the gdb stub
//!   (`--gdb`);
//! - `boot/`: everything written into guest memory before entry;
//!   `guest_image`: the embedded guest; `kernel_file`: `--kernel` and
//!   `--initrd` to a dmalab or Linux guest;
//! - `devices/`: the buses and the platform devices (COM1, debug port, PCI
//!   host bridge); `console_ring`: the main thread's view of KVM's
//!   coalesced COM1 ring;
//! - `dma_device/`: the DMA controller of `device-model` in the VM: PCI
//!   adapter, MSI-X delivery, ioeventfd doorbells, clocks, device thread,
//!   control socket;
//! - `report`: the result line, the run report and the exit summary;
//! - `seccomp/`: the per-thread system-call filters (`--no-seccomp`).
//!
//! The `dmalab` binary (`vmm/dmalab`) puts this crate and the campaign
//! (`vmm/campaign`) under one command; what they share is
//! `dmalab-protocol` (`vmm/protocol`).

pub mod boot;
pub mod cli;
pub mod console_ring;
pub mod cpu_wait;
pub mod devices;
pub mod dma_device;
pub mod ending;
pub mod error;
pub mod gdb;
pub mod guest_image;
pub mod guest_state;
pub mod kernel_file;
pub mod pause;
pub mod regdump;
pub mod report;
pub mod run;
pub mod seccomp;
pub mod timings;
pub mod vcpu;
pub mod vcpu_kick;
pub mod vm;
