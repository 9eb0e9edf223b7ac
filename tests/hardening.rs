//! Least privilege, seen from outside the process (`docs/hardening.md`):
//! every thread of a running `dmalab` is under a seccomp filter (and none
//! with `--no-seccomp`), a run with the filters on ends cleanly on SIGTERM
//! with its report written, and an ordinary user with access to /dev/kvm
//! runs a guest. Which calls each filter allows, and that a forbidden one
//! is refused with one clear line and exit 70, is unit-tested in
//! `vmm/src/seccomp/`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{kvm_usable, wait_until, Scratch};

/// `(thread name, Seccomp mode)` of every task of `pid`.
fn seccomp_modes(pid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let mode = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u32::MAX);
        out.push((name.trim().to_string(), mode));
    }
    out.sort();
    out
}

/// Starts a stepped run that waits for a client (so it stays up) with a
/// control socket and a gdb stub: main, vCPU, device and gdb threads.
fn spawn_waiting(scratch: &Scratch, extra: &[&str]) -> std::process::Child {
    let sock = scratch.path().join("ctl.sock");
    let gdb = scratch.path().join("gdb.sock");
    let report = scratch.path().join("report.json");
    let mut args = vec![
        "run".to_string(),
        "--scenario".into(),
        "dma-smoke".into(),
        "--timing".into(),
        "stepped".into(),
        "--timeout".into(),
        "30".into(),
        "--control".into(),
        sock.display().to_string(),
        "--gdb".into(),
        gdb.display().to_string(),
        "--report".into(),
        report.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(common::dmalab())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmalab")
}

/// Waits until the four kinds of thread exist and every task has settled
/// on `want` (the main thread installs its filter last).
fn wait_for_modes(pid: u32, want: u32) -> Vec<(String, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let modes = seccomp_modes(pid);
        let named = |n: &str| modes.iter().any(|(name, _)| name == n);
        let all = ["dmalab", "vcpu0", "dma-device", "gdb"]
            .iter()
            .all(|n| named(n));
        if all && modes.iter().all(|(_, m)| *m == want) || Instant::now() > deadline {
            return modes;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &mut std::process::Child) -> (i32, String) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_until(child, Duration::from_secs(10)).expect("dmalab ends on SIGTERM");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (status.code().unwrap_or(-1), err)
}

#[test]
fn every_thread_runs_under_its_seccomp_filter_and_a_signal_still_ends_the_run_cleanly() {
    if !kvm_usable("every_thread_runs_under_its_seccomp_filter") {
        return;
    }
    let scratch = Scratch::new("filters-on");
    let mut child = spawn_waiting(&scratch, &[]);
    let modes = wait_for_modes(child.id(), 2);
    let (code, err) = sigterm(&mut child);
    for name in ["dmalab", "vcpu0", "dma-device", "gdb"] {
        assert!(
            modes.iter().any(|(n, m)| n == name && *m == 2),
            "{name} not filtered: {modes:?}\n{err}"
        );
    }
    assert!(modes.iter().all(|(_, m)| *m == 2), "{modes:?}");
    // The main thread, filtered, still writes the report and the summary.
    assert_eq!(code, 143, "{err}");
    assert!(err.contains("dmalab: SIGTERM: stopped the VM"), "{err}");
    assert!(err.contains("dmalab: device:"), "{err}");
    assert!(!err.contains("dmalab: seccomp:"), "{err}");
    assert!(scratch.path().join("report.json").exists(), "{err}");
}

#[test]
fn no_seccomp_leaves_every_thread_unfiltered() {
    if !kvm_usable("no_seccomp_leaves_every_thread_unfiltered") {
        return;
    }
    let scratch = Scratch::new("filters-off");
    let mut child = spawn_waiting(&scratch, &["--no-seccomp"]);
    let modes = wait_for_modes(child.id(), 0);
    let (code, err) = sigterm(&mut child);
    assert!(modes.len() >= 4, "{modes:?}");
    assert!(modes.iter().all(|(_, m)| *m == 0), "{modes:?}");
    assert_eq!(code, 143, "{err}");
}

/// Root (as CI is) is needed only to set the test up: in a private mount
/// namespace a copy of /dev/kvm's node owned by `nobody` is bound over
/// /dev/kvm, and `setpriv` drops to `nobody` with no groups and no
/// capabilities before `dmalab` starts. The host's /dev/kvm is untouched.
#[test]
fn an_ordinary_user_with_access_to_dev_kvm_runs_a_guest() {
    if !kvm_usable("an_ordinary_user_with_access_to_dev_kvm_runs_a_guest") {
        return;
    }
    // SAFETY: geteuid takes no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["unshare", "setpriv", "mknod", "mount"]
        .iter()
        .all(|t| Path::new("/usr/bin").join(t).exists() || Path::new("/bin").join(t).exists());
    if !root || !tools {
        eprintln!(
            "SKIPPED: an_ordinary_user_with_access_to_dev_kvm_runs_a_guest needs root (to \
             prepare the user's /dev/kvm) and unshare, setpriv, mknod, mount"
        );
        return;
    }
    let scratch = Scratch::new("non-root");
    // The binary and the directory must be reachable by `nobody`.
    let bin = scratch.path().join("dmalab");
    std::fs::copy(common::dmalab(), &bin).expect("copy dmalab");
    let node = scratch.path().join("kvm");
    let script = format!(
        "set -e; chmod 755 {dir} {bin}; mknod {node} c 10 232; chown nobody:nogroup {node}; \
         chmod 660 {node}; mount --bind {node} /dev/kvm; cd {dir}; \
         exec setpriv --reuid nobody --regid nogroup --clear-groups --inh-caps=-all \
         {bin} run --scenario dma-smoke --timing instant --timeout 20",
        dir = scratch.path().display(),
        bin = bin.display(),
        node = node.display(),
    );
    let run = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#""scenario":"dma-smoke","status":"pass""#),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("dmalab: seccomp:"), "{stderr}");
}
