//! Unit tests of `scenario.rs`: the format's example, defaults, errors.

use super::*;
use device_model::fault::FaultEffect;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Path::new("s/lost.toml"), "lost")
}

const FULL: &str = r#"
description = "The 3rd descriptor's interrupt is lost; the watchdog recovers it."
workload = "copy"
cmdline = "irps=12"
seed = 7
timing = "instant"
doorbell = "exit"
timeout = 60

[[faults.rule]]
name = "lost-irq"
effect = "drop-interrupt"
nth = 3

[expect]
exit = 0
status = "pass"
fields = { watchdog_recoveries = 1, failed = 0 }
faults = { "drop-interrupt" = 1 }
relations = ["watchdog_recoveries == faults.drop-interrupt"]
"#;

#[test]
fn the_format_example_parses() {
    let s = parse(FULL).unwrap();
    assert_eq!(s.name, "lost");
    assert_eq!(
        (s.workload.as_str(), s.cmdline.as_str(), s.seed),
        ("copy", "irps=12", 7)
    );
    assert_eq!(s.timing, Timing::Instant);
    assert_eq!(s.plan.rules.len(), 1);
    assert_eq!(s.plan.rules[0].effect, FaultEffect::DropInterrupt);
    assert_eq!(FaultPlan::from_toml(&s.plan_toml).unwrap(), s.plan);
    assert_eq!(s.expect.fields["watchdog_recoveries"], Value::from(1));
    assert_eq!(s.expect.faults["drop-interrupt"], 1);
    assert_eq!(
        s.expect.relations[0].to_string(),
        "watchdog_recoveries == faults.drop-interrupt"
    );
}

