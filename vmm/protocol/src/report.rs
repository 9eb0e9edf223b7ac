//! The run report (`dmalab run --report out.json`): written by the VMM at
//! the end of every run, read back by the campaign's oracle and the
//! integration tests. Field meanings: `docs/dma-device.md`, "Run report".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::result::ResultLine;

/// The run report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub exit_status: u8,
    /// The guest's last `DMALAB-RESULT` line, if it printed one.
    pub result: Option<ResultLine>,
    pub seed: u64,
    /// The fault plan as TOML ("" for none).
    pub plan: String,
    /// `--timing`: instant, realtime or stepped.
    pub timing: String,
    /// `--doorbell`: exit or ioeventfd.
    pub doorbell: String,
    pub device: DeviceCounters,
    /// Messages signalled per MSI-X slot (irqfd writes).
    pub irqfd_signals: Vec<u64>,
    pub exits: Exits,
    pub trace_lost: u64,
    /// The device cycle at the end of the run.
    pub device_cycles: u64,
    /// Realtime mode: how late the host processed guest-observable events
    /// against their modelled time, by kind (`completion`, `msi`,
    /// `channel_state`, `descriptor_fetch`); empty in the other modes.
    pub lateness: BTreeMap<String, Lateness>,
}

/// Lateness of one event kind: host time it was processed minus its
/// modelled time, in host ns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lateness {
    /// Events measured.
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl std::fmt::Display for Lateness {
    /// `p50 2.1 µs, p99 40.3 µs, max 118.0 µs (n 1200)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        write!(
            f,
            "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (n {})",
            us(self.p50_ns),
            us(self.p99_ns),
            us(self.max_ns),
            self.count
        )
    }
}

impl RunReport {
    /// Reads a report written by `dmalab run --report`.
    pub fn from_json(text: &str) -> serde_json::Result<RunReport> {
        serde_json::from_str(text)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Sequence numbers of the descriptors the device applied fault
    /// `kind` to (empty if none).
    pub fn faults(&self, kind: &str) -> &[u64] {
        self.device.faults.get(kind).map_or(&[], Vec::as_slice)
    }

    /// Applied faults by kind (the device's exact counts).
    pub fn fault_counts(&self) -> BTreeMap<String, u64> {
        self.device.fault_counts.clone()
    }
}

/// What the device did, counted from its trace events as they drain.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounters {
    /// Doorbells the device took (either path).
    pub doorbells: u64,
    /// Descriptors accepted (fetched, with a sequence number).
    pub descriptors: u64,
    /// Completions (records written or suppressed).
    pub completions: u64,
    /// Completions whose status was an error.
    pub completion_errors: u64,
    /// Bytes moved, as completions report them.
    pub bytes: u64,
    /// Interrupts sent (messages written to an irqfd).
    pub interrupts_sent: u64,
    /// Interrupt causes that sent nothing: MSI dropped by the function
    /// (disabled, no bus master, cause masked) or by a drop-interrupt fault.
    pub interrupts_dropped: u64,
    /// Interrupts a delay-interrupt fault postponed.
    pub interrupts_delayed: u64,
    /// Completions that raised no channel interrupt of their own: they
    /// shared one (coalescing) or asked for none (no IOC flag). Completions
    /// minus channel-vector causes, dropped and delayed ones; never below 0.
    pub interrupts_coalesced: u64,
    /// Messages held pending because their vector was masked.
    pub interrupts_masked: u64,
    /// Ignored register accesses (`BAD_ACCESS` in the model).
    pub register_errors: u64,
    /// Channels that entered `ERROR`.
    pub channel_errors: u64,
    /// Faults applied, by kind name (`FaultEffect::kind_name`): how many
    /// (exact, counted by the model).
    pub fault_counts: BTreeMap<String, u64>,
    /// Faults applied, by kind name: the sequence numbers of their
    /// descriptors (complete unless trace events were lost).
    pub faults: BTreeMap<String, Vec<u64>>,
    /// Every applied fault with its parameters, in the order applied
    /// (complete unless trace events were lost, and bounded: the VMM keeps
    /// the first few thousand and counts the rest in `fault_log_omitted`).
    pub fault_log: Vec<FaultEntry>,
    /// Applied faults left out of `fault_log` and `faults` because the log
    /// was full (they are in `fault_counts`).
    pub fault_log_omitted: u64,
}

