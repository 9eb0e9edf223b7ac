//! One vCPU thread: the KVM_RUN loop and the decoding of its exits.
//!
//! The thread never decides the VM's fate; it sends one `Report` (guest exit
//! status, triple fault, KVM failure, or "stopped" after a kick) to the main
//! thread and ends. Register dumps are taken here, where the vCPU fd is.
//!
//! Port I/O: kvm-ioctls' `VcpuExit::IoOut(port, data)` hands over
//! `size * count` bytes but not `size`, so `outl` and a 4-byte `rep outsb`
//! would look alike. We read `size` from `kvm_run.io` after the exit and
//! split the data into `count` accesses of `size` bytes: on hardware KVM a
//! whole `rep outsb` buffer to COM1 is one exit (this platform's emulator
//! exits once per byte, which is why COM1's data port is coalesced, below).
//!
//! Order of work after KVM_RUN returns: decode the exit, drain KVM's
//! coalesced COM1 ring (those writes happened before this exit), then
//! perform the exit's access. The exit's data slice borrows the vCPU fd and
//! draining needs it too, so the slice is carried as a raw pointer into the
//! vCPU's `kvm_run` mapping for those few lines.
//!
//! Hot path: no allocation and no logging per exit; a relaxed counter for
//! `--timings`, one atomic load for the debug-exit latch, one for the stop
//! flag. No lock is held across KVM_RUN: devices lock only inside an access.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use kvm_bindings::{
    kvm_debug_exit_arch, kvm_run, KVM_INTERNAL_ERROR_EMULATION,
    KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::GuestMemoryMmap;

use crate::devices::bus::{self, Buses};
use crate::devices::debug_port::ExitRequest;
use crate::devices::guest_log;
use crate::gdb::VcpuDebug;
use crate::pause::PauseGate;
use crate::regdump::RegDump;
use crate::timings::{ExitKind, Stamp, Timings};
use crate::vcpu_kick;

/// How a vCPU thread ended.
#[derive(Debug)]
pub enum Outcome {
    /// The guest wrote this status to the debug-exit port.
    GuestExit(u8),
    /// KVM_EXIT_SHUTDOWN (or a shutdown/reset system event).
    TripleFault { why: String, dump: RegDump },
    /// KVM internal error, failed entry, unexpected exit, KVM_RUN error.
    KvmFailure { why: String, dump: RegDump },
    /// Kicked out of KVM_RUN by the main thread (timeout).
    Stopped(RegDump),
}

#[derive(Debug)]
pub struct Report {
    pub index: u8,
    pub outcome: Outcome,
}

/// Everything a vCPU thread owns or shares.
#[derive(Debug)]
pub struct Vcpu {
    pub index: u8,
    pub fd: VcpuFd,
    pub buses: Arc<Buses>,
    pub exit_request: Arc<ExitRequest>,
    pub stop: Arc<AtomicBool>,
    /// The VM-wide pause: the loop parks here while the VM is paused.
    pub pause: Arc<PauseGate>,
    /// The gdb stub's end of this vCPU (`--gdb`).
    pub debug: Option<VcpuDebug>,
    pub timings: Arc<Timings>,
    pub memory: GuestMemoryMmap,
    /// Lock for draining KVM's coalesced COM1 ring (`vm::coalesce_console`),
    /// if in use.
    pub console_ring: Option<Arc<Mutex<()>>>,
}

/// What to do after one exit.
enum Step {
    Continue,
    Pio {
        port: u16,
        out: bool,
        data: *mut u8,
        len: usize,
    },
    Mmio {
        addr: u64,
        write: bool,
        data: *mut u8,
        len: usize,
    },
    Debug(kvm_debug_exit_arch),
    InternalError,
    TripleFault(String),
    Failure(String),
}

impl Vcpu {
    /// Runs the guest until it ends, then reports to `reports`.
    pub fn run(mut self, reports: Sender<Report>) {
        crate::cpu_wait::count_this_thread();
        crate::seccomp::enter(crate::seccomp::Thread::Vcpu);
        let registration = vcpu_kick::Registration::new(self.fd.get_kvm_run());
        self.pause.enter(usize::from(self.index));
        let outcome = self.run_loop();
        self.pause.leave(usize::from(self.index));
        if let Some(debug) = &self.debug {
            debug.ended(self.index);
        }
        drop(registration);
        // The main thread may already have gone: nothing left to tell.
        let _ = reports.send(Report {
            index: self.index,
            outcome,
        });
    }

