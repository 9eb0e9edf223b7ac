//! The options of `dmalab run` (clap derive; the `dmalab` binary puts
//! them under its `run` subcommand). Value parsers here turn bad input
//! into clap errors, which `main` maps to exit status 64. `docs/vmm.md` is the user-facing description.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::boot::layout::{GIB, MAX_RAM, MAX_VCPUS, MIB, MIN_RAM};
use crate::dma_device::{DoorbellMode, TimingMode};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Guest memory: `64M`, `1G`, or a number of MiB (16 MiB to 16 GiB).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_memory)]
    pub memory: u64,

    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_VCPUS)))]
    pub cpus: u8,

    /// Guest kernel: a dmalab guest ELF, or a Linux vmlinux or bzImage
    /// (default: the dmalab guest built into this binary).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,

    /// Initial RAM disk for a Linux --kernel.
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,

    /// Guest command line, passed as given (for Linux, after dmalab's
    /// defaults, docs/linux-guest.md).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub cmdline: String,

    /// Scenario to run: appends `scenario=NAME` to the command line
    /// (default: `demo`, with its built-in fault plan unless --faults is given).
    #[arg(long, value_name = "NAME", value_parser = parse_scenario)]
    pub scenario: Option<String>,

    /// Seconds before the VM is stopped and dmalab exits 73 (extended by
    /// the time its threads waited for a busy host's CPU, up to as much
    /// again: docs/vmm.md).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Print boot timings (µs since start) on stderr.
    #[arg(long)]
    pub timings: bool,

    /// How the DMA controller's time passes.
    #[arg(long, value_name = "MODE", value_enum, default_value = "realtime")]
    pub timing: TimingMode,

    /// How a channel's TAIL doorbell reaches the device (docs/dma-device.md).
    #[arg(long, value_name = "PATH", value_enum, default_value = DEFAULT_DOORBELL)]
    pub doorbell: DoorbellMode,

    /// Run the device thread under SCHED_FIFO at PRIO (1–99), so that
    /// realtime events are processed on time on a busy host
    /// (docs/dma-device.md, "Realtime lateness"); needs CAP_SYS_NICE.
    #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub realtime_priority: Option<u8>,

    /// Realtime: wake the device thread US µs (0–1000) before each event
    /// falls due and spin the rest, so the host's timer wake-up latency is
    /// not added to the event (costs up to US of a CPU per wake-up).
    #[arg(long, value_name = "US", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub realtime_spin: u16,

    /// The DMA controller's timing profile (docs/timing-profiles.md).
    #[arg(long, value_name = "NAME", default_value = "ioat-cb3", value_parser = parse_profile)]
    pub device_profile: device_model::TimingConfig,

    /// Fault plan (TOML, docs/fault-plans.md) for the DMA controller.
    #[arg(long, value_name = "PLAN")]
    pub faults: Option<PathBuf>,

    /// Seed of the fault plan's random decisions.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Write the device trace as Chrome trace-event JSON (Perfetto).
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,

    /// Write a machine-readable run report (JSON).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// The control socket (Unix, line protocol); stepped mode creates one
    /// in $TMPDIR by default.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,

    /// Serve gdb's remote protocol on a loopback `host:port` or a Unix
    /// socket path (docs/debugging.md); prints the guest ELF to load.
    #[arg(long, value_name = "ADDR", value_parser = crate::gdb::parse_addr)]
    pub gdb: Option<crate::gdb::GdbAddr>,

    /// With --gdb: stop before the first guest instruction until gdb
    /// continues.
    #[arg(long, requires = "gdb")]
    pub gdb_wait: bool,

    /// Run without the per-thread seccomp filters (for debugging the VMM,
    /// valgrind, or a kernel without seccomp; docs/hardening.md).
    #[arg(long)]
    pub no_seccomp: bool,

    /// Write the built-in guest ELF (with its symbols) to PATH and exit.
    #[arg(long, value_name = "PATH")]
    pub print_guest_elf: Option<PathBuf>,
}

/// `--doorbell` when not given (docs/dma-device.md says why).
pub const DEFAULT_DOORBELL: &str = "exit";

/// The scenario the guest runs when nothing names one: a few IRPs through
/// the WDM-style DMA driver with trace markers on, surviving one injected
/// fault ([`DEFAULT_PLAN`]).
pub const DEFAULT_SCENARIO: &str = "demo";

/// The fault plan of the default run (when neither a scenario nor
/// `--faults` is given): the 3rd descriptor's interrupt is dropped, and the
/// driver's watchdog timer DPC recovers it.
pub const DEFAULT_PLAN: &str = include_str!("../../tests/plans/demo.toml");

