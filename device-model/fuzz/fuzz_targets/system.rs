//! System-level fuzz target: the whole device as a guest and its VMM see
//! it. The input picks a fault plan (kind, trigger) and a seed, then is a
//! program of config-space, BAR0, BAR2, doorbell, time, guest-memory,
//! "descriptor at a memory edge" and FLR operations against a device over
//! two guest RAM regions with a hole between them and a gap above.
//!
//! Invariants checked here (a panic is a finding):
//! - every MSI/MSI-X message carries the route last reported for its slot
//!   through `route_changed`;
//! - no message while bus mastering is off;
//! - a channel that is `IDLE` or `BUSY` has `HEAD` and `COMP_TAIL` below
//!   its `RING_SIZE`;
//! - after the program: FLR, then a clean 256-byte copy with an interrupt
//!   works (data, record, one message on the new route);
//! - no access outside guest memory: vm-memory returns errors for those,
//!   and the sanitizer cargo fuzz builds with catches any other.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run system` from `device-model/fuzz/`
//! (`docs/fuzzing.md`).

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use device_model::descriptor::{Completion, Descriptor, FLAG_IOC, OP_COPY};
use device_model::fault::{FaultEngine, FaultPlan};
use device_model::regs::{self, channel_reg};
use device_model::{Controller, DeviceConfig, InterruptSink, MsiMessage};
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM: [0, LOW_END) and [HIGH, HIGH_END); a hole between them.
const LOW_END: u64 = 0x8000;
const HIGH: u64 = 0xC000;
const HIGH_END: u64 = 0x14000;
/// Edges where descriptors, rings and buffers are placed.
const EDGES: [u64; 6] = [0, LOW_END - 32, LOW_END, HIGH - 32, HIGH, HIGH_END - 32];
const CMD: u64 = 0x04;
const AF_CTRL: u64 = 0x6C;
const MSIX_CTRL: u64 = 0x42;
const CMD_MEMORY_BUS_MASTER: u8 = 0x06;

/// What the sink knows, shared with the harness.
#[derive(Default)]
struct Seen {
    routes: Vec<Option<MsiMessage>>,
    /// Bus mastering as the harness last read it (during a config write:
    /// on if it was on before or after).
    bus_master: bool,
    signals: u64,
    last: Option<(u16, MsiMessage)>,
}

#[derive(Clone, Default)]
struct Checked(Rc<RefCell<Seen>>);

impl InterruptSink for Checked {
    fn signal(&mut self, vector: u16, msg: MsiMessage) {
        let mut s = self.0.borrow_mut();
        assert!(
            s.bus_master,
            "message on slot {vector} with bus mastering off"
        );
        let route = s.routes.get(usize::from(vector)).copied().flatten();
        assert_eq!(
            route,
            Some(msg),
            "slot {vector}: message is not the route last reported"
        );
        s.signals += 1;
        s.last = Some((vector, msg));
    }

    fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
        let mut s = self.0.borrow_mut();
        let v = usize::from(vector);
        if s.routes.len() <= v {
            s.routes.resize(v + 1, None);
        }
        s.routes[v] = route;
    }
}

type Dev = Controller<GuestMemoryMmap, Checked>;

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fn reg_read(dev: &mut Dev, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.mmio_read(0, offset, &mut b);
    u32::from_le_bytes(b)
}

fn reg_write(dev: &mut Dev, offset: u64, v: u32) {
    dev.mmio_write(0, offset, &v.to_le_bytes());
}

fn bus_master(dev: &mut Dev) -> bool {
    let mut b = [0u8; 2];
    dev.config_read(CMD, &mut b);
    b[0] & 0x4 != 0
}

/// The fault plan of the input's first bytes: one rule of any kind with
/// an nth / every / probability trigger, or none.
fn plan(bytes: [u8; 4]) -> (FaultPlan, u64) {
    let names = device_model::fault::FaultEffect::KIND_NAMES;
    let seed = u64::from(bytes[3]);
    if bytes[0] % 4 == 0 {
        return (FaultPlan::default(), seed);
    }
    let kind = names[usize::from(bytes[1]) % names.len()];
    let trigger = match bytes[2] % 3 {
        0 => format!("nth = {}", bytes[2] / 3 + 1),
        1 => format!("every = {}", bytes[2] / 3 + 1),
        _ => format!("probability = {}", f64::from(bytes[2]) / 255.0),
    };
    let text = format!("[[rule]]\neffect = \"{kind}\"\n{trigger}\n");
    (FaultPlan::from_toml(&text).unwrap_or_default(), seed)
}

