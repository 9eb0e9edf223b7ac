//! `dmalab run`: from parsed arguments to an exit status.
//!
//! In order:
//! 1. User errors are caught before any KVM work (the kernel and initrd
//!    files, a dmalab or Linux guest: `kernel_file.rs`; ELF checks,
//!    command line, the `--faults` plan), so they are reported the same
//!    with or without /dev/kvm (exit 64, `error.rs`).
//! 2. The VM is built (`vm.rs`) and the DMA controller attached to it
//!    (`dma_device/`: PCI slot 00:01.0, BARs, MSI-X delivery, doorbells,
//!    device thread).
//! 3. One thread per vCPU runs KVM_RUN (`vcpu.rs`). The main thread owns
//!    the outcome: it waits on the vCPUs' report channel with the timeout
//!    (looking every 20 ms for console bytes held in KVM's coalesced ring,
//!    `console_ring.rs`), and on expiry sets the stop flag, kicks every
//!    vCPU thread out of KVM_RUN (`vcpu_kick.rs`), collects their register
//!    dumps and returns 73.
//! 4. It flushes the console before printing anything, so the guest's last
//!    lines come before the VMM's verdict, then drains the device into the
//!    summary on stderr, the `--trace` file and the `--report`
//!    (`report.rs`; the report's type is `dmalab_protocol::report`).
//!
//! The caller exits the process, which ends vCPU threads still parked in
//! KVM_RUN (an AP in `hlt`).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use vmm_sys_util::signal::Killable;

use device_model::fault::FaultPlan;
use device_model::DeviceConfig;

use crate::cli::{RunArgs, DEFAULT_PLAN};
use crate::console_ring::RingPeek;
use crate::devices::bus::lock;
use crate::dma_device::{Dma, DmaDevice, DmaOptions};
use crate::ending::{name_exception, print_stopped, verdict};
use crate::error::{status, Error};
use crate::guest_image::{BUILTIN_GUEST, BUILTIN_NAME};
use crate::pause::PauseGate;
use crate::report::{self, Exits, RunReport};
use crate::timings::{ExitKind, Stamp, Timings};
use crate::vcpu::{Report, Vcpu};
use crate::vcpu_kick;
use crate::vm::{Vm, VmConfig};
use dmalab_protocol::symbols::Symbols;

/// How often the main thread looks for console bytes waiting in KVM's
/// coalesced ring (`console_ring.rs`).
const CONSOLE_POLL: Duration = Duration::from_millis(20);

/// The signal (SIGINT or SIGTERM) that asked the run to stop, 0 if none.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(num: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Async-signal-safe: one atomic store.
    STOP_SIGNAL.store(num, Ordering::Release);
}

/// SIGINT and SIGTERM stop the run cleanly: the main thread sees the flag
/// within `CONSOLE_POLL` and stops the VM as on a timeout; the summary,
/// `--trace` and `--report` are written and the control socket removed.
fn install_stop_signals() -> Result<(), Error> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        vmm_sys_util::signal::register_signal_handler(sig, on_stop_signal)
            .map_err(Error::Signal)?;
    }
    Ok(())
}

/// How long kicked vCPU threads get to report their registers.
const KICK_GRACE: Duration = Duration::from_secs(2);