    fn run_loop(&mut self) -> Outcome {
        self.timings.stamp(Stamp::GuestEntry);
        loop {
            if self.pause.requested() {
                self.pause
                    .park(usize::from(self.index), &self.fd, &self.memory);
            }
            if self.stop.load(Ordering::Acquire) {
                return Outcome::Stopped(self.dump());
            }
            let result = self.fd.run().map(|exit| decode(exit, &self.timings));
            // Coalesced console bytes were written before this exit.
            self.drain_console_ring();
            let step = match result {
                Ok(step) => step,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    self.fd.set_kvm_immediate_exit(0);
                    Step::Continue
                }
                Err(e) => Step::Failure(format!("KVM_RUN failed: {e}")),
            };
            match step {
                Step::Continue => {}
                Step::Pio {
                    port,
                    out,
                    data,
                    len,
                } => self.port_io(port, out, data, len),
                Step::Mmio {
                    addr,
                    write,
                    data,
                    len,
                } => {
                    // SAFETY: `data`/`len` is the slice kvm-ioctls built for
                    // this exit over `kvm_run.mmio.data`, inside the vCPU's
                    // kvm_run mapping that lives as long as `self.fd`;
                    // nothing else references it until the next KVM_RUN.
                    let data = unsafe { std::slice::from_raw_parts_mut(data, len) };
                    if write {
                        self.buses.mmio_write(addr, data);
                    } else {
                        self.buses.mmio_read(addr, data);
                    }
                }
                Step::Debug(exit) => match &self.debug {
                    Some(debug) => debug.debug_exit(self.index, exit.dr6, &self.stop),
                    None => log::warn!("vCPU {}: debug exit without a debugger", self.index),
                },
                Step::InternalError => {
                    let (why, insn) = internal_error(self.fd.get_kvm_run());
                    let mut dump = self.dump();
                    dump.kvm_insn = insn;
                    return Outcome::KvmFailure { why, dump };
                }
                Step::TripleFault(why) => {
                    return Outcome::TripleFault {
                        why,
                        dump: self.dump(),
                    }
                }
                Step::Failure(why) => {
                    return Outcome::KvmFailure {
                        why,
                        dump: self.dump(),
                    }
                }
            }
            if let Some(span) = crate::pause::take_held() {
                crate::pause::add_steal(&self.fd, &self.memory, span);
            }
            if let Some(status) = self.exit_request.get() {
                return Outcome::GuestExit(status);
            }
        }
    }

    /// Performs the `count` accesses of one port I/O exit.
    fn port_io(&mut self, port: u16, out: bool, data: *mut u8, len: usize) {
        // SAFETY: the exit reason was KVM_EXIT_IO, so `io` is the union's
        // active member.
        let io = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.io };
        let size = usize::from(io.size);
        let size = if size == 0 || len % size != 0 {
            len.max(1)
        } else {
            size
        };
        // SAFETY: `data`/`len` is the slice kvm-ioctls built for this exit
        // from the vCPU's kvm_run mapping (`kvm_run + io.data_offset`, past
        // the kvm_run struct itself), which lives as long as `self.fd`. No
        // other reference to those bytes exists until the next KVM_RUN,
        // which cannot happen while this slice lives.
        let data = unsafe { std::slice::from_raw_parts_mut(data, len) };
        for access in data.chunks_mut(size) {
            if out {
                self.buses.pio_write(port, access);
            } else {
                self.buses.pio_read(port, access);
            }
        }
    }

    /// Replays the COM1 writes KVM coalesced, in order.
    fn drain_console_ring(&mut self) {
        let Some(ring) = self.console_ring.as_ref() else {
            return;
        };
        let _guard = bus::lock(ring);
        while let Ok(Some(entry)) = self.fd.coalesced_mmio_read() {
            let len = usize::try_from(entry.len)
                .unwrap_or(usize::MAX)
                .min(entry.data.len());
            match u16::try_from(entry.phys_addr) {
                Ok(port) => self.buses.pio_write(port, &entry.data[..len]),
                Err(_) => guest_log::warn(format_args!(
                    "coalesced write at {:#x} ignored",
                    entry.phys_addr
                )),
            }
        }
    }

    fn dump(&self) -> RegDump {
        RegDump::capture(self.index, &self.fd, &self.memory)
    }
}

