//! The end of a run: the guest's result line, the machine-readable report
//! (`--report out.json`) and the human summary on stderr.
//!
//! `ResultTap` sits between COM1 and stdout: everything goes to stdout
//! unchanged, and the last `DMALAB-RESULT {json}` line the guest printed
//! is kept (parsed as JSON when it is valid) for the report.
//!
//! The report's type is `dmalab_protocol::report::RunReport`, shared with
//! the campaign's oracle and the tests that read it back; its fields are
//! described in `docs/dma-device.md`, "Run report".

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

pub use dmalab_protocol::report::{Exits, RunReport};
use dmalab_protocol::result::{ResultLine, PREFIX as RESULT_PREFIX};

use crate::devices::bus::lock;

/// How the guest's exception line starts (`guest-driver/kernel/trap.c`).
const EXCEPTION_PREFIX: &str = "EXCEPTION ";

/// The `rip=0x…` of a guest `EXCEPTION` line.
pub fn exception_rip(line: &str) -> Option<u64> {
    let word = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rip=0x"))?;
    u64::from_str_radix(word, 16).ok()
}

/// The last result line seen on the console.
pub type ResultSlot = Arc<Mutex<Option<String>>>;

/// COM1's sink: stdout, watching for the result line.
#[derive(Debug)]
pub struct ResultTap<W: Write> {
    out: W,
    line: Vec<u8>,
    result: ResultSlot,
    exception: ResultSlot,
}

impl<W: Write> ResultTap<W> {
    pub fn new(out: W, result: ResultSlot) -> Self {
        Self {
            out,
            line: Vec::new(),
            result,
            exception: ResultSlot::default(),
        }
    }

    /// Keeps the guest's last `EXCEPTION …` line (docs/boot-protocol.md)
    /// in `slot` too, so the VMM can name its RIP.
    pub fn with_exception(mut self, slot: ResultSlot) -> Self {
        self.exception = slot;
        self
    }

    fn scan(&mut self, buf: &[u8]) {
        for &b in buf {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&self.line);
                let text = text.trim_end_matches('\r');
                if let Some(at) = text.find(RESULT_PREFIX) {
                    *lock(&self.result) = Some(text[at + RESULT_PREFIX.len()..].to_string());
                } else if let Some(at) = text.find(EXCEPTION_PREFIX) {
                    *lock(&self.exception) = Some(text[at..].to_string());
                }
                self.line.clear();
            } else if self.line.len() < 64 * 1024 {
                self.line.push(b);
            }
        }
    }
}

impl<W: Write> Write for ResultTap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scan(buf);
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Parses the result line's JSON, keeping the raw text if it is not a
/// JSON object.
pub fn parse_result(text: Option<String>) -> Option<ResultLine> {
    text.map(|t| ResultLine::parse(&t))
}

