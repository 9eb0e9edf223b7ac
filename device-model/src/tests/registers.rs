//! Register map, PCI and hostile-access tests.

use super::*;
use crate::pci::config::{STS_RECEIVED_MASTER_ABORT, STS_SIGNALED_TARGET_ABORT};
use crate::regs::{error_code, STATE_ERROR, STATE_HALTED, STATE_IDLE};
use crate::trace::AccessError;

#[test]
fn global_identity_registers() {
    let mut rig = Rig::new(DeviceConfig::default());
    assert_eq!(rig.gr(regs::ID), regs::ID_VALUE);
    assert_eq!(rig.gr(regs::VERSION), 0x0001_0000);
    let caps = rig.gr(regs::CAPS);
    assert_eq!(caps & 0xFF, 4);
    assert_eq!((caps >> 8) & 0xFF, 12);
    assert_ne!(caps & regs::CAPS_SHADOW, 0);
    assert_eq!(rig.gr(regs::MAX_XFER), 16 << 20);
    assert_eq!(rig.gr(regs::CLOCK_MHZ), 1000);
    assert_eq!(rig.bad_access(), 0);
}

#[test]
fn read_only_writes_are_ignored_and_counted() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.gw(regs::ID, 0);
    rig.gw(regs::CYCLE, 5);
    rig.w(0, regs::CH_HEAD, 3);
    rig.w(0, regs::CH_STATUS, 3);
    assert_eq!(rig.gr(regs::ID), regs::ID_VALUE);
    assert_eq!(rig.r(0, regs::CH_HEAD), 0);
    assert_eq!(rig.bad_access(), 4);
    let errs = rig.kinds(|k| {
        matches!(
            k,
            EventKind::RegisterError {
                error: AccessError::ReadOnly,
                ..
            }
        )
    });
    assert_eq!(errs.len(), 4);
}

#[test]
fn odd_sizes_and_offsets_are_ignored_and_counted() {
    let mut rig = Rig::new(DeviceConfig::default());
    let mut b2 = [0xAAu8; 2];
    rig.dev.mmio_read(0, 0, &mut b2);
    assert_eq!(b2, [0, 0]);
    let mut b8 = [0xAAu8; 8];
    rig.dev.mmio_read(0, 0, &mut b8); // ID is not a 64-bit register
    assert_eq!(b8, [0; 8]);
    rig.dev.mmio_write(0, 2, &[1, 2, 3, 4]); // misaligned
    rig.dev.mmio_write(0, 0xFF0, &[1, 2, 3, 4]); // nothing there
    rig.dev.mmio_write(0, channel_reg(4, 0), &[1, 2, 3, 4]); // channel 4 of 4
    rig.dev.mmio_write(2, 3, &[1]); // MSI-X byte access
    rig.dev.mmio_write(7, 0, &[1, 2, 3, 4]); // no such BAR
    let mut cfg = [0u8; 4];
    rig.dev.config_read(2, &mut cfg); // misaligned config dword
    assert_eq!(cfg, [0xFF; 4]);
    rig.dev.config_write(0x100, &[0]);
    assert_eq!(rig.bad_access(), 9);
}

#[test]
fn cycle_counter_reads_the_device_clock_as_32_and_64_bits() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.advance_to(0x1_2345_6789);
    assert_eq!(rig.gr(regs::CYCLE), 0x2345_6789);
    assert_eq!(rig.gr(regs::CYCLE + 4), 1);
    let mut b = [0u8; 8];
    rig.dev.mmio_read(0, regs::CYCLE, &mut b);
    assert_eq!(u64::from_le_bytes(b), 0x1_2345_6789);
}

#[test]
fn sixty_four_bit_channel_registers_take_one_wide_access() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.mmio_write(
        0,
        channel_reg(1, regs::CH_RING_BASE),
        &0x1_0000_0040u64.to_le_bytes(),
    );
    assert_eq!(rig.r(1, regs::CH_RING_BASE), 0x40);
    assert_eq!(rig.r(1, regs::CH_RING_BASE + 4), 1);
    assert_eq!(rig.bad_access(), 0);
}

#[test]
fn setup_registers_are_read_only_while_enabled() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_IDLE);
    rig.w(0, regs::CH_RING_BASE, 0x8000);
    rig.w(0, regs::CH_RING_SIZE, 4);
    assert_eq!(rig.r(0, regs::CH_RING_BASE), regs::lo32(ring_addr(0)));
    assert_eq!(rig.r(0, regs::CH_RING_SIZE), 16);
    assert_eq!(rig.bad_access(), 2);
    rig.w(0, regs::CH_CTRL, 0); // disable = abort
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    rig.w(0, regs::CH_RING_SIZE, 4);
    assert_eq!(rig.r(0, regs::CH_RING_SIZE), 4);
}

