//! [campaign] integration tests: `dmalab campaign` end to end, and the
//! determinism of random plans (the same plan and seed give byte-identical
//! fault logs and device traces, in instant and in stepped mode).

mod common;

use std::time::Duration;

use common::{run_dmalab, Scratch};

const LIMIT: Duration = Duration::from_secs(60);

fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn a_bad_scenario_file_is_one_line_and_exit_64_before_anything_runs() {
    let scratch = Scratch::new("campaign-bad");
    scratch.file("good.toml", b"workload = \"copy\"\ncmdline = \"irps=2\"\n");
    let bad = scratch.file(
        "bad.toml",
        b"workload = \"copy\"\n[[faults.rule]]\neffect = \"hang\"\nnth = 0\n",
    );
    let out = scratch.path().join("out");
    let run = run_dmalab(&["campaign", s(scratch.path()), "--out", s(&out)], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(
        run.stderr
            .contains(&format!("bad scenario '{}'", bad.display()))
            && run.stderr.contains("field \"faults.rule[1].nth\""),
        "{run}"
    );
    assert!(!run.stdout.contains("campaign:"), "nothing ran\n{run}");
    assert!(!out.exists(), "nothing ran\n{run}");
    let run = run_dmalab(&["campaign", "/no/such/scenarios"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(
        run.stderr.contains("cannot read '/no/such/scenarios'"),
        "{run}"
    );
}
