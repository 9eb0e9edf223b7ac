//! What the control API answers with, and the events it pushes.

use serde::{Deserialize, Serialize};

use crate::report::DeviceCounters;

/// The VM's state (`status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `instant`, `realtime` or `stepped`.
    pub timing: String,
    /// The VM is paused (vCPUs parked, device time stopped).
    pub paused: bool,
    pub vcpus: usize,
    /// vCPUs parked at the pause gate now.
    pub parked: usize,
    /// vCPUs held inside a device access until stepped time reaches idle.
    pub held: usize,
    /// Pauses so far, and the time spent paused (ms, the current pause
    /// included).
    pub pauses: u64,
    pub paused_ms: u64,
    /// The device cycle, and the next event's cycle (`None` when idle).
    pub now: u64,
    pub next: Option<u64>,
}

/// The device's counters at a point of the run (`stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The device cycle.
    pub now: u64,
    /// The next event's cycle, `None` when idle.
    pub next: Option<u64>,
    pub tally: DeviceCounters,
    pub trace_lost: u64,
}

/// A completion record as the device wrote it (or suppressed it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionInfo {
    pub cycle: u64,
    pub seq: u64,
    pub index: u32,
    pub status: u16,
    pub bytes: u32,
    pub written: bool,
}

/// One channel (`channels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub channel: u8,
    /// `idle`, `busy`, `halted` or `error`.
    pub state: String,
    pub enabled: bool,
    pub error_code: u32,
    pub ring_base: u64,
    pub ring_size: u32,
    pub head: u32,
    pub tail: u32,
    /// Descriptors posted and not yet consumed: (tail − head) mod size.
    pub in_flight: u32,
    pub comp_base: u64,
    pub comp_head: u32,
    pub comp_tail: u32,
    /// Descriptors this channel completed.
    pub completed: u32,
    pub last_completion: Option<CompletionInfo>,
}

/// BAR0's global block, decoded (`registers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalRegisters {
    pub id: u32,
    pub version: u32,
    pub caps: u32,
    pub channels: u32,
    pub max_xfer: u32,
    pub clock_mhz: u32,
    pub int_status: u32,
    pub int_mask: u32,
    pub cycle: u64,
    pub bad_access: u32,
}

/// One MSI-X table entry and its PBA bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsixEntry {
    pub vector: usize,
    pub address: u64,
    pub data: u32,
    pub masked: bool,
    pub pending: bool,
}

/// `registers`: BAR0 (global block and every channel) and BAR2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registers {
    pub global: GlobalRegisters,
    pub channels: Vec<ChannelInfo>,
    pub msix: Vec<MsixEntry>,
    /// The PBA's first 64 bits.
    pub pba: u64,
}

/// One event pushed to a watcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Device cycle.
    pub cycle: u64,
    /// The same as modelled time: nanoseconds at the device clock. The
    /// guest's view of device time (its `CYCLE` register, its completion
    /// records' timestamps); in instant and stepped timing it stands still
    /// while the guest runs.
    pub ns: u64,
    /// Host microseconds since the VM was built, when the VM saw it.
    pub host_us: u64,
    pub channel: Option<u8>,
    /// What happened: `doorbell`, `fetch`, `completion`, `msi-sent`,
    /// `msi-dropped`, `msi-held`, `fault`, `state`, `reset`, `removed`,
    /// `register-error`; the driver's markers: `isr`, `dpc`, `timer-dpc`,
    /// `start-io` and each one's `…-end`, `irp-start`, `irp-complete`,
    /// `marker`.
    pub what: String,
    /// A routine's end marker: its own time as the guest measured it with
    /// its TSC, in µs (steal time left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_us: Option<u32>,
    /// The rest, for a human.
    pub detail: String,
}

impl std::fmt::Display for Event {
    /// The line `dmalab ctl watch` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channel = self
            .channel
            .map_or_else(|| "dev".to_string(), |c| format!("ch{c}"));
        write!(
            f,
            "cycle {:>12}  dev {:>12.3} µs  host {:>9.3} ms  {:<4} {:<13} {}",
            self.cycle,
            self.ns as f64 / 1000.0,
            self.host_us as f64 / 1000.0,
            channel,
            self.what,
            self.detail
        )
    }
}