fn enable_error(rig: &mut Rig, c: u8) -> u32 {
    rig.w(c, regs::CH_CTRL, regs::CTRL_ENABLE);
    assert_eq!(rig.r(c, regs::CH_STATUS), STATE_ERROR);
    rig.r(c, regs::CH_ERROR_CODE)
}

#[test]
fn enable_validates_the_ring_setup() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.w(0, regs::CH_RING_SIZE, 12);
    assert_eq!(enable_error(&mut rig, 0), error_code::RING_SIZE);
    rig.w(1, regs::CH_RING_SIZE, 8192);
    assert_eq!(enable_error(&mut rig, 1), error_code::RING_SIZE);
    rig.w(2, regs::CH_RING_SIZE, 16);
    rig.w(2, regs::CH_RING_BASE, 0x1010);
    assert_eq!(enable_error(&mut rig, 2), error_code::RING_ALIGN);
    rig.w(3, regs::CH_RING_SIZE, 16);
    rig.w(3, regs::CH_RING_BASE, regs::lo32(MEM - 64));
    assert_eq!(enable_error(&mut rig, 3), error_code::RING_ADDR);
    assert_eq!(rig.signals(4), 4, "each error raises the error vector");
    assert_ne!(rig.gr(regs::INT_STATUS) & regs::INT_ERROR, 0);
    // Only RESET leaves ERROR.
    rig.w(3, regs::CH_CTRL, regs::CTRL_ENABLE);
    assert_eq!(rig.r(3, regs::CH_STATUS), STATE_ERROR);
    rig.w(3, regs::CH_CTRL, regs::CTRL_RESET);
    assert_eq!(rig.r(3, regs::CH_STATUS), STATE_HALTED);
    assert_eq!(rig.r(3, regs::CH_ERROR_CODE), 0);
    assert_eq!(rig.r(3, regs::CH_RING_SIZE), 0);
}

#[test]
fn tail_or_comp_head_out_of_range_stop_the_channel() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.w(0, regs::CH_TAIL, 16);
    assert_eq!(rig.r(0, regs::CH_ERROR_CODE), error_code::TAIL_RANGE);
    rig.setup(1, 16);
    rig.w(1, regs::CH_COMP_HEAD, 99);
    assert_eq!(rig.r(1, regs::CH_ERROR_CODE), error_code::COMP_HEAD_RANGE);
    // Through the shadow too.
    rig.setup(2, 16);
    rig.tail[2] = 40;
    rig.write_shadow(2);
    rig.dev.doorbell(2, None);
    assert_eq!(rig.r(2, regs::CH_ERROR_CODE), error_code::TAIL_RANGE);
}

#[test]
fn valueless_doorbell_without_shadow_is_counted() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.doorbell(0, None);
    rig.dev.doorbell(9, Some(1));
    assert_eq!(rig.bad_access(), 2);
}

#[test]
fn no_dma_without_bus_master() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.dev.config_write(4, &[0x02, 0]); // memory only
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_ERROR);
    assert_eq!(rig.r(0, regs::CH_ERROR_CODE), error_code::NO_BUS_MASTER);
    let mut st = [0u8; 2];
    rig.dev.config_read(6, &mut st);
    assert_ne!(u16::from_le_bytes(st) & STS_SIGNALED_TARGET_ABORT, 0);
    assert_eq!(rig.signals(4), 0, "an MSI is a DMA write too");
    assert!(rig.completions(0).is_empty());
    assert_eq!(rig.read(DATA + 0x1000, 64), vec![0; 64]);
}

#[test]
fn memory_space_off_reads_all_ones() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.config_write(4, &[0x04, 0]);
    assert_eq!(rig.gr(regs::ID), 0xFFFF_FFFF);
    rig.gw(regs::INT_MASK, 5);
    rig.dev.config_write(4, &[0x06, 0]);
    assert_eq!(rig.gr(regs::INT_MASK), 0);
}