fn decode(exit: VcpuExit<'_>, timings: &Timings) -> Step {
    match exit {
        VcpuExit::IoOut(port, data) => {
            timings.count_exit(ExitKind::Pio);
            Step::Pio {
                port,
                out: true,
                data: data.as_ptr().cast_mut(),
                len: data.len(),
            }
        }
        VcpuExit::IoIn(port, data) => {
            timings.count_exit(ExitKind::Pio);
            Step::Pio {
                port,
                out: false,
                data: data.as_mut_ptr(),
                len: data.len(),
            }
        }
        VcpuExit::MmioRead(addr, data) => {
            timings.count_exit(ExitKind::Mmio);
            Step::Mmio {
                addr,
                write: false,
                data: data.as_mut_ptr(),
                len: data.len(),
            }
        }
        VcpuExit::MmioWrite(addr, data) => {
            timings.count_exit(ExitKind::Mmio);
            Step::Mmio {
                addr,
                write: true,
                data: data.as_ptr().cast_mut(),
                len: data.len(),
            }
        }
        VcpuExit::Intr => {
            timings.count_exit(ExitKind::Other);
            Step::Continue
        }
        VcpuExit::Debug(exit) => {
            timings.count_exit(ExitKind::Other);
            Step::Debug(exit)
        }
        VcpuExit::Shutdown => Step::TripleFault("guest triple fault (KVM_EXIT_SHUTDOWN)".into()),
        VcpuExit::InternalError => Step::InternalError,
        VcpuExit::SystemEvent(kind, _) if kind == KVM_SYSTEM_EVENT_SHUTDOWN => {
            Step::TripleFault("guest shut down (KVM_SYSTEM_EVENT_SHUTDOWN)".into())
        }
        VcpuExit::SystemEvent(kind, _) if kind == KVM_SYSTEM_EVENT_RESET => {
            Step::TripleFault("guest reset (KVM_SYSTEM_EVENT_RESET)".into())
        }
        VcpuExit::FailEntry(reason, cpu) => Step::Failure(format!(
            "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {reason:#x} on host CPU {cpu}"
        )),
        VcpuExit::Hlt => Step::Failure(
            "KVM_EXIT_HLT: the guest halted, but the in-kernel irqchip should handle hlt".into(),
        ),
        other => Step::Failure(format!("unexpected KVM exit: {other:?}")),
    }
}

/// Describes a KVM_EXIT_INTERNAL_ERROR; returns the instruction bytes of an
/// emulation failure if KVM supplied them.
fn internal_error(run: &kvm_run) -> (String, Option<Vec<u8>>) {
    // SAFETY: the exit reason was KVM_EXIT_INTERNAL_ERROR, so `internal` is
    // the union's active member (plain integers: any bit pattern is valid).
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let ndata = usize::try_from(internal.ndata)
        .unwrap_or(usize::MAX)
        .min(internal.data.len());
    let data = &internal.data[..ndata];
    let kind = match internal.suberror {
        1 => "emulation failure (an instruction KVM's emulator cannot run)",
        2 => "exception while delivering an exception",
        3 => "event delivery failed",
        4 => "unexpected exit reason",
        _ => "unknown suberror",
    };
    let insn = match data {
        [flags, b0, b1, ..]
            if internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                && flags & u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0 =>
        {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&b0.to_le_bytes());
            bytes[8..].copy_from_slice(&b1.to_le_bytes());
            let size = usize::from(bytes[0]).min(15);
            Some(bytes[1..=size].to_vec())
        }
        _ => None,
    };
    let why = format!(
        "KVM internal error: {kind} (suberror {}, data {data:x?})",
        internal.suberror
    );
    (why, insn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_failure_carries_the_instruction_bytes() {
        // SAFETY: kvm_run is plain data; all zeroes is a valid value.
        let mut run: kvm_run = unsafe { std::mem::zeroed() };
        let mut b = [0u8; 16];
        b[0] = 3; // insn_size
        b[1..4].copy_from_slice(&[0x0f, 0x01, 0xf9]); // rdtscp
                                                      // SAFETY: writing plain integers into the union's `internal` member.
        unsafe {
            run.__bindgen_anon_1.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
            run.__bindgen_anon_1.internal.ndata = 3;
            run.__bindgen_anon_1.internal.data[0] = 1;
            run.__bindgen_anon_1.internal.data[1] = u64::from_le_bytes(b[..8].try_into().unwrap());
            run.__bindgen_anon_1.internal.data[2] = u64::from_le_bytes(b[8..].try_into().unwrap());
        }
        let (why, insn) = internal_error(&run);
        assert!(why.contains("emulation failure"), "{why}");
        assert_eq!(insn, Some(vec![0x0f, 0x01, 0xf9]));
    }

    #[test]
    fn other_internal_errors_have_no_bytes_and_bounded_data() {
        // SAFETY: as above.
        let mut run: kvm_run = unsafe { std::mem::zeroed() };
        run.__bindgen_anon_1.internal.suberror = 3;
        run.__bindgen_anon_1.internal.ndata = 1000; // hostile/odd: clamped
        let (why, insn) = internal_error(&run);
        assert!(why.contains("event delivery failed"), "{why}");
        assert_eq!(insn, None);
    }
}