/// Boots the guest `args` describe; returns the process exit status.
pub fn run(args: &RunArgs, start: Instant) -> Result<u8, Error> {
    if let Some(path) = &args.print_guest_elf {
        crate::guest_image::write_builtin(path).map_err(|source| Error::Output {
            what: "the guest ELF",
            path: path.clone(),
            source,
        })?;
        println!("{}", path.display());
        return Ok(status::PASS);
    }
    let timings = Arc::new(Timings::new(start));
    let (name, image): (Cow<'_, str>, Cow<'static, [u8]>) = match &args.kernel {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| Error::KernelRead {
                path: path.clone(),
                source,
            })?;
            (path.to_string_lossy(), Cow::Owned(bytes))
        }
        None => (Cow::Borrowed(BUILTIN_NAME), Cow::Borrowed(BUILTIN_GUEST)),
    };
    let kernel = crate::kernel_file::guest(args, &name, &image)?;
    let cmdline = crate::kernel_file::cmdline(args, &kernel);
    kernel.check_cmdline(&cmdline).map_err(Error::Cmdline)?;
    let plan = fault_plan(args, !kernel.is_linux())?;
    for (what, path) in [("--trace", &args.trace), ("--report", &args.report)] {
        if let Some(path) = path {
            if let Some(why) = dmalab_protocol::output_path_problem(path) {
                return Err(Error::OutputPath {
                    what,
                    path: path.clone(),
                    why,
                });
            }
        }
    }
    let gdb_listener = args.gdb.as_ref().map(crate::gdb::Listener::bind);
    let gdb_listener = gdb_listener.transpose().map_err(Error::Gdb)?;
    vcpu_kick::install().map_err(Error::Signal)?;
    install_stop_signals()?;
    if !args.no_seccomp {
        // Each thread installs its filter once its setup is done.
        crate::seccomp::prepare().map_err(Error::Seccomp)?;
    }

    let vm = Vm::new(
        &VmConfig {
            ram_bytes: args.memory,
            cpus: args.cpus,
            kernel_image: &image,
            kernel: &kernel,
            cmdline: &cmdline,
        },
        &timings,
    )
    .map_err(Error::Vm)?;
    let mut vm = vm;
    let pause = PauseGate::new(vm.vcpus.len());
    let options = DmaOptions {
        timing: args.timing,
        profile: args.device_profile,
        doorbell: args.doorbell,
        plan: plan.clone(),
        seed: args.seed,
        keep_trace: args.trace.is_some(),
        control: args.control.clone(),
        pause: pause.clone(),
        realtime_priority: args.realtime_priority,
        realtime_spin_us: args.realtime_spin,
    };
    let mut device = {
        let mut pci = lock(&vm.pci);
        DmaDevice::attach(
            &vm.fd,
            &vm.memory,
            pci.bus_mut(),
            &vm.buses.mmio_bus(),
            &options,
        )
        .map_err(Error::Dma)?
    };
    let (gdb, debug) = match (&args.gdb, gdb_listener) {
        (Some(addr), Some(listener)) => {
            let (stub, debug) = start_gdb(args, addr, listener, &vm, &pause)?;
            (Some(stub), debug)
        }
        _ => (None, Vec::new()),
    };
    let status = supervise(
        &mut vm,
        args.timeout,
        &timings,
        &device.dma,
        &pause,
        debug,
        &image,
    )?;
    if status == status::GUEST_EXCEPTION {
        name_exception(&vm, &image);
    }
    if let Some(gdb) = gdb {
        gdb.finish(status);
    }
    timings.stamp(Stamp::Exit);
    device.dma.stop();
    device.thread.stop();
    finish(args, &vm, &device, &plan, status, &timings)?;
    if args.timings {
        eprint!("{}", timings.report());
        eprintln!("{}", device_exits_line(&timings, &device.dma));
        eprintln!(
            "timings: device lock held {} times, longest {} µs (host time), {} µs (CPU time of the holder)",
            device.dma.holds.holds(),
            device.dma.holds.longest().as_micros(),
            device.dma.holds.longest_cpu().as_micros()
        );
    }
    // Tearing the VM down (here, or at process exit) takes ~13 ms on this
    // platform with the in-kernel irqchip; the `exit` stamp is taken before.
    drop(vm);
    Ok(status)
}

/// Starts the gdb stub on `--gdb`'s socket and says how to connect (the
/// ELF to load: the built-in guest written out to a file, or `--kernel`).
fn start_gdb(
    args: &RunArgs,
    addr: &crate::gdb::GdbAddr,
    listener: crate::gdb::Listener,
    vm: &Vm,
    pause: &Arc<PauseGate>,
) -> Result<(crate::gdb::GdbStub, Vec<crate::gdb::VcpuDebug>), Error> {
    let elf = match &args.kernel {
        Some(path) => path.clone(),
        None => crate::guest_image::builtin_on_disk().map_err(|source| Error::Output {
            what: "the guest ELF",
            path: std::env::temp_dir(),
            source,
        })?,
    };
    let stub = crate::gdb::GdbStub::start(
        listener,
        vm.vcpus.len(),
        args.gdb_wait,
        pause,
        vm.memory.clone(),
    )
    .map_err(Error::Gdb)?;
    eprintln!(
        "dmalab: gdb stub on {addr}{}: gdb -ex 'file {}' -ex 'target remote {addr}'",
        if args.gdb_wait {
            ", the guest waits for it"
        } else {
            ""
        },
        elf.display()
    );
    Ok(stub)
}

