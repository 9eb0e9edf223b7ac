//! Crate-level unit tests of the whole device (no KVM): a [`Rig`] wraps a
//! [`Controller`] over a small `GuestMemoryMmap` and a [`RecordingSink`],
//! plays the driver (programs PCI, MSI-X and channels, posts descriptors,
//! consumes completions by phase bit) and lets tests inspect everything.
//!
//! `registers.rs` covers the register map and hostile accesses,
//! `pipeline.rs` transfers, timing, interrupts and coalescing, `faults.rs`
//! one test per fault effect, `props.rs` the property tests, `counters.rs`
//! the exact counters under trace overflow, `coalescing.rs` bursts moved
//! together, `slices.rs` bounded slices
//! against whole runs, `profiles.rs` timing profiles against the figures
//! their sources publish.

// Test data is built from small literals; truncation cannot happen there.
#![allow(clippy::cast_possible_truncation)]

mod coalescing;
mod counters;
mod faults;
mod pipeline;
mod profiles;
mod props;
mod registers;
mod slices;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::descriptor::{Completion, Descriptor, DESCRIPTOR_SIZE, FLAG_IOC, OP_COPY};
use crate::fault::{FaultEffect, FaultEngine, FaultPlan, FaultRule, Trigger};
use crate::interrupt_sink::{MsiMessage, RecordingSink};
use crate::pci::config::MSIX_CAP;
use crate::regs::{self, channel_reg};
use crate::trace::{EventKind, TraceEvent};
use crate::{Controller, DeviceConfig};

/// Guest memory size of the rig.
pub const MEM: u64 = 1 << 20;
/// Where data buffers start.
pub const DATA: u64 = 0x40000;

pub fn ring_addr(c: u8) -> u64 {
    0x10000 + 0x2000 * u64::from(c)
}
pub fn comp_addr(c: u8) -> u64 {
    0x20000 + 0x2000 * u64::from(c)
}
pub fn shadow_addr(c: u8) -> u64 {
    0x30000 + 0x100 * u64::from(c)
}
/// MSI-X message data of vector `v` as the rig programs it.
pub fn msg(v: u16) -> MsiMessage {
    MsiMessage {
        address: 0xFEE0_0000,
        data: 0x20 + u32::from(v),
    }
}

pub type Dev = Controller<GuestMemoryMmap, RecordingSink>;

pub struct Rig {
    pub dev: Dev,
    pub mem: GuestMemoryMmap,
    /// Driver-side tail per channel.
    pub tail: Vec<u32>,
    /// Driver-side completion index and expected phase per channel.
    pub consumed: Vec<(u32, bool)>,
    pub size: Vec<u32>,
}

impl Rig {
    /// Device with PCI memory + bus master on, MSI-X enabled and every
    /// vector unmasked.
    pub fn new(cfg: DeviceConfig) -> Rig {
        Self::with_faults(cfg, FaultEngine::disabled())
    }

    pub fn with_rules(cfg: DeviceConfig, rules: Vec<(Trigger, FaultEffect)>) -> Rig {
        let rules = rules
            .into_iter()
            .map(|(trigger, effect)| FaultRule {
                name: None,
                trigger,
                effect,
            })
            .collect();
        Self::with_faults(cfg, FaultEngine::new(FaultPlan { rules }, 7))
    }

    pub fn with_faults(cfg: DeviceConfig, faults: FaultEngine) -> Rig {
        Self::with_memory(cfg, faults, MEM)
    }