/// The human summary of a run for stderr.
pub fn summary(report: &RunReport) -> String {
    let d = &report.device;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dmalab: device: {} descriptors, {} completions ({} errors), {} bytes; \
         timing {}, doorbell {}",
        d.descriptors, d.completions, d.completion_errors, d.bytes, report.timing, report.doorbell
    );
    let _ = writeln!(
        out,
        "dmalab: interrupts: {} sent, {} dropped, {} delayed, {} coalesced, {} held masked",
        d.interrupts_sent,
        d.interrupts_dropped,
        d.interrupts_delayed,
        d.interrupts_coalesced,
        d.interrupts_masked
    );
    if d.fault_counts.is_empty() {
        let _ = writeln!(out, "dmalab: faults applied: none (seed {})", report.seed);
    } else {
        let kinds: Vec<String> = d
            .fault_counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let omitted = match d.fault_log_omitted {
            0 => String::new(),
            n => format!(
                "; fault log holds the first {}, {n} more",
                d.fault_log.len()
            ),
        };
        let _ = writeln!(
            out,
            "dmalab: faults applied: {} (seed {}){omitted}",
            kinds.join(", "),
            report.seed
        );
    }
    let _ = writeln!(
        out,
        "dmalab: exits: pio {}, mmio {} ({} at the device), other {}; trace events lost {}",
        report.exits.pio,
        report.exits.mmio,
        report.exits.device_registers.values().sum::<u64>(),
        report.exits.other,
        report.trace_lost
    );
    if !report.lateness.is_empty() {
        let kinds: Vec<String> = report
            .lateness
            .iter()
            .map(|(k, l)| format!("{k} {l}"))
            .collect();
        let _ = writeln!(out, "dmalab: realtime lateness: {}", kinds.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_counters_faults_and_exits() {
        let device = dmalab_protocol::report::DeviceCounters {
            descriptors: 3,
            bytes: 192,
            interrupts_sent: 2,
            faults: [("drop-interrupt".into(), vec![2])].into(),
            fault_counts: [("drop-interrupt".into(), 1)].into(),
            ..Default::default()
        };
        let mut exits = Exits {
            pio: 5,
            mmio: 7,
            ..Exits::default()
        };
        exits.device_registers.insert("ch0.TAIL".into(), 3);
        let report = RunReport {
            exit_status: 0,
            result: None,
            seed: 4,
            plan: String::new(),
            timing: "instant".into(),
            doorbell: "exit".into(),
            device,
            irqfd_signals: vec![2, 0],
            exits,
            trace_lost: 0,
            device_cycles: 1000,
            lateness: Default::default(),
        };
        let text = summary(&report);
        assert!(
            text.contains("3 descriptors") && text.contains("192 bytes"),
            "{text}"
        );
        assert!(text.contains("interrupts: 2 sent, 0 dropped"), "{text}");
        assert!(
            text.contains("faults applied: drop-interrupt 1 (seed 4)"),
            "{text}"
        );
        assert!(text.contains("mmio 7 (3 at the device)"), "{text}");
        assert_eq!(text.lines().count(), 4);
        let mut capped = report.clone();
        capped
            .device
            .fault_counts
            .insert("drop-interrupt".into(), 5);
        capped.device.fault_log_omitted = 4;
        capped
            .device
            .fault_log
            .push(dmalab_protocol::report::FaultEntry {
                seq: 2,
                kind: "drop-interrupt".into(),
                ..Default::default()
            });
        let line = summary(&capped);
        assert!(
            line.contains("drop-interrupt 5 (seed 4); fault log holds the first 1, 4 more"),
            "{line}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["device"]["faults"]["drop-interrupt"][0], 2);
        assert_eq!(json["exits"]["device_registers"]["ch0.TAIL"], 3);
        let mut realtime = report;
        realtime.lateness.insert(
            "completion".into(),
            dmalab_protocol::report::Lateness {
                count: 10,
                p50_ns: 2000,
                p99_ns: 30_000,
                max_ns: 31_500,
            },
        );
        let text = summary(&realtime);
        assert_eq!(text.lines().count(), 5);
        assert!(
            text.ends_with(
                "dmalab: realtime lateness: completion p50 2.0 µs, p99 30.0 µs, max 31.5 µs (n 10)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_tap_passes_everything_and_keeps_the_last_result() {
        let slot = ResultSlot::default();
        let mut tap = ResultTap::new(Vec::new(), slot.clone());
        tap.write_all(b"hello\nDMALAB-RESULT {\"scenario\":\"a\",")
            .unwrap();
        assert_eq!(*lock(&slot), None, "not a whole line yet");
        tap.write_all(b"\"status\":\"pass\"}\r\nbye\n").unwrap();
        assert_eq!(
            lock(&slot).as_deref(),
            Some("{\"scenario\":\"a\",\"status\":\"pass\"}")
        );
        assert_eq!(
            String::from_utf8(tap.out.clone()).unwrap(),
            "hello\nDMALAB-RESULT {\"scenario\":\"a\",\"status\":\"pass\"}\r\nbye\n"
        );
        let v = parse_result(lock(&slot).clone()).unwrap();
        assert_eq!(v.status(), Some("pass"));
        assert_eq!(
            parse_result(Some("not json".into())),
            Some(ResultLine::Text("not json".into()))
        );
    }

    #[test]
    fn the_last_exception_line_is_kept_and_its_rip_read() {
        let (result, exception) = (ResultSlot::default(), ResultSlot::default());
        let mut tap = ResultTap::new(Vec::new(), result).with_exception(exception.clone());
        tap.write_all(b"x\nEXCEPTION #DE vector=0 error=0x0 rip=0x1108a2 cr2=0x0 cpl=0\r\n")
            .unwrap();
        let line = lock(&exception).clone().unwrap();
        assert!(line.starts_with("EXCEPTION #DE"), "{line}");
        assert_eq!(exception_rip(&line), Some(0x1108a2));
        assert_eq!(exception_rip("EXCEPTION #DE rip=zz"), None);
    }
}
