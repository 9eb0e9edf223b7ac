//! The MSI capability (spec §2.3): 64-bit address, per-vector masking, one
//! message. Fields live in config space; this file only reads them and keeps
//! the device-owned pending bit.

use crate::interrupt_sink::MsiMessage;

use super::config::{ConfigSpace, MSI_CAP};

/// MSI control register.
const CONTROL: usize = MSI_CAP + 2;
/// Address low.
const ADDR_LO: usize = MSI_CAP + 4;
/// Address high.
const ADDR_HI: usize = MSI_CAP + 8;
/// Data.
const DATA: usize = MSI_CAP + 12;
/// Mask bits.
const MASK: usize = MSI_CAP + 16;
/// Pending bits (device-owned, RO to the guest).
const PENDING: usize = MSI_CAP + 20;

/// Whether MSI is enabled.
pub fn enabled(cfg: &ConfigSpace) -> bool {
    cfg.u16_at(CONTROL) & 1 != 0
}

/// Whether the one vector is masked.
pub fn masked(cfg: &ConfigSpace) -> bool {
    cfg.u32_at(MASK) & 1 != 0
}

/// Whether the one vector is pending.
pub fn pending(cfg: &ConfigSpace) -> bool {
    cfg.u32_at(PENDING) & 1 != 0
}

/// Sets or clears the pending bit.
pub fn set_pending(cfg: &mut ConfigSpace, on: bool) {
    cfg.set32(PENDING, u32::from(on));
}

/// The programmed message.
pub fn message(cfg: &ConfigSpace) -> MsiMessage {
    MsiMessage {
        address: (u64::from(cfg.u32_at(ADDR_HI)) << 32) | u64::from(cfg.u32_at(ADDR_LO)),
        data: u32::from(cfg.u16_at(DATA)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode_through_config_writes() {
        let mut c = ConfigSpace::new(5);
        assert!(!enabled(&c));
        c.write(ADDR_LO, &0xFEE0_0003u32.to_le_bytes());
        c.write(ADDR_HI, &1u32.to_le_bytes());
        c.write(DATA, &0x1234_0041u32.to_le_bytes());
        c.write(CONTROL, &0xFFFFu16.to_le_bytes());
        c.write(MASK, &0xFFFF_FFFFu32.to_le_bytes());
        c.write(PENDING, &1u32.to_le_bytes());
        assert!(enabled(&c) && masked(&c) && !pending(&c));
        assert_eq!(
            message(&c),
            MsiMessage {
                address: 0x1_FEE0_0000,
                data: 0x41
            }
        );
        assert_eq!(
            c.u16_at(CONTROL),
            0x01F1,
            "64-bit and PVM bits stay read-only"
        );
    }
}