fn check_rings(dev: &mut Dev) {
    for c in 0..dev.config().channels {
        let state = reg_read(dev, channel_reg(c, regs::CH_STATUS)) & regs::STATUS_STATE_MASK;
        if state != regs::STATE_IDLE && state != regs::STATE_BUSY {
            continue;
        }
        let size = reg_read(dev, channel_reg(c, regs::CH_RING_SIZE));
        let head = reg_read(dev, channel_reg(c, regs::CH_HEAD));
        let comp_tail = reg_read(dev, channel_reg(c, regs::CH_COMP_TAIL));
        assert!(
            head < size && comp_tail < size,
            "channel {c} state {state}: HEAD {head} COMP_TAIL {comp_tail} RING_SIZE {size}"
        );
    }
}

/// FLR, then one clean copy with an interrupt on channel 0, faults off.
/// A surprise-removed device is gone for good (FLR is a config write it
/// no longer decodes): it must stay inert instead.
fn check_recovery(dev: &mut Dev, mem: &GuestMemoryMmap, seen: &Checked) {
    *dev.faults_mut() = FaultEngine::disabled();
    if dev.is_removed() {
        return check_gone(dev, mem, seen);
    }
    dev.config_write(AF_CTRL, &[1]);
    dev.run_until_idle();
    dev.config_write(0x10, &0xE000_0000u32.to_le_bytes());
    dev.config_write(0x14, &0u32.to_le_bytes());
    dev.config_write(0x18, &0xE000_1000u32.to_le_bytes());
    dev.config_write(0x1C, &0u32.to_le_bytes());
    dev.config_write(CMD, &[CMD_MEMORY_BUS_MASTER, 0]);
    seen.0.borrow_mut().bus_master = true;
    let entry = [0xFEE0_0000u32, 0, 0x41, 0];
    for (i, w) in (0u64..).zip(entry) {
        dev.mmio_write(2, 4 * i, &w.to_le_bytes());
    }
    dev.config_write(MSIX_CTRL, &0x8000u16.to_le_bytes());
    let (ring, comp, src, dst) = (0x1000u64, 0x2000u64, 0x3000u64, HIGH + 0x100);
    let d = Descriptor {
        src,
        dst,
        len: 256,
        op: OP_COPY,
        flags: FLAG_IOC,
        cookie: 0x600d,
    };
    mem.write_slice(&d.to_bytes(), GuestAddress(ring)).unwrap();
    mem.write_slice(&[0u8; 32], GuestAddress(comp)).unwrap();
    mem.write_slice(&[0xA5u8; 256], GuestAddress(src)).unwrap();
    mem.write_slice(&[0u8; 256], GuestAddress(dst)).unwrap();
    reg_write(dev, channel_reg(0, regs::CH_RING_BASE), ring as u32);
    reg_write(dev, channel_reg(0, regs::CH_RING_SIZE), 16);
    reg_write(dev, channel_reg(0, regs::CH_COMP_BASE), comp as u32);
    reg_write(dev, channel_reg(0, regs::CH_CTRL), regs::CTRL_ENABLE);
    let before = seen.0.borrow().signals;
    reg_write(dev, channel_reg(0, regs::CH_TAIL), 1);
    dev.run_until_idle();
    let mut out = [0u8; 256];
    mem.read_slice(&mut out, GuestAddress(dst)).unwrap();
    assert_eq!(out, [0xA5u8; 256], "the copy after FLR moved the data");
    let mut rec = [0u8; 32];
    mem.read_slice(&mut rec, GuestAddress(comp)).unwrap();
    let rec = Completion::from_bytes(&rec);
    assert_eq!((rec.cookie, rec.bytes_done, rec.status), (0x600d, 256, 0));
    let s = seen.0.borrow();
    assert_eq!(s.signals, before + 1, "one message for the copy after FLR");
    let msg = MsiMessage {
        address: 0xFEE0_0000,
        data: 0x41,
    };
    assert_eq!(s.last, Some((0, msg)));
}

