//! Descriptors per second through the device model in instant mode
//! (`run_until_idle`): 64 B, 4 KiB and 1 MiB copies on 1 and 4 channels.
//!
//! A bench, not a test: run with `cargo bench -p device-model`. Each
//! channel's ring is filled once with identical COPY descriptors (IOC on
//! every 64th, 2 KiB-aligned coalescing as a batching driver would); each
//! round advances every channel's tail by a batch with one doorbell, runs
//! the model to idle and returns the consumed completions with one
//! `COMP_HEAD` write. Only the model is timed; the trace is off except in
//! the row that says so (drained every round).

use std::time::{Duration, Instant};

use device_model::descriptor::{Completion, Descriptor, FLAG_IOC, OP_COPY};
use device_model::regs::{self, channel_reg};
use device_model::{Controller, CountingSink, DeviceConfig};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RING: u32 = 4096;
const MIB: u64 = 1 << 20;

struct Case {
    len: u32,
    channels: u8,
    batch: u32,
    trace: bool,
}

fn w(dev: &mut Controller<GuestMemoryMmap, CountingSink>, c: u8, reg: u64, v: u64) {
    dev.mmio_write(
        0,
        channel_reg(c, reg),
        &v.to_le_bytes()[..if v > u64::from(u32::MAX) { 8 } else { 4 }],
    );
}

fn r(dev: &mut Controller<GuestMemoryMmap, CountingSink>, c: u8, reg: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.mmio_read(0, channel_reg(c, reg), &mut b);
    u32::from_le_bytes(b)
}

fn run(case: &Case) -> (f64, f64, u64) {
    // Layout: 128 KiB ring + 128 KiB completion ring per channel in the
    // first MiB, source at 1 MiB,
    // one destination MiB per channel after it.
    let mem_size = usize::try_from((2 + u64::from(case.channels)) * MIB).unwrap();
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), mem_size)]).unwrap();
    let cfg = DeviceConfig {
        trace: case.trace,
        channels: 4,
        ..DeviceConfig::default()
    };
    let mut dev = Controller::new(cfg, mem.clone(), CountingSink::default()).unwrap();
    dev.config_write(4, &[0x06, 0]);
    for c in 0..case.channels {
        let ring = u64::from(c) * 0x40000;
        let comp = ring + 0x20000;
        let dst = (2 + u64::from(c)) * MIB;
        for i in 0..RING {
            let flags = if i % 64 == 63 { FLAG_IOC } else { 0 };
            let d = Descriptor {
                src: MIB,
                dst,
                len: case.len,
                op: OP_COPY,
                flags,
                cookie: u64::from(i),
            };
            mem.write_slice(&d.to_bytes(), GuestAddress(ring + 32 * u64::from(i)))
                .unwrap();
        }
        w(&mut dev, c, regs::CH_RING_BASE, ring);
        w(&mut dev, c, regs::CH_RING_SIZE, u64::from(RING));
        w(&mut dev, c, regs::CH_COMP_BASE, comp);
        w(&mut dev, c, regs::CH_CTRL, u64::from(regs::CTRL_ENABLE));
    }
    let mut tails = vec![0u32; usize::from(case.channels)];
    let mut trace = Vec::new();
    let mut done = 0u64;
    let start = Instant::now();
    let budget = Duration::from_millis(1500);
    while start.elapsed() < budget {
        for c in 0..case.channels {
            let t = &mut tails[usize::from(c)];
            *t = (*t + case.batch) % RING;
            dev.doorbell(c, Some(*t));
        }
        dev.run_until_idle();
        for c in 0..case.channels {
            let tail = r(&mut dev, c, regs::CH_COMP_TAIL);
            w(&mut dev, c, regs::CH_COMP_HEAD, u64::from(tail));
        }
        done += u64::from(case.batch) * u64::from(case.channels);
        if case.trace {
            trace.clear();
            dev.drain_trace(&mut trace);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for c in 0..case.channels {
        let mut rec = [0u8; 32];
        let comp = u64::from(c) * 0x40000 + 0x20000;
        mem.read_slice(&mut rec, GuestAddress(comp)).unwrap();
        let rec = Completion::from_bytes(&rec);
        assert_eq!(
            (rec.status, rec.bytes_done),
            (0, case.len),
            "copies succeed"
        );
    }
    let completed: u64 = (0..case.channels)
        .map(|c| u64::from(r(&mut dev, c, regs::CH_COMPLETED)))
        .sum();
    assert_eq!(
        completed % u64::from(u32::MAX),
        done % u64::from(u32::MAX),
        "every descriptor completed"
    );
    let per_sec = done as f64 / secs;
    let gbps = per_sec * f64::from(case.len) / 1e9;
    (per_sec, gbps, dev.now())
}

fn main() {
    let cases = [
        Case {
            len: 64,
            channels: 1,
            batch: 4032,
            trace: false,
        },
        Case {
            len: 64,
            channels: 4,
            batch: 4032,
            trace: false,
        },
        Case {
            len: 64,
            channels: 1,
            batch: 4032,
            trace: true,
        },
        Case {
            len: 4096,
            channels: 1,
            batch: 1024,
            trace: false,
        },
        Case {
            len: 4096,
            channels: 4,
            batch: 1024,
            trace: false,
        },
        Case {
            len: 64 << 10,
            channels: 1,
            batch: 256,
            trace: true,
        },
        Case {
            len: 1 << 20,
            channels: 1,
            batch: 16,
            trace: false,
        },
        Case {
            len: 1 << 20,
            channels: 4,
            batch: 16,
            trace: false,
        },
    ];
    println!(
        "{:>9} {:>8} {:>6} {:>16} {:>10} {:>16}",
        "size", "channels", "trace", "descriptors/s", "GB/s", "device cycles"
    );
    for case in &cases {
        let (per_sec, gbps, cycles) = run(case);
        let size = match case.len {
            l if l >= 1 << 20 => format!("{} MiB", l >> 20),
            l if l >= 1024 => format!("{} KiB", l >> 10),
            l => format!("{l} B"),
        };
        let trace = if case.trace { "on" } else { "off" };
        println!(
            "{size:>9} {:>8} {trace:>6} {per_sec:>16.0} {gbps:>10.2} {cycles:>16}",
            case.channels
        );
    }
}
