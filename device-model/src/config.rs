//! Device configuration: channel count, limits and the timing model's
//! parameters, all in one place with documented defaults.
//!
//! Defaults model a PCIe Gen3 ×8 memory-to-memory engine of the Intel I/OAT
//! "Crystal Beach 3" class (Xeon E5 era) or a PLX PEX87xx DMA: 1 GHz device
//! clock, ~500 ns descriptor fetch (a PCIe read round trip), 256-byte bursts
//! (max payload size 256), ~8 GB/s of shared bus bandwidth, a posted
//! completion write of ~150 ns and ~200 ns from write-back to the MSI write.
//! The numbers feed only cycle arithmetic: nothing here reads a clock.

use serde::{Deserialize, Serialize};

/// Largest channel count: the MSI-X table (channels + 1 vectors) and the
/// `INT_STATUS` bits (channel bits below bit 31) must fit.
pub const MAX_CHANNELS: u8 = 16;
/// Largest ring the device accepts (entries); a power of two.
pub const MAX_RING_SIZE_LIMIT: u32 = 1 << 15;

/// Errors from validating a [`DeviceConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The channel count is outside 1 ..= 16.
    #[error("channel count {0} is outside 1..=16")]
    Channels(u8),
    /// The maximum ring size is not a power of two in 2 ..= 32768.
    #[error("max ring size {0} is not a power of two in 2..=32768")]
    RingSize(u32),
    /// The maximum transfer length is zero.
    #[error("max transfer length must be at least 1 byte")]
    MaxTransfer,
    /// A timing parameter is out of range.
    #[error("timing parameter `{0}` is out of range")]
    Timing(&'static str),
}

/// The timing model's parameters (device cycles unless said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingConfig {
    /// Device clock in Hz (default 1 GHz): converts cycles to time.
    pub clock_hz: u64,
    /// Cycles from the start of a descriptor fetch to the descriptor being
    /// available (default 500: a PCIe read round trip).
    pub fetch_latency: u64,
    /// Bytes per bus burst (default 256: PCIe max payload size).
    pub burst_bytes: u32,
    /// Shared bus bandwidth in bytes per second (default 8 GB/s).
    pub bus_bytes_per_sec: u64,
    /// Cycles from the last burst to the completion record being written
    /// (default 150: a posted write).
    pub writeback_latency: u64,
    /// Cycles from the completion write-back to the MSI write (default 200).
    pub irq_latency: u64,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            clock_hz: 1_000_000_000,
            fetch_latency: 500,
            burst_bytes: 256,
            bus_bytes_per_sec: 8_000_000_000,
            writeback_latency: 150,
            irq_latency: 200,
        }
    }
}

/// Named timing profiles (`--device-profile`, `docs/timing-profiles.md`).
pub const PROFILES: &[&str] = &["ioat-cb3", "avmm-gen3x8"];

impl TimingConfig {
    /// The profile called `name`: `ioat-cb3` is the default model (see the
    /// module documentation); `avmm-gen3x8` is Intel's PCIe Avalon-MM DMA
    /// reference design on a Gen3 ×8 link, its bandwidth calibrated to
    /// the figures Intel publishes for it (AN 690, "Peak Throughput": a
    /// 256-bit interface at 250 MHz moves a 256-byte TLP in 8 data cycles
    /// plus 1 header cycle). `None` for an unknown name.
    pub fn profile(name: &str) -> Option<TimingConfig> {
        match name {
            "ioat-cb3" => Some(TimingConfig::default()),
            "avmm-gen3x8" => Some(TimingConfig {
                clock_hz: 250_000_000,
                // Not in the source: ioat-cb3's 500 ns PCIe read round trip,
                // 150 ns write-back and 200 ns to the MSI, in 4 ns cycles.
                fetch_latency: 125,
                burst_bytes: 256,
                // 256 bytes per 9 cycles of 4 ns: the smallest bandwidth
                // whose burst takes 9 cycles (`burst_cycles` rounds up).
                bus_bytes_per_sec: 7_111_111_112,
                writeback_latency: 38,
                irq_latency: 50,
            }),
            _ => None,
        }
    }

    /// Bus cycles a burst of `bytes` occupies: `ceil(bytes · clock / bandwidth)`,
    /// at least 1.
    ///
    /// ```
    /// use device_model::TimingConfig;
    /// let t = TimingConfig::default();
    /// assert_eq!(t.burst_cycles(256), 32); // 256 B at 8 GB/s and 1 GHz
    /// assert_eq!(t.burst_cycles(1), 1);
    /// ```
    pub fn burst_cycles(&self, bytes: u32) -> u64 {
        let num = u128::from(bytes) * u128::from(self.clock_hz);
        let den = u128::from(self.bus_bytes_per_sec.max(1));
        let cycles = num.div_ceil(den).max(1);
        u64::try_from(cycles).unwrap_or(u64::MAX)
    }

