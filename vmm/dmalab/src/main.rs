//! `dmalab`: the command. `dmalab run` is the VMM (the `vmm` crate),
//! `dmalab campaign` the fault campaign (the `dmalab-campaign` crate, which
//! runs `dmalab run` as child processes), `dmalab ctl` a client of a
//! running VM's control socket (`ctl.rs`). Parsing and exit statuses only.

mod ctl;

use std::time::Instant;

use clap::{Parser, Subcommand};
use dmalab_campaign::merge::MergeArgs;
use dmalab_campaign::CampaignArgs;
use dmalab_protocol::{one_line, status};
use vmm::cli::RunArgs;

#[derive(Debug, Parser)]
#[command(
    name = "dmalab",
    version,
    about = "A small KVM VMM whose one device is a PCI DMA controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot a guest kernel (by default the built-in dmalab guest).
    Run(RunArgs),
    /// Run fault-injection scenarios in parallel VMs and check each with
    /// the oracle (docs/campaign.md).
    Campaign(CampaignCommand),
    /// Send requests to a running VM's control socket (docs/dma-device.md).
    Ctl(ctl::CtlArgs),
}

/// `dmalab campaign [PATHS…]`, or `dmalab campaign merge OUT SHARD…`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct CampaignCommand {
    #[command(subcommand)]
    action: Option<CampaignAction>,
    #[command(flatten)]
    args: CampaignArgs,
}

#[derive(Debug, Subcommand)]
enum CampaignAction {
    /// Merge the JUnit files of a sharded campaign's shards into one
    /// report (docs/ci-sharding.md).
    Merge(MergeArgs),
}

fn main() {
    // First thing: `--timings` counts from here.
    let start = Instant::now();
    std::process::exit(i32::from(dmalab(start)));
}

fn dmalab(start: Instant) -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() { status::USAGE } else { 0 };
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    match cli.command {
        Command::Run(args) => match vmm::run::run(&args, start) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("dmalab: {}", one_line(&e));
                e.status()
            }
        },
        Command::Campaign(CampaignCommand {
            action: Some(CampaignAction::Merge(merge)),
            ..
        }) => dmalab_campaign::merge::run(&merge),
        Command::Campaign(CampaignCommand { args, .. }) => {
            dmalab_campaign::run(&args, vmm::guest_image::BUILTIN_GUEST)
        }
        Command::Ctl(args) => ctl::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn campaign_options_parse() {
        let cli = Cli::try_parse_from([
            "dmalab",
            "campaign",
            "a.toml",
            "dir",
            "--random",
            "200",
            "--seed",
            "9",
            "-j",
            "3",
            "--partition",
            "hash:2/4",
            "--junit",
            "j.xml",
        ])
        .unwrap();
        let Command::Campaign(CampaignCommand {
            action: None,
            args: a,
        }) = cli.command
        else {
            panic!("not a campaign")
        };
        assert_eq!(a.paths, [PathBuf::from("a.toml"), PathBuf::from("dir")]);
        assert_eq!((a.random, a.seed, a.jobs), (200, 9, Some(3)));
        assert_eq!(a.partition.unwrap().shard, 2);
        assert_eq!((a.workload, a.random_cmdline), (None, None));
        assert_eq!(a.random_timing, "mixed");
        for bad in [
            &["--partition", "3/2"][..],
            &["--partition", "x"],
            &["-j", "0"],
            &["--random", "-1"],
            &["--random-timing", "stepped"],
        ] {
            let argv = ["dmalab", "campaign"].iter().chain(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn campaign_merge_parses_as_a_subcommand() {
        let cli = Cli::try_parse_from(["dmalab", "campaign", "merge", "all.xml", "1.xml", "2.xml"])
            .unwrap();
        let Command::Campaign(CampaignCommand {
            action: Some(CampaignAction::Merge(m)),
            ..
        }) = cli.command
        else {
            panic!("not a merge")
        };
        assert_eq!(m.out, PathBuf::from("all.xml"));
        assert_eq!(m.shards, [PathBuf::from("1.xml"), PathBuf::from("2.xml")]);
        // No shard: refused. After a campaign option clap takes `merge`
        // for a PATH, which the campaign refuses (MergeNotFirst, one line).
        assert!(Cli::try_parse_from(["dmalab", "campaign", "merge", "all.xml"]).is_err());
        let cli = Cli::try_parse_from(["dmalab", "campaign", "-j", "2", "merge", "a.xml"]).unwrap();
        let Command::Campaign(CampaignCommand { action: None, args }) = cli.command else {
            panic!("not a campaign")
        };
        assert_eq!(args.paths, [PathBuf::from("merge"), PathBuf::from("a.xml")]);
    }

    #[test]
    fn run_options_parse_under_run() {
        let cli = Cli::try_parse_from(["dmalab", "run", "--cpus", "2"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not a run")
        };
        assert_eq!(a.cpus, 2);
        assert!(Cli::try_parse_from(["dmalab", "fly"]).is_err());
        let cli =
            Cli::try_parse_from(["dmalab", "ctl", "--socket", "s.sock", "step", "5"]).unwrap();
        let Command::Ctl(a) = cli.command else {
            panic!("not ctl")
        };
        assert_eq!(a.words, ["step", "5"]);
        assert!(Cli::try_parse_from(["dmalab", "ctl", "--socket", "s.sock"]).is_err());
        assert!(Cli::try_parse_from(["dmalab", "ctl", "s.sock"]).is_err());
    }
}