impl RunArgs {
    /// The command line the guest gets: `--cmdline`, then `scenario=NAME`
    /// from `--scenario`, or `scenario=demo` if neither names a scenario;
    /// with `--trace`, `markers=1` (the driver's markers in the trace)
    /// unless `--cmdline` says `markers=`.
    pub fn guest_cmdline(&self) -> String {
        let mut words: Vec<&str> = self.cmdline.split_whitespace().collect();
        if self.trace.is_some() && !words.iter().any(|w| w.starts_with("markers=")) {
            words.push("markers=1");
        }
        let scenario;
        if let Some(name) = &self.scenario {
            scenario = format!("scenario={name}");
            words.push(&scenario);
        } else if self.is_default_scenario() {
            scenario = format!("scenario={DEFAULT_SCENARIO}");
            words.push(&scenario);
        }
        words.join(" ")
    }

    /// Neither `--scenario` nor a `scenario=` word in `--cmdline`: the guest
    /// runs [`DEFAULT_SCENARIO`].
    pub fn is_default_scenario(&self) -> bool {
        self.scenario.is_none()
            && !self
                .cmdline
                .split_whitespace()
                .any(|w| w.starts_with("scenario="))
    }

    /// The built-in plan applies to the default run only: naming a scenario
    /// or a plan file turns it off.
    pub fn uses_default_plan(&self) -> bool {
        self.faults.is_none() && self.is_default_scenario()
    }
}

/// `64M`, `64MiB`, `1G`, `1GiB` (any case), or a plain number of MiB.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, unit) = if let Some(d) = lower.strip_suffix("gib").or(lower.strip_suffix('g')) {
        (d, GIB)
    } else if let Some(d) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (d, MIB)
    } else {
        (lower.as_str(), MIB)
    };
    let count: u64 = digits.trim().parse().map_err(|_| {
        format!("'{t}' is not a size; use e.g. --memory 64M, --memory 1G or --memory 256 (MiB)")
    })?;
    let bytes = count
        .checked_mul(unit)
        .filter(|b| (MIN_RAM..=MAX_RAM).contains(b))
        .ok_or_else(|| {
            format!("'{t}' is outside 16 MiB–16 GiB; use e.g. --memory 64M or --memory 1G")
        })?;
    Ok(bytes)
}

/// Seconds, fractions allowed, more than 0.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("the timeout must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' seconds is too long"))
}

/// A scenario name: one command-line word of letters, digits, `-`, `_`, `.`.
pub fn parse_scenario(text: &str) -> Result<String, String> {
    dmalab_protocol::scenario_name(text)
}