    /// Device cycles in `nanos` nanoseconds of modelled time (rounded down,
    /// saturating): what a realtime driver passes to `advance_to`.
    ///
    /// ```
    /// use device_model::TimingConfig;
    /// let t = TimingConfig { clock_hz: 250_000_000, ..TimingConfig::default() };
    /// assert_eq!(t.cycles_from_nanos(1_000), 250);
    /// assert_eq!(t.nanos_from_cycles(250), 1_000);
    /// ```
    pub fn cycles_from_nanos(&self, nanos: u64) -> u64 {
        let c = u128::from(nanos) * u128::from(self.clock_hz) / 1_000_000_000;
        u64::try_from(c).unwrap_or(u64::MAX)
    }

    /// Nanoseconds of modelled time in `cycles` device cycles (rounded
    /// down, saturating).
    pub fn nanos_from_cycles(&self, cycles: u64) -> u64 {
        let n = u128::from(cycles) * 1_000_000_000 / u128::from(self.clock_hz.max(1));
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Checks every parameter is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const LIMIT: u64 = 1 << 40;
        let checks = [
            (
                self.clock_hz == 0 || self.clock_hz > 100_000_000_000,
                "clock_hz",
            ),
            (self.fetch_latency > LIMIT, "fetch_latency"),
            (
                self.burst_bytes == 0 || self.burst_bytes > 1 << 20,
                "burst_bytes",
            ),
            (self.bus_bytes_per_sec == 0, "bus_bytes_per_sec"),
            (self.writeback_latency > LIMIT, "writeback_latency"),
            (self.irq_latency > LIMIT, "irq_latency"),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, name)) => Err(ConfigError::Timing(name)),
            None => Ok(()),
        }
    }
}

/// Everything that shapes one device instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// DMA channels (default 4, at most 16). MSI-X vectors = channels + 1.
    pub channels: u8,
    /// Largest descriptor ring in entries (default 4096, power of two).
    pub max_ring_size: u32,
    /// Largest descriptor length in bytes (default 16 MiB).
    pub max_transfer: u32,
    /// Trace buffer capacity in events; further events are counted as lost
    /// until the buffer is drained (default 1 Mi events).
    pub trace_capacity: usize,
    /// Whether trace events are recorded at all (default true).
    pub trace: bool,
    /// The timing model.
    pub timing: TimingConfig,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            channels: 4,
            max_ring_size: 4096,
            max_transfer: 16 << 20,
            trace_capacity: 1 << 20,
            trace: true,
            timing: TimingConfig::default(),
        }
    }
}

impl DeviceConfig {
    /// Checks the configuration.
    ///
    /// ```
    /// use device_model::DeviceConfig;
    /// assert!(DeviceConfig::default().validate().is_ok());
    /// assert!(DeviceConfig { channels: 0, ..DeviceConfig::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(ConfigError::Channels(self.channels));
        }
        let ring = self.max_ring_size;
        if !ring.is_power_of_two() || !(2..=MAX_RING_SIZE_LIMIT).contains(&ring) {
            return Err(ConfigError::RingSize(ring));
        }
        if self.max_transfer == 0 {
            return Err(ConfigError::MaxTransfer);
        }
        self.timing.validate()
    }

    /// MSI-X vectors: one per channel plus the error vector.
    pub fn vectors(&self) -> u16 {
        u16::from(self.channels) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_toml() {
        let c = DeviceConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: DeviceConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn bad_values_are_rejected() {
        let d = DeviceConfig::default();
        assert_eq!(
            DeviceConfig { channels: 17, ..d }.validate(),
            Err(ConfigError::Channels(17))
        );
        assert_eq!(
            DeviceConfig {
                max_ring_size: 3,
                ..d
            }
            .validate(),
            Err(ConfigError::RingSize(3))
        );
        assert_eq!(
            DeviceConfig {
                max_transfer: 0,
                ..d
            }
            .validate(),
            Err(ConfigError::MaxTransfer)
        );
        let t = TimingConfig {
            bus_bytes_per_sec: 0,
            ..d.timing
        };
        assert_eq!(
            DeviceConfig { timing: t, ..d }.validate(),
            Err(ConfigError::Timing("bus_bytes_per_sec"))
        );
    }

    #[test]
    fn burst_cycles_round_up() {
        let t = TimingConfig {
            bus_bytes_per_sec: 3_000_000_000,
            ..TimingConfig::default()
        };
        assert_eq!(t.burst_cycles(256), 86); // 85.33 rounds up
        assert_eq!(t.burst_cycles(0), 1);
    }
}