#[test]
fn defaults_apply() {
    let s = parse("workload = \"fill\"\n").unwrap();
    assert_eq!(s.timing, Timing::Instant);
    assert_eq!((s.doorbell.as_str(), s.timeout, s.seed), ("exit", 60.0, 0));
    assert!(s.plan.rules.is_empty() && s.plan_toml.is_empty());
    assert_eq!((s.expect.exit, s.expect.status.as_str()), (0, "pass"));
    let s = parse("name = \"other\"\nworkload = \"fill\"\n[expect]\nexit = 1\n").unwrap();
    assert_eq!(
        (s.name.as_str(), s.expect.status.as_str()),
        ("other", "pass")
    );
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn errors_name_the_file_and_the_field() {
    let e = error("workload = \"copy\"\ntimming = \"instant\"\n");
    assert!(
        e.starts_with("bad scenario 's/lost.toml': field \"timming\": unknown key"),
        "{e}"
    );
    let e = error("workload = \"copy\"\ntiming = \"stepped\"\n");
    assert!(
        e.contains("field \"timing\"") && e.contains("stepped needs"),
        "{e}"
    );
    let e = error("cmdline = \"irps=2\"\n");
    assert!(e.contains("field \"workload\": missing"), "{e}");
    let e = error("workload = \"copy\"\n[[faults.rule]]\nname = \"x\"\neffect = \"hang\"\nprobability = 1.5\n");
    assert!(
        e.contains("field \"faults.rule[1].probability\": rule \"x\": must be between 0 and 1"),
        "{e}"
    );
    let e = error("workload = \"copy\"\n[[faults.rule]]\neffect = \"hang\"\nchannel = 9\n");
    assert!(e.contains("faults.rule[1].channel"), "{e}");
    let e = error("workload = \"copy\"\n[expect]\nrelations = [\"retries = 1\"]\n");
    assert!(
        e.contains("field \"expect.relations[0]\": \"=\" is not one of"),
        "{e}"
    );
    let e = error("workload = \"copy\"\n[expect]\nfaults = { \"drop-irq\" = 1 }\n");
    assert!(
        e.contains("field \"expect.faults.drop-irq\": unknown fault kind"),
        "{e}"
    );
    let e = error("workload = \"copy\"\n[expect]\nfields = { failed = [1] }\n");
    assert!(e.contains("expect.fields.failed"), "{e}");
    let e = error("workload = \"copy\"\nseed = -1\n");
    assert!(e.contains("field \"seed\""), "{e}");
    let e = error("workload = \"copy\"\nseed = ");
    assert!(e.contains("field \"(syntax)\""), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_plan_file_is_read_relative_to_the_scenario() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let here = |text: &str| Scenario::parse(text, &scenarios.join("x.toml"), "x");
    let s = here("workload = \"copy\"\nplan = \"../plans/hang.toml\"\n").unwrap();
    assert_eq!(s.plan.rules.len(), 1);
    assert_eq!(s.plan.rules[0].effect, FaultEffect::Hang);
    assert_eq!(FaultPlan::from_toml(&s.plan_toml).unwrap(), s.plan);
    let e = here("workload = \"copy\"\nplan = \"../plans/nope.toml\"\n").unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
    let e = here("workload = \"copy\"\nplan = 3\n").unwrap_err();
    assert!(e.to_string().contains("path of a plan file"), "{e}");
    let both = "workload = \"copy\"\nplan = \"../plans/hang.toml\"\n\
                [[faults.rule]]\neffect = \"hang\"\nnth = 1\n";
    assert!(here(both).unwrap_err().to_string().contains("not both"));
}

#[test]
fn every_plan_file_a_scenario_names_exists_and_no_scenario_copies_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests");
    let plans: Vec<(String, FaultPlan)> = std::fs::read_dir(root.join("plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.display().to_string(),
                FaultPlan::from_toml(&text).unwrap(),
            )
        })
        .collect();
    for entry in std::fs::read_dir(root.join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("[[faults.rule]]") {
            for (plan_path, plan) in &plans {
                assert!(
                    &s.plan != plan,
                    "{} copies the rules of {plan_path}: write plan = \"../plans/…\"",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn a_field_the_guest_does_not_print_is_a_bad_scenario() {
    let e = error("workload = \"copy\"\n[expect]\nfields = { watchdog_recovery = 1 }\n");
    assert!(e.contains("expect.fields.watchdog_recovery"), "{e}");
    assert!(
        e.contains("not a field of the DMA driver's result line"),
        "{e}"
    );
    let e = error("workload = \"copy\"\n[expect]\nrelations = [\"retry == 1\"]\n");
    assert!(e.contains("\"retry\" is not a field"), "{e}");
    assert!(parse("workload = \"copy\"\n[expect]\nfields = { v_irql = 1 }\n").is_ok());
}

#[test]
fn a_linux_scenario_takes_the_harness_fields_and_no_workload() {
    let text = "guest = \"linux\"\ncmdline = \"dmalab.kunit=\"\n[expect]\n\
                fields = { \"dmatest.failures\" = 0 }\nrelations = [\"errors_reported >= 1\"]\n";
    let s = Scenario::parse(text, Path::new("l.toml"), "l").unwrap();
    assert_eq!(s.guest, Guest::Linux);
    assert_eq!(s.workload, "linux");
    assert_eq!(s.expect.relations[0].field, "errors_reported");
    let e = Scenario::parse(
        "guest = \"linux\"\nworkload = \"copy\"\n",
        Path::new("l.toml"),
        "l",
    )
    .unwrap_err();
    assert_eq!(e.field, "workload");
    let e = Scenario::parse("guest = \"bsd\"\n", Path::new("l.toml"), "l").unwrap_err();
    assert_eq!(e.field, "guest");
    // The dmalab guest's fields are still checked by name.
    let e = Scenario::parse(
        "workload = \"copy\"\n[expect]\nrelations = [\"errors_reported >= 1\"]\n",
        Path::new("d.toml"),
        "d",
    )
    .unwrap_err();
    assert_eq!(e.field, "expect.relations[0]");
    // So are the Linux harness's, against its own list.
    for bad in ["dmatest.failure", "kunit.bogus", "errors_reportd"] {
        let text = format!("guest = \"linux\"\n[expect]\nrelations = [\"{bad} >= 1\"]\n");
        let e = Scenario::parse(&text, Path::new("l.toml"), "l").unwrap_err();
        assert_eq!(e.field, "expect.relations[0]", "{bad}");
    }
}

#[test]
fn a_kernel_file_is_relative_to_the_scenario_and_must_exist() {
    let e = Scenario::parse(
        "workload = \"copy\"\nkernel = \"no-such.elf\"\n",
        Path::new("/tmp/x.toml"),
        "x",
    )
    .unwrap_err();
    assert_eq!(e.field, "kernel");
    assert!(e.problem.contains("/tmp/no-such.elf"), "{}", e.problem);
}