/// A removed device: config space reads all ones, FLR and a doorbell
/// move no data and send no message.
fn check_gone(dev: &mut Dev, mem: &GuestMemoryMmap, seen: &Checked) {
    let mut id = [0u8; 4];
    dev.config_read(0, &mut id);
    assert_eq!(id, [0xFF; 4], "a removed device reads all ones");
    let before = seen.0.borrow().signals;
    let dst = HIGH + 0x100;
    mem.write_slice(&[0u8; 256], GuestAddress(dst)).unwrap();
    dev.config_write(AF_CTRL, &[1]);
    dev.config_write(CMD, &[CMD_MEMORY_BUS_MASTER, 0]);
    reg_write(dev, channel_reg(0, regs::CH_TAIL), 1);
    dev.run_until_idle();
    let mut out = [0u8; 256];
    mem.read_slice(&mut out, GuestAddress(dst)).unwrap();
    assert_eq!(out, [0u8; 256], "a removed device moves no data");
    assert_eq!(seen.0.borrow().signals, before, "a removed device sends nothing");
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let Some(plan_bytes) = take::<4>(&mut data) else {
        return;
    };
    let (plan, seed) = plan(plan_bytes);
    let regions = [
        (GuestAddress(0), LOW_END as usize),
        (GuestAddress(HIGH), (HIGH_END - HIGH) as usize),
    ];
    let mem = GuestMemoryMmap::<()>::from_ranges(&regions).unwrap();
    let seen = Checked::default();
    let mut dev = Controller::new(DeviceConfig::default(), mem.clone(), seen.clone())
        .unwrap()
        .with_faults(FaultEngine::new(plan, seed));
    while let Some([op, a, b]) = take::<3>(&mut data) {
        let offset = u64::from(u16::from_le_bytes([a, b]));
        let size = [1usize, 2, 4, 8, 3][usize::from(op >> 4) % 5];
        let Some(value) = take::<8>(&mut data) else {
            break;
        };
        match op & 0x0F {
            0 | 1 => dev.mmio_write(0, offset % 0x1000, &value[..size]),
            2 => dev.mmio_read(0, offset % 0x1000, &mut [0u8; 8][..size]),
            3 => dev.mmio_write(2, offset % 0x1000, &value[..size]),
            4 => dev.mmio_read(2, offset % 0x1000, &mut [0u8; 8][..size]),
            5 | 6 => {
                let before = bus_master(&mut dev);
                seen.0.borrow_mut().bus_master = true;
                let _ = dev.config_write(offset % 0x100, &value[..size.min(4)]);
                let after = bus_master(&mut dev);
                seen.0.borrow_mut().bus_master = before || after;
            }
            7 => dev.config_read(offset % 0x100, &mut [0u8; 8][..size]),
            8 => dev.doorbell(a % 6, (b & 1 == 0).then(|| u32::from(value[0]))),
            9 => {
                let t = dev.now().saturating_add(u64::from(u32::from_le_bytes([
                    value[0], value[1], value[2], 0,
                ])));
                dev.advance_to(t);
            }
            10 => {
                // A descriptor at a memory edge (possibly straddling it).
                let at = EDGES[usize::from(a) % EDGES.len()] + u64::from(b % 48);
                let d = Descriptor {
                    src: EDGES[usize::from(value[0]) % EDGES.len()] + u64::from(value[1]),
                    dst: EDGES[usize::from(value[2]) % EDGES.len()] + u64::from(value[3]),
                    len: u32::from(u16::from_le_bytes([value[4], value[5]])),
                    op: value[6] % 3,
                    flags: value[7],
                    cookie: offset,
                };
                let _ = mem.write_slice(&d.to_bytes(), GuestAddress(at));
            }
            11 => {
                // Point channel c's rings at memory edges.
                let c = a % 4;
                let base = EDGES[usize::from(value[0]) % EDGES.len()] & !63;
                let comp = EDGES[usize::from(value[1]) % EDGES.len()] & !63;
                reg_write(&mut dev, channel_reg(c, regs::CH_RING_BASE), base as u32);
                reg_write(&mut dev, channel_reg(c, regs::CH_COMP_BASE), comp as u32);
                reg_write(
                    &mut dev,
                    channel_reg(c, regs::CH_RING_SIZE),
                    1 << (value[2] % 13),
                );
            }
            12 => {
                let _ = mem.write_slice(&value, GuestAddress(offset));
            }
            13 => {
                dev.config_write(AF_CTRL, &[1]);
                seen.0.borrow_mut().bus_master = bus_master(&mut dev);
            }
            14 => {
                let _ = dev.run_slice(u64::from(a) + 1);
            }
            _ => {
                dev.run_until_idle();
            }
        }
        check_rings(&mut dev);
    }
    dev.run_until_idle();
    check_rings(&mut dev);
    check_recovery(&mut dev, &mem, &seen);
});
