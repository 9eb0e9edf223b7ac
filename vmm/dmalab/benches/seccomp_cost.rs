//! What a seccomp filter adds to a system call (`docs/hardening.md`).
//!
//! On a fresh thread, times a batch of system calls without a filter, then
//! installs the vCPU thread's filter (`vmm::seccomp::program`) and times
//! the same batch again. The calls are those of a vCPU's hot path, against
//! fds where they do no work: `ioctl(KVM_RUN)` on an eventfd (the filter
//! passes it, the kernel answers ENOTTY: the filter's longest path, past
//! every syscall number to the ioctl request list), `write` of 8 bytes to
//! an eventfd (an irqfd message), and `gettid`. Alternating rounds; the
//! median ns per call of each is printed, with the difference.
//!
//!     cargo bench -p dmalab --bench seccomp_cost
//!     cargo bench -p dmalab --bench seccomp_cost -- --calls 200000 --rounds 9

use std::time::Instant;

use vmm::seccomp::{program, Thread};

const KVM_RUN: libc::c_ulong = 0xae80;

fn time_calls(calls: u32, what: &str, fd: libc::c_int) -> f64 {
    let one = 1u64.to_ne_bytes();
    let start = Instant::now();
    for _ in 0..calls {
        // SAFETY: each call is given valid arguments or none; the fd is an
        // eventfd this benchmark owns.
        unsafe {
            match what {
                "ioctl(KVM_RUN)" => {
                    libc::ioctl(fd, KVM_RUN, 0);
                }
                "write(eventfd)" => {
                    libc::write(fd, one.as_ptr().cast(), one.len());
                }
                _ => {
                    libc::syscall(libc::SYS_gettid);
                }
            }
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut calls = 100_000u32;
    let mut rounds = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--calls" => calls = args.next().and_then(|v| v.parse().ok()).unwrap_or(calls),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            _ => {}
        }
    }
    let prog = program(Thread::Vcpu).expect("the vCPU filter compiles");
    println!(
        "seccomp cost: vCPU filter of {} BPF instructions, {calls} calls × {rounds} rounds",
        prog.len()
    );
    let kinds = ["ioctl(KVM_RUN)", "write(eventfd)", "gettid"];
    let mut plain: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut filtered: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for _ in 0..rounds {
        let prog = prog.clone();
        let (p, f) = std::thread::spawn(move || {
            // SAFETY: a non-blocking eventfd; closed at the end.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
            assert!(fd >= 0);
            let p: Vec<f64> = kinds.iter().map(|k| time_calls(calls, k, fd)).collect();
            seccompiler::apply_filter(&prog).expect("install the filter");
            let f: Vec<f64> = kinds.iter().map(|k| time_calls(calls, k, fd)).collect();
            // SAFETY: our own fd.
            unsafe { libc::close(fd) };
            (p, f)
        })
        .join()
        .expect("the measuring thread");
        for i in 0..kinds.len() {
            plain[i].push(p[i]);
            filtered[i].push(f[i]);
        }
    }
    println!(
        "{:<16} {:>10} {:>10} {:>8}",
        "call", "no filter", "filter", "added"
    );
    for (i, k) in kinds.iter().enumerate() {
        let (p, f) = (median(plain[i].clone()), median(filtered[i].clone()));
        println!("{k:<16} {p:>8.0}ns {f:>8.0}ns {:>6.0}ns", f - p);
    }
}
