//! Runs a short four-channel workload through the model with a small fault
//! plan and writes the device trace as Chrome trace-event JSON (open it in
//! <https://ui.perfetto.dev>): one track per channel plus the device track.
//!
//! `cargo run -p device-model --example chrome_trace -- /tmp/dmalab-trace.json`

use device_model::descriptor::{Descriptor, FLAG_IOC, OP_COPY, OP_FILL};
use device_model::fault::{FaultEngine, FaultPlan};
use device_model::regs::{self, channel_reg};
use device_model::{Controller, DeviceConfig, RecordingSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PLAN: &str = r#"
[[rule]]
name = "late-irq"
effect = { kind = "delay-interrupt", cycles = 20000 }
nth = 2
channel = 1

[[rule]]
effect = { kind = "short-transfer", bytes = 100 }
nth = 5
"#;

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "dmalab-trace.json".to_string());
    let mem =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("guest memory");
    let plan = FaultPlan::from_toml(PLAN).expect("the example plan parses");
    let mut dev = Controller::new(
        DeviceConfig::default(),
        mem.clone(),
        RecordingSink::default(),
    )
    .expect("default config")
    .with_faults(FaultEngine::new(plan, 1));
    dev.config_write(4, &[0x06, 0]);
    for v in 0..5u32 {
        let at = 16 * u64::from(v);
        dev.mmio_write(2, at, &0xFEE0_0000u32.to_le_bytes());
        dev.mmio_write(2, at + 8, &(0x30 + v).to_le_bytes());
        dev.mmio_write(2, at + 12, &0u32.to_le_bytes());
    }
    dev.config_write(0x42, &0x8000u16.to_le_bytes());
    for c in 0..4u8 {
        let base = 0x10000 * u64::from(c);
        let w = |dev: &mut Controller<_, _>, r, v: u64| {
            dev.mmio_write(0, channel_reg(c, r), &v.to_le_bytes())
        };
        w(&mut dev, regs::CH_RING_BASE, base);
        dev.mmio_write(0, channel_reg(c, regs::CH_RING_SIZE), &64u32.to_le_bytes());
        w(&mut dev, regs::CH_COMP_BASE, base + 0x8000);
        dev.mmio_write(
            0,
            channel_reg(c, regs::CH_CTRL),
            &regs::CTRL_ENABLE.to_le_bytes(),
        );
        for i in 0..6u32 {
            let len = 512 << (i % 4) << c;
            let op = if i % 3 == 2 { OP_FILL } else { OP_COPY };
            let src = if op == OP_FILL {
                0xA5A5_5A5A_0000_0000 | u64::from(i)
            } else {
                0x100000
            };
            let dst = 0x200000 + 0x40000 * u64::from(c);
            let d = Descriptor {
                src,
                dst,
                len,
                op,
                flags: FLAG_IOC,
                cookie: u64::from(i),
            };
            mem.write_slice(&d.to_bytes(), GuestAddress(base + 32 * u64::from(i)))
                .expect("ring in RAM");
        }
        dev.advance_to(dev.now() + 150 * u64::from(c));
        dev.mmio_write(0, channel_reg(c, regs::CH_TAIL), &6u32.to_le_bytes());
    }
    dev.run_until_idle();
    let mut events = Vec::new();
    dev.drain_trace(&mut events);
    std::fs::write(&out, dev.chrome_json(&events)).expect("write the trace file");
    println!(
        "{} events, {} MSIs, device time {} cycles -> {out}",
        events.len(),
        dev.interrupts().signals.len(),
        dev.now()
    );
}
