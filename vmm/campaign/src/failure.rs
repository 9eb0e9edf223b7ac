//! What a failure block shows beyond the broken rules: the lines that
//! point at the bug.
//!
//! - the guest's first verifier, exception and failure lines
//!   (`VERIFIER: IRP completed twice … by DriverStartIo`, a request that
//!   ended with an error status), from the console;
//! - the fault-log entries around the failing request: the report's
//!   `device.fault_log`, centred on the first fault that can fail a
//!   request when one did, with each fault's parameters;
//! - for a run that timed out: where the guest was, from the VMM's
//!   register dump (RIP symbolised against the guest image's symbol
//!   table, whether interrupts were on, i.e. the IRQL class) and how far
//!   the workload got (the IRPs the driver started and completed are not
//!   printed before the end, so the console's last lines stand in).

use dmalab_protocol::report::FaultEntry;
use dmalab_protocol::status;

use crate::oracle::Outcome;

/// Guest lines shown at most.
const GUEST_LINES: usize = 6;
/// Fault-log entries shown at most (before + after the failing one).
const BEFORE: usize = 3;
const AFTER: usize = 5;

use crate::oracle::BREAKING;

/// Whether a console line points at a driver bug or a failed request.
fn telling(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("VERIFIER:")
        || l.starts_with("EXCEPTION ")
        || l.starts_with("PANIC")
        || l.contains(": FAIL ")
        || (l.starts_with("dma-io: request")
            && (l.contains("DATA WRONG") || !l.contains("status 0x0,")))
}

/// The first telling guest lines.
pub fn guest_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .filter(|l| telling(l))
        .take(GUEST_LINES)
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The fault-log entries around the first breaking fault (or the first
/// ones), and how many were left out.
pub fn fault_window(log: &[FaultEntry]) -> (Vec<&FaultEntry>, usize) {
    let centre = log
        .iter()
        .position(|e| BREAKING.contains(&e.kind.as_str()))
        .unwrap_or(0);
    let from = centre.saturating_sub(BEFORE);
    let until = (centre + AFTER + 1).min(log.len());
    let shown: Vec<&FaultEntry> = log[from..until].iter().collect();
    let left = log.len() - shown.len();
    (shown, left)
}

/// The VMM's register dump line `RIP 0x… RSP … RFLAGS 0x…` → (RIP, RFLAGS).
fn rip_and_flags(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("RIP "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let hex = |key: &str| -> Option<u64> {
        let at = words.iter().position(|w| *w == key)?;
        u64::from_str_radix(words.get(at + 1)?.trim_start_matches("0x"), 16).ok()
    };
    Some((hex("RIP")?, hex("RFLAGS")?))
}

/// Where a timed-out guest was: `RIP 0x101e27 (wdm_spin+0x17), interrupts
/// off (above DISPATCH_LEVEL)`; `symbols` names RIP when given.
pub fn where_it_was(stderr: &str, symbols: Option<&crate::symbols::Symbols>) -> Option<String> {
    let (rip, flags) = rip_and_flags(stderr)?;
    let name = symbols
        .and_then(|s| s.name(rip))
        .map(|(name, off)| format!(" ({name}+{off:#x})"))
        .unwrap_or_default();
    let irql = if flags & (1 << 9) != 0 {
        "interrupts on (IRQL at or below DISPATCH_LEVEL)"
    } else {
        "interrupts off (an ISR or a raised IRQL above DISPATCH_LEVEL)"
    };
    Some(format!("guest at RIP {rip:#x}{name}, {irql}"))
}

/// The VMM's reading of the guest's state block at a timeout (each CPU's
/// IRQL and driver routine, the IRPs outstanding).
fn driver_state(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("dmalab: guest state: "))
}

/// The evidence lines of a failed scenario, indented for the failure block.
pub fn evidence(outcome: &Outcome, symbols: Option<&crate::symbols::Symbols>) -> Vec<String> {
    let mut out = Vec::new();
    let lines = guest_lines(&outcome.console);
    if !lines.is_empty() {
        out.push("guest:".to_string());
        out.extend(lines.into_iter().map(|l| format!("  {l}")));
    }
    if let Some(report) = &outcome.report {
        let log = &report.device.fault_log;
        if !log.is_empty() {
            let (shown, left) = fault_window(log);
            out.push(format!(
                "fault log ({} applied{}):",
                log.len(),
                if left > 0 {
                    format!(", {left} not shown")
                } else {
                    String::new()
                }
            ));
            out.extend(shown.into_iter().map(|e| format!("  {e}")));
        }
    }
    if outcome.exit == Some(i32::from(status::TIMEOUT)) || outcome.exit.is_none() {
        if let Some(place) = where_it_was(&outcome.stderr, symbols) {
            out.push(place);
        }
        if let Some(state) = driver_state(&outcome.stderr) {
            out.push(format!("driver: {state}"));
        }
        let last: Vec<&str> = outcome
            .console
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(2)
            .collect();
        if !last.is_empty() {
            out.push("last guest lines:".to_string());
            out.extend(
                last.into_iter()
                    .rev()
                    .map(|l| format!("  {}", l.trim_end())),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: &str) -> FaultEntry {
        FaultEntry {
            seq,
            kind: kind.into(),
            ..FaultEntry::default()
        }
    }

    #[test]
    fn the_guest_lines_are_the_verifier_and_failure_lines_in_order() {
        let console = "boot: ready\nVERIFIER: IRP completed twice irp=0x1 id=3 by DriverStartIo\n\
                       dma-io: request 2 copy 64 bytes on channel 0: status 0x0, data verified\n\
                       dma-io: request 3 copy 64 bytes on channel 0: status 0xc0000186\n\
                       copy: FAIL open (0xc0000001)\n";
        assert_eq!(
            guest_lines(console),
            [
                "VERIFIER: IRP completed twice irp=0x1 id=3 by DriverStartIo",
                "dma-io: request 3 copy 64 bytes on channel 0: status 0xc0000186",
                "copy: FAIL open (0xc0000001)"
            ]
        );
    }

    #[test]
    fn the_fault_window_centres_on_the_first_breaking_fault() {
        let mut log: Vec<FaultEntry> = (1..=10).map(|s| entry(s, "drop-interrupt")).collect();
        log[6] = entry(7, "dma-error");
        let (shown, left) = fault_window(&log);
        let seqs: Vec<u64> = shown.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(left, 3);
        let (shown, _) = fault_window(&log[..2]);
        assert_eq!(shown.len(), 2);
        assert!(fault_window(&[]).0.is_empty());
    }

    #[test]
    fn a_timeout_names_the_rip_and_the_interrupt_state() {
        let stderr = "dmalab: timeout\nvCPU 0 registers:\n  RIP 0x0000000000101e27  \
                      RSP 0x000000000011c428  RFLAGS 0x00000046\n";
        assert_eq!(
            where_it_was(stderr, None).unwrap(),
            "guest at RIP 0x101e27, interrupts off (an ISR or a raised IRQL above DISPATCH_LEVEL)"
        );
        assert_eq!(where_it_was("no dump", None), None);
        let stderr = "dmalab: timeout\ndmalab: guest state: 2 IRPs outstanding; cpu0 at \
                      DISPATCH_LEVEL in DpcForIsr\n";
        assert_eq!(
            driver_state(stderr),
            Some("2 IRPs outstanding; cpu0 at DISPATCH_LEVEL in DpcForIsr")
        );
        assert_eq!(driver_state("dmalab: timeout\n"), None);
    }
}