#[test]
fn descriptor_errors_complete_with_status_and_error_vector() {
    use crate::descriptor::OP_FILL;
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(MEM - 8, DATA, 64, 1));
    rig.post(0, copy(DATA, u64::MAX - 4, 64, 2));
    rig.post(0, copy(DATA, DATA, 0, 3));
    rig.post(0, copy(DATA, DATA, (16 << 20) + 1, 4));
    rig.post(
        0,
        Descriptor {
            op: 9,
            ..copy(DATA, DATA + 64, 8, 5)
        },
    );
    rig.post(
        0,
        Descriptor {
            op: OP_FILL,
            ..copy(0x1122_3344_5566_7788, DATA + 0x100, 12, 6)
        },
    );
    rig.ring(0);
    rig.dev.run_until_idle();
    let recs: Vec<_> = rig
        .completions(0)
        .iter()
        .map(|r| (r.cookie, r.status))
        .collect();
    use crate::regs::status::*;
    assert_eq!(
        recs,
        vec![
            (1, ERR_SRC),
            (2, ERR_DST),
            (3, ERR_LEN),
            (4, ERR_LEN),
            (5, ERR_OP),
            (6, OK)
        ]
    );
    assert_eq!(
        rig.read(DATA + 0x100, 12),
        vec![0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55]
    );
    assert_eq!(rig.signals(4), 5);
    assert_eq!(
        rig.r(0, regs::CH_STATUS),
        STATE_IDLE,
        "descriptor errors do not stop the channel"
    );
    let mut st = [0u8; 2];
    rig.dev.config_read(6, &mut st);
    assert_ne!(u16::from_le_bytes(st) & STS_RECEIVED_MASTER_ABORT, 0);
}

#[test]
fn function_level_reset_returns_to_power_on() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.dev.config_write(0x10, &0xC000_0000u32.to_le_bytes());
    rig.dev.config_write(0x6C, &[1]);
    let mut b = [0u8; 4];
    rig.dev.config_read(4, &mut b);
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0);
    assert_eq!(rig.dev.bars()[0].1, 0);
    rig.dev.config_write(4, &[0x06, 0]);
    assert_eq!(rig.r(0, regs::CH_RING_SIZE), 0);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    let routes = &rig.dev.interrupts().routes;
    assert_eq!(routes.last(), Some(&(4, None)), "FLR disables MSI-X routes");
}

#[test]
fn bar_relocation_is_reported() {
    let mut rig = Rig::new(DeviceConfig::default());
    let moved = rig.dev.config_write(0x18, &0xD000_0000u32.to_le_bytes());
    let moved = moved.unwrap();
    assert_eq!((moved.bar, moved.new, moved.size), (2, 0xD000_0000, 0x1000));
    assert_eq!(rig.dev.bars()[1], (2, 0xD000_0000, 0x1000));
}

#[test]
fn trace_marker_is_stamped() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.dev.advance_to(77);
    rig.gw(regs::TRACE_MARKER, 0x0102_0003);
    let ev = rig.kinds(|k| matches!(k, EventKind::DriverMarker { .. }));
    assert_eq!(
        ev,
        vec![TraceEvent {
            cycle: 77,
            kind: EventKind::DriverMarker { value: 0x0102_0003 }
        }]
    );
    assert_eq!(rig.gr(regs::TRACE_MARKER), 0);
}

#[test]
fn int_mask_holds_a_cause_and_releases_it_on_unmask() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.gw(regs::INT_MASK, 1);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert_eq!(rig.signals(0), 0);
    assert_eq!(rig.gr(regs::INT_STATUS) & 1, 1);
    rig.gw(regs::INT_MASK, 0);
    assert_eq!(rig.signals(0), 1);
    rig.gw(regs::INT_STATUS, 1);
    assert_eq!(rig.gr(regs::INT_STATUS) & 1, 0);
}

#[test]
fn device_reset_clears_channels_and_globals() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.gw(regs::INT_MASK, 3);
    rig.gw(regs::GCTRL, regs::GCTRL_RESET);
    assert_eq!(rig.gr(regs::INT_MASK), 0);
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    assert_eq!(rig.gr(regs::GCTRL), 0);
}

#[test]
fn bus_master_cleared_mid_transfer_stops_the_channel_once() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x10000, 0x10000, 1));
    rig.post(0, copy(DATA, DATA + 0x20000, 64, 2));
    rig.ring(0);
    rig.dev.advance_to(600);
    rig.dev.config_write(4, &[0x02, 0]);
    rig.dev.run_until_idle();
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_ERROR);
    assert_eq!(rig.r(0, regs::CH_ERROR_CODE), error_code::NO_BUS_MASTER);
    let errors = rig.kinds(|k| {
        matches!(
            k,
            EventKind::ChannelState {
                state: STATE_ERROR,
                ..
            }
        )
    });
    assert_eq!(errors.len(), 1);
    let done = rig.kinds(|k| matches!(k, EventKind::Completion { .. }));
    assert_eq!(done.len(), 1);
    assert!(matches!(
        done[0].kind,
        EventKind::Completion {
            seq: 1,
            written: false,
            ..
        }
    ));
    assert_eq!(rig.r(0, regs::CH_HEAD), 1);
    assert!(rig.completions(0).is_empty());
    assert_eq!(
        rig.kinds(|k| matches!(k, EventKind::MsiRaised { vector: 4 }))
            .len(),
        1
    );
    assert_eq!(rig.signals(4), 0);
}

