//! A read-only CMOS real-time clock at ports 0x70 (index) and 0x71 (data),
//! the MC146818 registers a PC kernel reads at boot: the time and date
//! (BCD, 24-hour) from the host's clock in UTC, status A with "update in
//! progress" clear, status B, status D with "valid RAM and time".
//!
//! Why it exists: without it a Linux guest reads all ones, sees an update
//! forever in progress, and retries; measured on the emulated ring 0 that
//! was 40,000 port exits and ~5 % of the boot's emulated instructions
//! (`mc146818_avoid_UIP`, `delay_tsc`), for "Unable to read current time
//! from RTC". Writes (the index aside) are ignored: the guest cannot set
//! the clock, alarms and periodic interrupts are not modelled.

use std::time::{SystemTime, UNIX_EPOCH};

use super::bus::BusDevice;

pub const CMOS_PORT: u16 = 0x70;
pub const CMOS_PORTS: u16 = 2;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
const REG_STATUS_C: u8 = 0x0c;
const REG_STATUS_D: u8 = 0x0d;
const REG_CENTURY: u8 = 0x32;

/// 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) clear.
const STATUS_A: u8 = 0x26;
/// 24-hour mode, BCD.
const STATUS_B: u8 = 0x02;
/// VRT: the RAM and time are valid.
const STATUS_D: u8 = 0x80;

/// The CMOS clock: the index latched at 0x70.
#[derive(Debug, Default)]
pub struct Cmos {
    index: u8,
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// The calendar time `secs` seconds after 1970-01-01 UTC (Howard
    /// Hinnant's days-to-civil).
    pub fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        let small = |v: u64| u32::try_from(v).unwrap_or(0);
        Self {
            year: small(year),
            month: small(month),
            day: small(day),
            // 1970-01-01 was a Thursday; the RTC counts Sunday as 1.
            weekday: small((days + 4) % 7 + 1),
            hour: small(rem / 3600),
            minute: small(rem % 3600 / 60),
            second: small(rem % 60),
        }
    }
}

fn bcd(v: u32) -> u8 {
    let v = v % 100;
    u8::try_from((v / 10) << 4 | (v % 10)).unwrap_or(0)
}

impl Cmos {
    /// Register `index` at calendar time `now`.
    pub fn register(index: u8, now: &Civil) -> u8 {
        match index {
            REG_SECONDS => bcd(now.second),
            REG_MINUTES => bcd(now.minute),
            REG_HOURS => bcd(now.hour),
            REG_WEEKDAY => bcd(now.weekday),
            REG_DAY => bcd(now.day),
            REG_MONTH => bcd(now.month),
            REG_YEAR => bcd(now.year % 100),
            REG_CENTURY => bcd(now.year / 100),
            REG_STATUS_A => STATUS_A,
            REG_STATUS_B => STATUS_B,
            REG_STATUS_C => 0,
            REG_STATUS_D => STATUS_D,
            _ => 0,
        }
    }
}

impl BusDevice for Cmos {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        let value = match offset {
            0 => self.index,
            _ => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Self::register(self.index, &Civil::from_unix(secs))
            }
        };
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = value;
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if let (0, Some(&value)) = (offset, data.first()) {
            // Bit 7 is the NMI mask, not part of the index.
            self.index = value & 0x7f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_becomes_the_calendar() {
        let t = Civil::from_unix(0);
        assert_eq!((t.year, t.month, t.day, t.weekday), (1970, 1, 1, 5));
        // 2026-12-04 19:35:07 UTC, a Friday.
        let t = Civil::from_unix(1_796_412_907);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday),
            (2026, 12, 4, 19, 35, 7, 6)
        );
        // 2000-02-29, a leap day.
        let t = Civil::from_unix(951_782_400);
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
    }

    #[test]
    fn registers_read_in_bcd_with_no_update_in_progress() {
        let mut cmos = Cmos::default();
        let now = Civil::from_unix(1_796_412_907);
        assert_eq!(Cmos::register(REG_MINUTES, &now), 0x35);
        assert_eq!(Cmos::register(REG_YEAR, &now), 0x26);
        assert_eq!(Cmos::register(REG_CENTURY, &now), 0x20);
        assert_eq!(Cmos::register(REG_STATUS_A, &now) & 0x80, 0);
        cmos.write(0x70, 0, &[0x8d]);
        let mut b = [0xff];
        cmos.read(0x70, 0, &mut b);
        assert_eq!(b, [0x0d], "the index without the NMI bit");
        cmos.read(0x70, 1, &mut b);
        assert_eq!(b, [0x80], "status D: valid");
    }
}
