//! How a run's end is told on stderr: the exit status of the first vCPU
//! report, register dumps with RIP named from the guest ELF's symbols, and
//! where a guest exception happened.

use std::time::Duration;

use dmalab_protocol::symbols::Symbols;

use crate::devices::bus::lock;
use crate::error::status;
use crate::regdump::RegDump;
use crate::report;
use crate::vcpu::{Outcome, Report};
use crate::vm::Vm;

/// Prints what each stopped vCPU reported, and names those that did not
/// stop within `grace`.
pub fn print_stopped(reports: &[Report], vcpus: usize, symbols: &Symbols, grace: Duration) {
    for report in reports {
        match &report.outcome {
            Outcome::Stopped(dump) => eprint!("{}", named(dump, symbols)),
            other => describe(other, symbols),
        }
    }
    for index in 0..vcpus {
        if !reports.iter().any(|r| usize::from(r.index) == index) {
            eprintln!("vCPU {index}: did not stop within {} s", grace.as_secs());
        }
    }
}

/// The exit status for the first report, after printing what went wrong.
pub fn verdict(report: Report, guest_elf: &[u8]) -> u8 {
    if !matches!(report.outcome, Outcome::GuestExit(_)) {
        describe(&report.outcome, &Symbols::from_elf(guest_elf));
    }
    match report.outcome {
        Outcome::GuestExit(code) => code.min(status::GUEST_MAX),
        Outcome::TripleFault { .. } => status::TRIPLE_FAULT,
        Outcome::KvmFailure { .. } => status::KVM_INTERNAL,
        Outcome::Stopped(_) => status::INTERNAL,
    }
}

fn describe(outcome: &Outcome, symbols: &Symbols) {
    match outcome {
        Outcome::GuestExit(code) => log::debug!("guest exit status {code}"),
        Outcome::TripleFault { why, dump } | Outcome::KvmFailure { why, dump } => {
            eprintln!("dmalab: {why}");
            eprint!("{}", named(dump, symbols));
        }
        Outcome::Stopped(dump) => {
            eprintln!("dmalab: vCPU {} stopped without a request", dump.index);
            eprint!("{}", named(dump, symbols));
        }
    }
}

/// `dump` with its RIP named from the guest ELF's symbols.
fn named(dump: &RegDump, symbols: &Symbols) -> RegDump {
    let mut dump = dump.clone();
    dump.name_rip(symbols);
    dump
}

/// After the guest's `EXCEPTION` line: where its RIP is, by name.
pub fn name_exception(vm: &Vm, guest_elf: &[u8]) {
    let Some(rip) = lock(&vm.exception)
        .as_deref()
        .and_then(report::exception_rip)
    else {
        return;
    };
    match Symbols::from_elf(guest_elf).name(rip) {
        Some((name, off)) => {
            eprintln!("dmalab: guest exception at rip {rip:#x} in {name}+{off:#x}")
        }
        None => {
            eprintln!("dmalab: guest exception at rip {rip:#x} (no symbol for it in the guest ELF)")
        }
    }
}
