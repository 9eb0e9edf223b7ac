//! The options of `dmalab campaign [PATHS…]` (docs/campaign.md has the
//! table) and what they fix for the random plans.

use std::path::PathBuf;

use clap::Args;

use crate::{random, scenario};

/// `dmalab campaign [PATHS…]` (docs/campaign.md).
#[derive(Debug, Clone, Args)]
pub struct CampaignArgs {
    /// Scenario files or directories (every *.toml below, sorted);
    /// default tests/scenarios unless --random is given.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,

    /// Scenarios run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,

    /// Also draw N random fault plans (named random-<SEED>-<k>).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub random: u64,

    /// Seed of the random plans.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,

    /// Guest scenario every random plan runs (default: drawn per plan
    /// from copy, fill and stress).
    #[arg(long, value_name = "NAME", value_parser = dmalab_protocol::scenario_name)]
    pub workload: Option<String>,

    /// Guest command line of the random plans' workload (default: drawn
    /// with the workload, cancellation included).
    #[arg(long, value_name = "TEXT")]
    pub random_cmdline: Option<String>,

    /// Device time of the random plans: instant, realtime, or mixed
    /// (drawn per plan and recorded in it, so replay is exact).
    #[arg(long, value_name = "MODE", default_value = "mixed",
          value_parser = ["instant", "realtime", "mixed"])]
    pub random_timing: String,

    /// Run one shard: count:M/N, hash:M/N or M/N (cargo-nextest's
    /// syntax), or cost:M/N (shards of equal estimated time).
    #[arg(long, value_name = "PART")]
    pub partition: Option<crate::partition::Partition>,

    /// Write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Directory for plans, reports and consoles (default: FILE.files/
    /// beside --junit, else $TMPDIR/dmalab-campaign-<pid>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Run a failed scenario again up to N times; a pass on a retry is
    /// reported as flaky (cargo-nextest's --retries).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Keep the files of passing scenarios too.
    #[arg(long)]
    pub keep: bool,

    /// Cap every scenario's timeout at SECONDS (a scenario's own is kept
    /// when shorter): a driver that hangs fails in that time, not in the
    /// scenario's 30 or 60 s.
    #[arg(long, value_name = "SECONDS", value_parser = timeout_seconds)]
    pub timeout: Option<f64>,

    /// Guest kernel every scenario runs on (a dmalab guest built with
    /// your driver, docs/your-driver.md); a scenario's own `kernel` wins.
    #[arg(long, value_name = "GUEST")]
    pub kernel: Option<PathBuf>,

    /// Run only scenario NAME (a file's scenario under PATHS, or
    /// random-<S>-<k>, drawn again) and judge it with the same oracle;
    /// its files are kept.
    #[arg(long, value_name = "NAME")]
    pub replay: Option<String>,
}

/// `--timeout`: seconds, as a scenario file's `timeout` may be.
fn timeout_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!("'{text}': seconds between 0 and 3600")),
    }
}

/// What the campaign's options fix for the random plans.
pub(crate) fn fixed(args: &CampaignArgs) -> random::Fixed {
    random::Fixed {
        workload: args.workload.clone(),
        cmdline: args.random_cmdline.clone(),
        timing: match args.random_timing.as_str() {
            "instant" => Some(scenario::Timing::Instant),
            "realtime" => Some(scenario::Timing::Realtime),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CampaignArgs,
    }

    fn args(words: &[&str]) -> Result<CampaignArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("campaign").chain(words.iter().copied()))
            .map(|c| c.args)
    }

    #[test]
    fn timeout_caps_every_scenario_and_is_in_the_replay_line() {
        let capped = args(&["--random", "3", "--timeout", "5"]).unwrap();
        let all = crate::campaign(&capped).unwrap();
        assert!(all.iter().all(|s| s.timeout == 5.0));
        assert!(crate::replay_line(&capped, &all[0]).contains("--timeout 5 --replay"));
        // A scenario's own shorter timeout is kept.
        let loose = args(&["--random", "3", "--timeout", "100"]).unwrap();
        let all = crate::campaign(&loose).unwrap();
        assert!(all.iter().all(|s| s.timeout == random::TIMEOUT));
        for bad in ["0", "-1", "3601", "soon"] {
            assert!(args(&["--timeout", bad]).is_err(), "{bad}");
        }
    }
}