/// Reads and checks `--faults` (before any VM exists): a missing file, bad
/// TOML, a bad rule or field, or a channel the device lacks is one line
/// naming the file, rule and field, and exit status 64.
/// The built-in plan goes with the dmalab guest's default scenario only
/// (`default_allowed`).
fn fault_plan(args: &RunArgs, default_allowed: bool) -> Result<FaultPlan, Error> {
    let Some(path) = &args.faults else {
        if default_allowed && args.uses_default_plan() {
            // Checked by a unit test: the embedded plan always parses.
            return FaultPlan::from_toml(DEFAULT_PLAN).map_err(|source| Error::PlanInvalid {
                path: "<built-in default plan>".into(),
                source,
            });
        }
        return Ok(FaultPlan::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::PlanRead {
        path: path.clone(),
        source,
    })?;
    let invalid = |source| Error::PlanInvalid {
        path: path.clone(),
        source,
    };
    let plan = FaultPlan::from_toml(&text).map_err(invalid)?;
    plan.validate_for(DeviceConfig::default().channels)
        .map_err(invalid)?;
    Ok(plan)
}

/// `--timings`: exits of the whole run by reason, and those that reached
/// the DMA controller by register.
fn device_exits_line(timings: &Timings, dma: &Dma) -> String {
    let registers: Vec<String> = dma
        .exits
        .by_register(dma.channels)
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    format!(
        "timings: exits-total pio {}, mmio {}, other {}; at the device: {}",
        timings.exits_total(ExitKind::Pio),
        timings.exits_total(ExitKind::Mmio),
        timings.exits_total(ExitKind::Other),
        if registers.is_empty() {
            "none".to_string()
        } else {
            registers.join(", ")
        }
    )
}

/// Drains the device, writes `--trace` and `--report`, prints the summary.
fn finish(
    args: &RunArgs,
    vm: &Vm,
    device: &DmaDevice,
    plan: &FaultPlan,
    status: u8,
    timings: &Timings,
) -> Result<(), Error> {
    let dma = &device.dma;
    let mut st = dma.lock();
    st.drain();
    let plan = replayable(plan, &st.injected);
    let report = RunReport {
        exit_status: status,
        result: report::parse_result(lock(&vm.result).clone()),
        seed: args.seed,
        plan: plan.to_toml().unwrap_or_default(),
        timing: args.timing.name().to_string(),
        doorbell: args.doorbell.name().to_string(),
        device: st.tally.counters().clone(),
        irqfd_signals: st.model.interrupts().counts().per_slot.clone(),
        exits: Exits {
            pio: timings.exits_total(ExitKind::Pio),
            mmio: timings.exits_total(ExitKind::Mmio),
            other: timings.exits_total(ExitKind::Other),
            device_registers: dma.exits.by_register(dma.channels),
        },
        trace_lost: st.trace_lost(),
        device_cycles: st.model.now(),
        lateness: st.lateness.summaries(),
    };
    let write = |what: &'static str, path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|source| Error::Output {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    let guest_times = args.timing == crate::dma_device::TimingMode::Realtime;
    if let (Some(path), Some(json)) = (&args.trace, st.chrome_json(guest_times)) {
        write("the trace", path, &json)?;
    }
    drop(st);
    if let Some(path) = &args.report {
        write("the report", path, &report.to_json())?;
    }
    eprint!("{}", report::summary(&report));
    Ok(())
}

/// The plan the run started with, plus one rule per fault injected by hand
/// as it applied (`nth` = its descriptor's sequence number, which counts
/// every descriptor): given with the same seed, the report's plan replays
/// the run's faults.
fn replayable(plan: &FaultPlan, injected: &[(u64, device_model::fault::FaultEffect)]) -> FaultPlan {
    let mut plan = plan.clone();
    for &(seq, effect) in injected {
        plan.rules.push(device_model::fault::FaultRule {
            name: Some("injected by hand".into()),
            trigger: device_model::fault::Trigger {
                nth: Some(seq),
                ..Default::default()
            },
            effect,
        });
    }
    plan
}

/// Runs the vCPU threads and turns the first report (or the timeout) into
/// an exit status. Time the VM spent paused does not count against the
/// timeout.
fn supervise(
    vm: &mut Vm,
    timeout: Duration,
    timings: &Arc<Timings>,
    dma: &Dma,
    pause: &Arc<PauseGate>,
    debug: Vec<crate::gdb::VcpuDebug>,
    guest_elf: &[u8],
) -> Result<u8, Error> {
    let mut debug = debug.into_iter();
    let stop = Arc::new(AtomicBool::new(false));
    let (reports, inbox) = mpsc::channel();
    let mut threads = Vec::with_capacity(vm.vcpus.len());
    let buses = Arc::new(std::mem::take(&mut vm.buses));
    let ring = match (&vm.console_ring, vm.vcpus.first()) {
        (Some(_), Some(bsp)) => RingPeek::new(bsp)
            .inspect_err(|e| log::warn!("console lines may wait for the next exit: {e}"))
            .ok(),
        _ => None,
    };
    for (index, fd) in (0u8..).zip(vm.vcpus.drain(..)) {
        let vcpu = Vcpu {
            index,
            fd,
            buses: buses.clone(),
            exit_request: vm.exit_request.clone(),
            stop: stop.clone(),
            pause: pause.clone(),
            timings: timings.clone(),
            memory: vm.memory.clone(),
            console_ring: vm.console_ring.clone(),
            debug: debug.next(),
        };
        let reports = reports.clone();
        let thread = thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || vcpu.run(reports))
            .map_err(Error::Thread)?;
        threads.push(thread);
    }
    drop(reports);
    // Last: a filter is inherited by the threads started after it.
    crate::seccomp::enter(crate::seccomp::Thread::Main);

    let mut waited = Duration::ZERO;
    let first = first_report(&inbox, timeout, ring.as_ref(), &threads, pause, &mut waited);
    // Nothing parks any more: the run is ending.
    pause.release();
    let first = match first {
        Ok(report) => report,
        Err(RecvTimeoutError::Timeout) => {
            // A vCPU may wait in an exit for device steps that never come.
            dma.stop();
            let reports = stop_all(&stop, &threads, &inbox);
            flush_console(vm);
            let signal = STOP_SIGNAL.load(Ordering::Acquire);
            if signal != 0 {
                let (name, code) = if signal == libc::SIGTERM {
                    ("SIGTERM", status::SIGTERM)
                } else {
                    ("SIGINT", status::SIGINT)
                };
                eprintln!("dmalab: {name}: stopped the VM");
                return Ok(code);
            }
            if waited.is_zero() {
                eprintln!(
                    "dmalab: timeout: the guest did not exit within {:.1} s; stopped it",
                    timeout.as_secs_f64()
                );
            } else {
                eprintln!(
                    "dmalab: timeout: the guest did not exit within {:.1} s \
                     (+{:.1} s its threads waited for a host CPU); stopped it",
                    timeout.as_secs_f64(),
                    waited.as_secs_f64()
                );
            }
            let symbols = Symbols::from_elf(guest_elf);
            print_stopped(&reports, threads.len(), &symbols, KICK_GRACE);
            if let Some(state) = crate::guest_state::read(&vm.memory, &symbols, threads.len()) {
                eprintln!("dmalab: guest state: {state}");
            }
            return Ok(status::TIMEOUT);
        }
        Err(RecvTimeoutError::Disconnected) => return Err(Error::NoReport),
    };
    flush_console(vm);
    Ok(verdict(first, guest_elf))
}