/// `--device-profile`: a name from `device_model::PROFILES`.
pub fn parse_profile(text: &str) -> Result<device_model::TimingConfig, String> {
    device_model::TimingConfig::profile(text).ok_or_else(|| {
        format!(
            "unknown device profile (known: {})",
            device_model::PROFILES.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn run(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = ["dmalab-run"].iter().chain(args);
        <Run as clap::Parser>::try_parse_from(argv).map(|r| r.args)
    }

    #[test]
    fn a_trace_turns_the_driver_markers_on_unless_the_command_line_says() {
        let a = run(&["--trace", "t.json", "--scenario", "stress"]).unwrap();
        assert_eq!(a.guest_cmdline(), "markers=1 scenario=stress");
        let a = run(&["--trace", "t.json", "--cmdline", "markers=0"]).unwrap();
        assert_eq!(a.guest_cmdline(), "markers=0 scenario=demo");
        let a = run(&["--scenario", "stress"]).unwrap();
        assert_eq!(a.guest_cmdline(), "scenario=stress");
    }

    #[test]
    fn gdb_addresses_are_loopback_or_a_socket_path() {
        use crate::gdb::GdbAddr;
        let a = run(&["--gdb", "127.0.0.1:1234", "--gdb-wait"]).unwrap();
        assert_eq!(a.gdb, Some(GdbAddr::Tcp("127.0.0.1:1234".parse().unwrap())));
        assert!(a.gdb_wait);
        let a = run(&["--gdb", "localhost:9"]).unwrap();
        assert_eq!(a.gdb, Some(GdbAddr::Tcp("127.0.0.1:9".parse().unwrap())));
        let a = run(&["--gdb", "./g.sock"]).unwrap();
        assert_eq!(a.gdb, Some(GdbAddr::Unix("./g.sock".into())));
        let err = run(&["--gdb", "0.0.0.0:1234"]).unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        let err = run(&["--gdb", "1234"]).unwrap_err().to_string();
        assert!(err.contains("neither host:port"), "{err}");
        assert!(run(&["--gdb-wait"]).is_err());
    }

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_memory("64M"), Ok(64 * MIB));
        assert_eq!(parse_memory("64m"), Ok(64 * MIB));
        assert_eq!(parse_memory("64MiB"), Ok(64 * MIB));
        assert_eq!(parse_memory("1G"), Ok(GIB));
        assert_eq!(parse_memory("2GiB"), Ok(2 * GIB));
        assert_eq!(parse_memory("256"), Ok(256 * MIB));
        assert_eq!(parse_memory("16M"), Ok(16 * MIB));
        assert_eq!(parse_memory("16G"), Ok(16 * GIB));
    }

    #[test]
    fn memory_limits_are_enforced() {
        for bad in ["1", "15M", "17G", "16385", "0", "99999999999999999G"] {
            let err = parse_memory(bad).unwrap_err();
            assert!(err.contains("outside 16 MiB–16 GiB"), "{bad}: {err}");
        }
        for bad in ["", "M", "lots", "1.5G", "-64M"] {
            let err = parse_memory(bad).unwrap_err();
            assert!(err.contains("is not a size"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults() {
        let a = run(&[]).unwrap();
        assert_eq!(a.memory, 64 * MIB);
        assert_eq!(a.cpus, 1);
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert!(a.kernel.is_none() && !a.timings);
        assert_eq!(a.guest_cmdline(), "scenario=demo");
        assert!(a.uses_default_plan());
        assert_eq!(a.timing, TimingMode::Realtime);
        assert_eq!(a.doorbell, DoorbellMode::Exit);
        assert_eq!(
            (a.seed, a.faults.is_none(), a.trace.is_none()),
            (0, true, true)
        );
    }

    #[test]
    fn device_options_parse() {
        let a = run(&[
            "--timing",
            "stepped",
            "--doorbell",
            "ioeventfd",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (a.timing, a.doorbell, a.seed),
            (TimingMode::Stepped, DoorbellMode::Ioeventfd, 7)
        );
        assert!(run(&["--timing", "fast"]).is_err());
        assert!(run(&["--doorbell", "pio"]).is_err());
        assert!(run(&["--device-profile", "dsa"]).is_err());
        assert_eq!(
            run(&["--device-profile", "ioat-cb3"])
                .unwrap()
                .device_profile,
            device_model::TimingConfig::default()
        );
        assert_eq!(
            run(&["--device-profile", "avmm-gen3x8"])
                .unwrap()
                .device_profile
                .clock_hz,
            250_000_000
        );
        assert!(run(&["--seed", "-1"]).is_err());
    }

    #[test]
    fn scenario_and_cmdline_compose() {
        let a = run(&["--scenario", "fault-test", "--cmdline", "quiet"]).unwrap();
        assert_eq!(a.guest_cmdline(), "quiet scenario=fault-test");
        assert!(!a.uses_default_plan());
        let a = run(&["--cmdline", "scenario=dma quiet"]).unwrap();
        assert_eq!(a.guest_cmdline(), "scenario=dma quiet");
        assert!(!a.uses_default_plan());
        let a = run(&["--faults", "plan.toml"]).unwrap();
        assert_eq!(a.guest_cmdline(), "scenario=demo");
        assert!(!a.uses_default_plan());
    }

    #[test]
    fn the_default_plan_is_valid() {
        let plan = device_model::fault::FaultPlan::from_toml(DEFAULT_PLAN).unwrap();
        plan.validate_for(device_model::DeviceConfig::default().channels)
            .unwrap();
        assert_eq!(plan.rules.len(), 1);
    }

    #[test]
    fn bad_values_are_clap_errors() {
        assert!(run(&["--cpus", "0"]).is_err());
        assert!(run(&["--cpus", "17"]).is_err());
        assert!(run(&["--cpus", "2"]).is_ok());
        assert!(run(&["--timeout", "0"]).is_err());
        assert!(run(&["--timeout", "nan"]).is_err());
        assert_eq!(
            run(&["--timeout", "0.5"]).unwrap().timeout,
            Duration::from_millis(500)
        );
        assert!(run(&["--scenario", "a b"]).is_err());
        assert!(run(&["--memory", "1"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--realtime-priority", "0"]).is_err());
        assert!(run(&["--realtime-priority", "100"]).is_err());
        assert_eq!(
            run(&["--realtime-priority", "99"])
                .unwrap()
                .realtime_priority,
            Some(99)
        );
        assert!(run(&["--realtime-spin", "1001"]).is_err());
        assert_eq!(run(&[]).unwrap().realtime_spin, 0);
    }
}
