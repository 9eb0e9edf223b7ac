//! The guest → VMM ports of the boot protocol:
//!
//! - 0xF4, debug exit (1, 2 or 4 bytes): writing *v* ends the VM; `dmalab`
//!   exits with *v* if *v* ≤ 63, else 63. The device only latches the
//!   request (`ExitRequest`); the vCPU loop checks the latch after each port
//!   write and reports the exit to the main thread.
//! - 0xF8, marker (4 bytes): host time is stamped on each write; 1 = READY,
//!   2 = SCENARIO_END, other values are logged at debug level and ignored.
//!
//! Reads of either port return all ones (the default).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::bus::BusDevice;
use super::guest_log;
use crate::timings::{Stamp, Timings};

pub const DEBUG_EXIT_PORT: u16 = 0xf4;
pub const DEBUG_EXIT_PORTS: u16 = 4;
pub const MARKER_PORT: u16 = 0xf8;
pub const MARKER_PORTS: u16 = 4;

pub const MARKER_READY: u32 = 1;
pub const MARKER_SCENARIO_END: u32 = 2;

/// Highest exit status a guest can ask for.
pub const GUEST_STATUS_MAX: u32 = 63;

/// A latched guest exit request (first one wins).
#[derive(Debug, Default)]
pub struct ExitRequest(AtomicU32);

impl ExitRequest {
    /// Latches `status` (already clamped), unless a request is latched.
    fn request(&self, status: u8) {
        let _ = self.0.compare_exchange(
            0,
            u32::from(status) + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The requested exit status, if the guest asked to exit.
    pub fn get(&self) -> Option<u8> {
        let raw = self.0.load(Ordering::Acquire);
        raw.checked_sub(1).and_then(|s| u8::try_from(s).ok())
    }
}

/// The exit status for debug-exit value `value`.
pub fn exit_status(value: u32) -> u8 {
    u8::try_from(value.min(GUEST_STATUS_MAX)).unwrap_or(63)
}

/// Little-endian value of a 1-, 2- or 4-byte port write.
fn port_value(data: &[u8]) -> Option<u32> {
    match *data {
        [a] => Some(u32::from(a)),
        [a, b] => Some(u32::from(u16::from_le_bytes([a, b]))),
        [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// Port 0xF4.
#[derive(Debug)]
pub struct DebugExit {
    request: Arc<ExitRequest>,
}

impl DebugExit {
    pub fn new(request: Arc<ExitRequest>) -> Self {
        Self { request }
    }
}

impl BusDevice for DebugExit {
    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        match (offset, port_value(data)) {
            (0, Some(value)) => self.request.request(exit_status(value)),
            _ => guest_log::warn(format_args!(
                "debug-exit write of {data:02x?} at 0xf4+{offset}: ignored"
            )),
        }
    }
}

/// Port 0xF8.
#[derive(Debug)]
pub struct Marker {
    timings: Arc<Timings>,
}

impl Marker {
    pub fn new(timings: Arc<Timings>) -> Self {
        Self { timings }
    }
}

impl BusDevice for Marker {
    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        let value = match (offset, data.len(), port_value(data)) {
            (0, 4, Some(value)) => value,
            _ => {
                guest_log::warn(format_args!(
                    "marker write of {data:02x?} at 0xf8+{offset}: needs 4 bytes at 0xf8"
                ));
                return;
            }
        };
        match value {
            MARKER_READY => self.timings.stamp(Stamp::GuestReady),
            MARKER_SCENARIO_END => self.timings.stamp(Stamp::ScenarioEnd),
            other => log::debug!("guest marker {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn exit_values_clamp_to_63() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(63), 63);
        assert_eq!(exit_status(64), 63);
        assert_eq!(exit_status(u32::MAX), 63);
    }

    #[test]
    fn any_width_requests_an_exit_and_the_first_wins() {
        for (data, want) in [
            (&[5u8][..], 5),
            (&[0x40, 0][..], 63),
            (&[7, 0, 0, 0][..], 7),
        ] {
            let req = Arc::new(ExitRequest::default());
            let mut port = DebugExit::new(req.clone());
            assert_eq!(req.get(), None);
            port.write(u64::from(DEBUG_EXIT_PORT), 0, data);
            port.write(u64::from(DEBUG_EXIT_PORT), 0, &[9]);
            assert_eq!(req.get(), Some(want));
        }
    }

    #[test]
    fn odd_writes_do_not_exit() {
        let req = Arc::new(ExitRequest::default());
        let mut port = DebugExit::new(req.clone());
        port.write(u64::from(DEBUG_EXIT_PORT), 1, &[1]);
        port.write(u64::from(DEBUG_EXIT_PORT), 0, &[1, 2, 3]);
        assert_eq!(req.get(), None);
    }

    #[test]
    fn ready_marker_stamps_the_timings() {
        let timings = Arc::new(Timings::new(Instant::now()));
        let mut marker = Marker::new(timings.clone());
        marker.write(u64::from(MARKER_PORT), 0, &[1]);
        assert_eq!(
            timings.get(Stamp::GuestReady),
            None,
            "1-byte write is not a marker"
        );
        marker.write(u64::from(MARKER_PORT), 0, &7u32.to_le_bytes());
        assert_eq!(timings.get(Stamp::GuestReady), None);
        marker.write(u64::from(MARKER_PORT), 0, &MARKER_READY.to_le_bytes());
        assert!(timings.get(Stamp::GuestReady).is_some());
        marker.write(
            u64::from(MARKER_PORT),
            0,
            &MARKER_SCENARIO_END.to_le_bytes(),
        );
        assert!(timings.get(Stamp::ScenarioEnd).is_some());
    }
}