/// The first vCPU report, or `Timeout` once `timeout` has passed, plus the
/// time paused, plus the longest wait of a vCPU or the device thread for a
/// host CPU (`cpu_wait.rs`; at most `timeout`, left in `waited`).
/// Meanwhile every `CONSOLE_POLL`, if console bytes wait in the coalesced
/// ring, vCPU 0 is kicked so it drains them.
fn first_report(
    inbox: &mpsc::Receiver<Report>,
    timeout: Duration,
    ring: Option<&RingPeek>,
    threads: &[JoinHandle<()>],
    pause: &PauseGate,
    waited: &mut Duration,
) -> Result<Report, RecvTimeoutError> {
    let start = Instant::now();
    let waits = crate::cpu_wait::CpuWait::start();
    loop {
        let mut deadline = start + timeout + pause.paused_total() + *waited;
        if Instant::now() >= deadline {
            let longest = waits.longest().min(timeout);
            if longest > *waited {
                deadline += longest - *waited;
                *waited = longest;
            }
        }
        let paused = pause.is_paused();
        let left = deadline.saturating_duration_since(Instant::now());
        // Polled, so that a stop signal is seen within CONSOLE_POLL.
        let wait = left.min(CONSOLE_POLL);
        match inbox.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) if STOP_SIGNAL.load(Ordering::Acquire) != 0 => {
                return Err(RecvTimeoutError::Timeout)
            }
            Err(RecvTimeoutError::Timeout) if !left.is_zero() || paused => {
                if !paused && ring.is_some_and(RingPeek::pending) {
                    kick_bsp(threads);
                }
            }
            other => return other,
        }
    }
}

/// Kicks vCPU 0 out of KVM_RUN once, so it drains the console ring.
fn kick_bsp(threads: &[JoinHandle<()>]) {
    if let Some(bsp) = threads.first() {
        if let Err(e) = bsp.kill(vcpu_kick::signal()) {
            log::debug!("cannot kick vCPU 0 for the console: {e}");
        }
    }
}

/// Stops every vCPU and collects what each reports within `KICK_GRACE`.
fn stop_all(
    stop: &AtomicBool,
    threads: &[JoinHandle<()>],
    inbox: &mpsc::Receiver<Report>,
) -> Vec<Report> {
    stop.store(true, Ordering::Release);
    for (index, thread) in threads.iter().enumerate() {
        if let Err(e) = thread.kill(vcpu_kick::signal()) {
            log::warn!("cannot kick vCPU {index}: {e}");
        }
    }
    let deadline = Instant::now() + KICK_GRACE;
    let mut reports = Vec::new();
    while reports.len() < threads.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(report) => reports.push(report),
            Err(_) => break,
        }
    }
    reports.sort_by_key(|r| r.index);
    reports
}

fn flush_console(vm: &Vm) {
    if let Err(e) = lock(&vm.console).flush_pending() {
        log::warn!("cannot write the guest console to stdout: {e}");
    }
}