/// One applied fault: where, when, which rule, and the effect with its
/// parameters (only those its kind has).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEntry {
    /// Device cycle it was applied at.
    pub cycle: u64,
    /// Descriptor sequence number (device-wide, 1-based).
    pub seq: u64,
    pub channel: u8,
    /// Rule index in the plan (0-based).
    pub rule: u32,
    /// Effect kind name (`drop-interrupt`, `dma-error`, …).
    pub kind: String,
    /// `dma-error`: whether the channel halts (the IRP must fail with
    /// STATUS_DEVICE_HARDWARE_ERROR, no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal: Option<bool>,
    /// `delay-interrupt`, `latency-spike`: device cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<u64>,
    /// `short-transfer`: bytes moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u32>,
    /// `interrupt-storm`: extra messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `corrupt-data`: bit flips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flips: Option<u32>,
}

impl FaultEntry {
    /// Whether this is a `dma-error` with `fatal = true`.
    pub fn is_fatal_error(&self) -> bool {
        self.kind == "dma-error" && self.fatal == Some(true)
    }
}

impl std::fmt::Display for FaultEntry {
    /// `seq 5 ch 0 @12000 rule 1 dma-error fatal=true`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seq {} ch {} @{} rule {} {}",
            self.seq,
            self.channel,
            self.cycle,
            self.rule + 1,
            self.kind
        )?;
        if let Some(v) = self.fatal {
            write!(f, " fatal={v}")?;
        }
        if let Some(v) = self.cycles {
            write!(f, " cycles={v}")?;
        }
        if let Some(v) = self.bytes {
            write!(f, " bytes={v}")?;
        }
        if let Some(v) = self.count {
            write!(f, " count={v}")?;
        }
        if let Some(v) = self.flips {
            write!(f, " flips={v}")?;
        }
        Ok(())
    }
}

impl DeviceCounters {
    /// Faults applied in all (exact).
    pub fn faults_applied(&self) -> u64 {
        self.fault_counts.values().sum()
    }
}

/// User-space exits of the whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exits {
    pub pio: u64,
    pub mmio: u64,
    pub other: u64,
    /// MMIO exits that reached the DMA controller, by register
    /// (`ch0.TAIL`, `msix[0].ctrl`).
    pub device_registers: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_written() {
        let mut report = RunReport {
            exit_status: 1,
            result: Some(ResultLine::parse(
                r#"{"scenario":"copy","status":"fail","lost":0}"#,
            )),
            seed: 7,
            timing: "instant".into(),
            doorbell: "exit".into(),
            irqfd_signals: vec![3, 0],
            ..RunReport::default()
        };
        report
            .device
            .faults
            .insert("drop-interrupt".into(), vec![2, 5]);
        report
            .device
            .fault_counts
            .insert("drop-interrupt".into(), 2);
        report.exits.device_registers.insert("ch0.TAIL".into(), 4);
        report.lateness.insert(
            "msi".into(),
            Lateness {
                count: 3,
                p50_ns: 1500,
                p99_ns: 9000,
                max_ns: 9100,
            },
        );
        report.device.fault_log.push(FaultEntry {
            cycle: 900,
            seq: 2,
            channel: 1,
            rule: 0,
            kind: "dma-error".into(),
            fatal: Some(true),
            ..FaultEntry::default()
        });
        let back = RunReport::from_json(&report.to_json()).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.faults("drop-interrupt"), [2, 5]);
        assert_eq!(back.faults("hang"), [] as [u64; 0]);
        assert_eq!(back.fault_counts()["drop-interrupt"], 2);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["device"]["faults"]["drop-interrupt"][1], 5);
        assert_eq!(json["result"]["status"], "fail");
        assert_eq!(json["device"]["fault_log"][0]["fatal"], true);
        assert!(json["device"]["fault_log"][0].get("cycles").is_none());
        assert!(back.device.fault_log[0].is_fatal_error());
        assert_eq!(json["lateness"]["msi"]["p99_ns"], 9000);
        assert_eq!(
            back.lateness["msi"].to_string(),
            "p50 1.5 µs, p99 9.0 µs, max 9.1 µs (n 3)"
        );
        assert_eq!(
            back.device.fault_log[0].to_string(),
            "seq 2 ch 1 @900 rule 1 dma-error fatal=true"
        );
    }

    #[test]
    fn a_report_missing_a_field_is_an_error_not_a_default() {
        assert!(RunReport::from_json(r#"{"exit_status":0}"#).is_err());
    }
}
