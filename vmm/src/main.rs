//! `dmalab`: the command-line entry point. Parsing and exit statuses only;
//! `vmm::runner` does the work.

use std::time::Instant;

use clap::Parser;
use vmm::cli::{Cli, Command};
use vmm::error::{one_line, status};

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
        Command::Run(args) => match vmm::runner::run(&args, start) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("dmalab: {}", one_line(&e));
                e.status()
            }
        },
        Command::Campaign(args) => vmm::campaign::run(&args),
    }
}