    /// As `with_faults`, with `bytes` of guest memory (at least `MEM`).
    pub fn with_memory(cfg: DeviceConfig, faults: FaultEngine, bytes: u64) -> Rig {
        let size = usize::try_from(bytes.max(MEM)).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), size)]).unwrap();
        let dev = Controller::new(cfg, mem.clone(), RecordingSink::default())
            .unwrap()
            .with_faults(faults);
        let n = usize::from(cfg.channels);
        let mut rig = Rig {
            dev,
            mem,
            tail: vec![0; n],
            consumed: vec![(0, true); n],
            size: vec![0; n],
        };
        rig.dev.config_write(4, &[0x06, 0]);
        for v in 0..cfg.vectors() {
            let m = msg(v);
            let at = 16 * u64::from(v);
            rig.dev.mmio_write(2, at, &m.address.to_le_bytes());
            rig.dev.mmio_write(2, at + 8, &m.data.to_le_bytes());
            rig.dev.mmio_write(2, at + 12, &0u32.to_le_bytes());
        }
        rig.dev
            .config_write(MSIX_CAP as u64 + 2, &0x8000u16.to_le_bytes());
        rig
    }

    pub fn w(&mut self, c: u8, reg: u64, v: u32) {
        self.dev
            .mmio_write(0, channel_reg(c, reg), &v.to_le_bytes());
    }
    pub fn r(&mut self, c: u8, reg: u64) -> u32 {
        self.gr(channel_reg(c, reg))
    }
    pub fn gw(&mut self, off: u64, v: u32) {
        self.dev.mmio_write(0, off, &v.to_le_bytes());
    }
    pub fn gr(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.mmio_read(0, off, &mut b);
        u32::from_le_bytes(b)
    }
    pub fn bad_access(&mut self) -> u32 {
        self.gr(regs::BAD_ACCESS)
    }

    /// Programs channel `c` with a ring of `size` (and a shadow) and enables it.
    pub fn setup(&mut self, c: u8, size: u32) {
        self.w(c, regs::CH_RING_BASE, regs::lo32(ring_addr(c)));
        self.w(c, regs::CH_RING_SIZE, size);
        self.w(c, regs::CH_COMP_BASE, regs::lo32(comp_addr(c)));
        self.w(c, regs::CH_SHADOW_BASE, regs::lo32(shadow_addr(c)));
        self.w(c, regs::CH_CTRL, regs::CTRL_ENABLE);
        self.size[usize::from(c)] = size;
    }

    /// Writes `d` at the driver's tail; returns its index. Does not ring.
    pub fn post(&mut self, c: u8, d: Descriptor) -> u32 {
        let ci = usize::from(c);
        let index = self.tail[ci];
        let at = ring_addr(c) + u64::from(index) * DESCRIPTOR_SIZE;
        self.mem
            .write_slice(&d.to_bytes(), GuestAddress(at))
            .unwrap();
        self.tail[ci] = (index + 1) % self.size[ci];
        index
    }

    /// Rings channel `c`'s doorbell with the MMIO value.
    pub fn ring(&mut self, c: u8) {
        let t = self.tail[usize::from(c)];
        self.w(c, regs::CH_TAIL, t);
    }

    /// Writes the shadow (tail, comp head) of channel `c`.
    pub fn write_shadow(&mut self, c: u8) {
        let ci = usize::from(c);
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.tail[ci].to_le_bytes());
        b[4..].copy_from_slice(&self.consumed[ci].0.to_le_bytes());
        self.mem
            .write_slice(&b, GuestAddress(shadow_addr(c)))
            .unwrap();
    }

    /// Consumes every new completion of channel `c` (phase bit), returning
    /// them. Does not tell the device.
    pub fn completions(&mut self, c: u8) -> Vec<Completion> {
        let ci = usize::from(c);
        let mut out = Vec::new();
        loop {
            let (idx, phase) = self.consumed[ci];
            let mut b = [0u8; 32];
            self.mem
                .read_slice(&mut b, GuestAddress(comp_addr(c) + u64::from(idx) * 32))
                .unwrap();
            let rec = Completion::from_bytes(&b);
            if rec.phase() != phase {
                return out;
            }
            out.push(rec);
            let next = (idx + 1) % self.size[ci];
            self.consumed[ci] = (next, if next == 0 { !phase } else { phase });
        }
    }

    pub fn fill(&mut self, addr: u64, bytes: &[u8]) {
        self.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
    }
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }

    pub fn signals(&self, v: u16) -> usize {
        self.dev.interrupts().count(v)
    }

    pub fn events(&self) -> Vec<TraceEvent> {
        self.dev.trace_events().to_vec()
    }

    pub fn kinds<F: Fn(&EventKind) -> bool>(&self, f: F) -> Vec<TraceEvent> {
        self.dev
            .trace_events()
            .iter()
            .filter(|e| f(&e.kind))
            .copied()
            .collect()
    }

    /// Every burst in the trace, its runs (`EventKind::Bursts`) taken
    /// apart: all but a run's last burst are full ones of the configured
    /// length, back to back; checks that they add up to the run.
    pub fn bursts(&self) -> Vec<Burst> {
        let timing = self.dev.config().timing;
        let full = timing.burst_bytes;
        let mut out = Vec::new();
        for e in self.dev.trace_events() {
            let EventKind::Bursts {
                channel,
                seq,
                start,
                bursts,
                bytes,
            } = e.kind
            else {
                continue;
            };
            assert!(bursts > 0, "an empty run: {e:?}");
            let last = bytes - full * (bursts - 1);
            assert!(last > 0 && last <= full, "run bytes: {e:?}");
            let mut at = start;
            for k in 0..bursts {
                let b = if k + 1 == bursts { last } else { full };
                let end = at + timing.burst_cycles(b);
                out.push(Burst {
                    channel,
                    seq,
                    start: at,
                    end,
                    bytes: b,
                });
                at = end;
            }
            assert_eq!(at, e.cycle, "run's bursts do not end where it does: {e:?}");
        }
        out
    }
}

/// One burst, taken out of its run in the trace (`Rig::bursts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub channel: u8,
    pub seq: u64,
    pub start: u64,
    pub end: u64,
    pub bytes: u32,
}

/// A COPY descriptor with IOC.
pub fn copy(src: u64, dst: u64, len: u32, cookie: u64) -> Descriptor {
    Descriptor {
        src,
        dst,
        len,
        op: OP_COPY,
        flags: FLAG_IOC,
        cookie,
    }
}

pub fn nth(n: u64) -> Trigger {
    Trigger {
        nth: Some(n),
        ..Trigger::default()
    }
}
