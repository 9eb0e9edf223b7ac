//! Helpers for tests that run `dmalab` as a child process (Firecracker's
//! `Serial` helper, Cloud Hypervisor's `wait_until`): every run has a hard
//! timeout after which the child is killed, and KVM tests skip loudly when
//! /dev/kvm cannot be used, unless `DMALAB_REQUIRE_KVM=1` or `CI=true`.

#![allow(dead_code)] // each test binary uses a different subset

pub mod control;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use dmalab_protocol::control::{Answer, Line, Request};

/// The `dmalab` binary cargo built for these tests.
pub fn dmalab() -> &'static str {
    env!("CARGO_BIN_EXE_dmalab")
}

/// Whether KVM tests may run: the one skip rule (a loud `SKIPPED:` line,
/// or a failure under `DMALAB_REQUIRE_KVM=1` or `CI=true`).
pub use dmalab_protocol::kvm_skip::kvm_usable;

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code; panics (with the output) if killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("dmalab died by a signal\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `dmalab` with `args`, killing it after `limit`.
pub fn run_dmalab(args: &[&str], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(dmalab())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmalab");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let Some(status) = wait_until(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "dmalab {args:?} still running after {limit:?}: killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default()
        );
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// Polls `child` until it exits or `limit` passes.
pub fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dmalab-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal ELF64 x86-64 executable: one RX segment at 1 MiB holding
/// `code`; entry at its start. For guests the tests hand-assemble.
pub fn tiny_elf(code: &[u8]) -> Vec<u8> {
    const PADDR: u64 = 0x10_0000;
    const HEADERS: u64 = 64 + 56;
    let mut image = Vec::new();
    image.extend_from_slice(b"\x7fELF");
    image.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, little-endian, version, SysV
    image.extend_from_slice(&[0; 8]);
    image.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    image.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    image.extend_from_slice(&1u32.to_le_bytes());
    image.extend_from_slice(&PADDR.to_le_bytes()); // e_entry
    image.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    image.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    image.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 1, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        image.extend_from_slice(&half.to_le_bytes());
    }
    assert_eq!(image.len(), 64);
    image.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    image.extend_from_slice(&5u32.to_le_bytes()); // R + X
    image.extend_from_slice(&HEADERS.to_le_bytes()); // p_offset
    image.extend_from_slice(&PADDR.to_le_bytes()); // p_vaddr
    image.extend_from_slice(&PADDR.to_le_bytes()); // p_paddr
    image.extend_from_slice(&(code.len() as u64).to_le_bytes()); // p_filesz
    image.extend_from_slice(&(code.len() as u64).to_le_bytes()); // p_memsz
    image.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    image.extend_from_slice(code);
    image
}

/// A running `dmalab` whose stdout lines arrive on a channel, killed when
/// dropped (Firecracker's `Serial` helper, in miniature).
pub struct Live {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Live {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(dmalab())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dmalab");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits up to `limit` for a stdout line containing `needle`; returns
    /// how long it took, or the lines seen so far.
    pub fn wait_for_line(&self, needle: &str, limit: Duration) -> Result<Duration, Vec<String>> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = limit.checked_sub(start.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(start.elapsed()),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that drives a stepped run: connects to the control socket at
/// `path` (waiting up to `limit` for dmalab to create it), sends `request`
/// until dmalab closes the socket, and returns how many replies it read
/// and the first one. An idle device gets a short pause, so the guest runs.
pub fn stepper(
    path: PathBuf,
    request: Request,
    limit: Duration,
) -> thread::JoinHandle<(u64, Option<Line>)> {
    thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let stream = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("control socket {}: {e}", path.display()),
            }
        };
        let mut reader = BufReader::new(stream.try_clone().expect("a socket clone"));
        let mut writer = stream;
        let (mut n, mut first) = (0u64, None);
        loop {
            if writeln!(writer, "{}", request.to_line(n)).is_err() {
                break;
            }
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            n += 1;
            let reply = Line::parse(&line).unwrap_or_else(|e| panic!("{e}"));
            // An error is a step with nothing to step to: the device is idle.
            let idle = matches!(
                reply,
                Line::Error { .. }
                    | Line::Ok {
                        ok: Answer::Time { next: None, .. },
                        ..
                    }
            );
            first.get_or_insert(reply);
            if idle {
                thread::sleep(Duration::from_micros(200));
            }
        }
        (n, first)
    })
}