#[test]
fn read_write_registers_read_back() {
    let mut rig = Rig::new(DeviceConfig::default());
    let rw = [
        (regs::CH_RING_BASE, 0x1234_5640, 0x1234_5640),
        (regs::CH_RING_BASE + 4, 0x7, 0x7),
        (regs::CH_RING_SIZE, 64, 64),
        (regs::CH_COMP_BASE, 0x8000, 0x8000),
        (regs::CH_COMP_BASE + 4, 0x1, 0x1),
        (regs::CH_COMP_HEAD, 5, 5),
        (regs::CH_COALESCE_COUNT, 0xABCD_0010, 0x0010),
        (regs::CH_COALESCE_TIME, 0xDEAD_BEEF, 0xDEAD_BEEF),
        (regs::CH_SHADOW_BASE, 0x3008, 0x3008),
        (regs::CH_SHADOW_BASE + 4, 0x2, 0x2),
        (regs::CH_TAIL, 9, 9),
    ];
    for (reg, val, want) in rw {
        rig.w(3, reg, val);
        assert_eq!(rig.r(3, reg), want, "register {reg:#x}");
    }
    rig.gw(regs::INT_MASK, 0x8000_000F);
    assert_eq!(rig.gr(regs::INT_MASK), 0x8000_000F);
    assert_eq!(rig.r(3, regs::CH_CTRL), 0);
    assert_eq!(rig.r(3, regs::CH_COMP_TAIL), 0);
    assert_eq!(rig.r(3, regs::CH_COMPLETED), 0);
    assert_eq!(rig.bad_access(), 0);
}

#[test]
fn tail_written_while_halted_is_kept_and_enable_starts_the_work() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.w(0, regs::CH_RING_BASE, regs::lo32(ring_addr(0)));
    rig.w(0, regs::CH_RING_SIZE, 16);
    rig.w(0, regs::CH_COMP_BASE, regs::lo32(comp_addr(0)));
    rig.size[0] = 16;
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 1));
    rig.ring(0);
    rig.dev.run_until_idle();
    assert!(rig.completions(0).is_empty());
    assert_eq!(rig.r(0, regs::CH_STATUS), STATE_HALTED);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ENABLE);
    rig.dev.run_until_idle();
    assert_eq!(rig.completions(0).len(), 1);
}

#[test]
fn int_status_is_write_one_to_clear() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.w(0, regs::CH_RING_SIZE, 3);
    rig.w(0, regs::CH_CTRL, regs::CTRL_ENABLE);
    assert_eq!(rig.gr(regs::INT_STATUS), regs::INT_ERROR);
    rig.gw(regs::INT_STATUS, 1);
    assert_eq!(rig.gr(regs::INT_STATUS), regs::INT_ERROR);
    rig.gw(regs::INT_STATUS, regs::INT_ERROR);
    assert_eq!(rig.gr(regs::INT_STATUS), 0);
}

#[test]
fn flr_mid_transfer_stops_all_dma_and_interrupts() {
    let mut rig = Rig::new(DeviceConfig::default());
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x10000, 0x8000, 1));
    rig.ring(0);
    rig.dev.advance_to(700);
    let moved_before = rig.bursts().len();
    assert!(moved_before > 0);
    rig.dev.config_write(0x6C, &[1]);
    assert_eq!(rig.dev.next_event(), None);
    rig.dev.run_until_idle();
    assert_eq!(rig.bursts().len(), moved_before);
    assert!(rig.completions(0).is_empty());
    assert!(rig.dev.interrupts().signals.is_empty());
    // The device works again once re-programmed (its rings restart at 0).
    rig.dev.config_write(4, &[0x06, 0]);
    rig.tail[0] = 0;
    rig.setup(0, 16);
    rig.post(0, copy(DATA, DATA + 0x1000, 64, 2));
    rig.ring(0);
    rig.dev.run_until_idle();
    let recs = rig.completions(0);
    assert_eq!((recs.len(), recs[0].cookie), (1, 2));
    assert!(
        rig.dev.interrupts().signals.is_empty(),
        "MSI-X is off after FLR"
    );
}

#[test]
fn the_device_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Dev>();
    assert_send::<Controller<GuestMemoryMmap, crate::interrupt_sink::CountingSink>>();
}
