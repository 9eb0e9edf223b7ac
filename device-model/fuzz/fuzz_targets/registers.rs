//! Fuzz target over the register interface: the input is a little program
//! of config, BAR0, BAR2, doorbell, time and guest-memory operations run
//! against a device over 40 KiB of guest memory with a hole. The device
//! must never panic, whatever the bytes.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run registers` from `device-model/fuzz/`
//! (`docs/fuzzing.md`).

#![no_main]

use device_model::{Controller, DeviceConfig, RecordingSink};
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fuzz_target!(|input: &[u8]| {
    let regions = [(GuestAddress(0), 0x4000), (GuestAddress(0x6000), 0x4000)];
    let mem = GuestMemoryMmap::<()>::from_ranges(&regions).unwrap();
    let mut dev = Controller::new(
        DeviceConfig::default(),
        mem.clone(),
        RecordingSink::default(),
    )
    .unwrap();
    dev.config_write(4, &[0x06, 0]);
    let mut data = input;
    while let Some([op, a, b]) = take::<3>(&mut data) {
        let offset = u64::from(u16::from_le_bytes([a, b]));
        let size = [1usize, 2, 4, 8, 3][usize::from(op >> 4) % 5];
        let Some(value) = take::<8>(&mut data) else {
            break;
        };
        match op & 0x0F {
            0 => dev.mmio_write(0, offset % 0x1000, &value[..size]),
            1 => dev.mmio_read(0, offset % 0x1000, &mut [0u8; 8][..size]),
            2 => dev.mmio_write(2, offset % 0x1000, &value[..size]),
            3 => dev.mmio_read(2, offset % 0x1000, &mut [0u8; 8][..size]),
            4 => {
                dev.config_write(offset % 0x120, &value[..size.min(4)]);
            }
            5 => dev.config_read(offset % 0x120, &mut [0u8; 8][..size]),
            6 => dev.doorbell(a % 6, (b & 1 == 0).then(|| u32::from(value[0]))),
            7 => {
                let t = dev
                    .now()
                    .saturating_add(u64::from(u32::from_le_bytes([value[0], value[1], 0, 0])));
                dev.advance_to(t);
            }
            8 => {
                let _ = mem.write_slice(&value, GuestAddress(offset));
            }
            _ => {
                dev.run_until_idle();
            }
        }
    }
    dev.run_until_idle();
});
