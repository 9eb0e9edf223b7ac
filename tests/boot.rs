//! `dmalab run` as a user runs it: exit statuses, console output and error
//! lines, for the built-in guest and for tiny hand-assembled guests that
//! reach the corners the real guest never does (timeout, triple fault,
//! clamped exit values, string port I/O, PCI conf1).
//!
//! Every child has a hard time limit. KVM tests start with
//! `common::kvm_usable`, which skips with one loud line when /dev/kvm is
//! unusable (or fails under `DMALAB_REQUIRE_KVM=1`).

mod common;

use std::time::Duration;

use common::{kvm_usable, run_dmalab, tiny_elf, Scratch};

const LIMIT: Duration = Duration::from_secs(60);
const RESULT_PASS: &str = r#"DMALAB-RESULT {"scenario":"hello","status":"pass"}"#;

#[test]
fn hello_passes_and_exits_0() {
    if !kvm_usable("hello_passes_and_exits_0") {
        return;
    }
    let run = run_dmalab(&["run", "--scenario", "hello"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    assert!(run.stdout.contains("hello from user mode"), "{run}");
    assert!(run.stdout.contains(RESULT_PASS), "{run}");
}

/// The README's main job: `dmalab run` with no arguments runs the `demo`
/// scenario with the built-in plan (the 3rd descriptor's interrupt dropped)
/// and the driver's watchdog recovers it.
#[test]
fn default_run_is_the_demo_surviving_one_fault() {
    if !kvm_usable("default_run_is_the_demo_surviving_one_fault") {
        return;
    }
    let run = run_dmalab(&["run"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    assert!(
        run.stdout
            .contains(r#"DMALAB-RESULT {"scenario":"demo","status":"pass""#),
        "{run}"
    );
    assert!(run.stdout.contains(r#""watchdog_recoveries":1,"#), "{run}");
    assert!(run.stdout.contains(r#""violations":0}"#), "{run}");
    assert!(
        run.stderr.contains("faults applied: drop-interrupt 1"),
        "{run}"
    );
}

#[test]
fn fault_test_reports_the_exception_and_exits_3() {
    if !kvm_usable("fault_test_reports_the_exception_and_exits_3") {
        return;
    }
    let run = run_dmalab(&["run", "--scenario", "fault-test"], LIMIT);
    assert_eq!(run.code(), 3, "{run}");
    assert!(run.stdout.contains("EXCEPTION #DE vector=0"), "{run}");
    // The VMM names the RIP from the guest ELF's symbols.
    assert!(
        run.stderr.contains("dmalab: guest exception at rip 0x")
            && run.stderr.contains(" in scenario_fault_test+0x"),
        "{run}"
    );
}

#[test]
fn two_vcpus_run_hello() {
    if !kvm_usable("two_vcpus_run_hello") {
        return;
    }
    let run = run_dmalab(&["run", "--cpus", "2", "--scenario", "hello"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    assert!(run.stdout.contains(RESULT_PASS), "{run}");
}

#[test]
fn timings_are_printed_in_order() {
    if !kvm_usable("timings_are_printed_in_order") {
        return;
    }
    let run = run_dmalab(&["run", "--timings", "--scenario", "hello"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    let stamp = |name: &str| -> u64 {
        let prefix = format!("timings: {name} ");
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {name} stamp\n{run}"));
        line[prefix.len()..]
            .trim_end_matches(" µs")
            .parse()
            .unwrap_or_else(|_| panic!("bad line {line:?}"))
    };
    let (ready, entry, guest_ready, exit) = (
        stamp("vm-ready"),
        stamp("guest-entry"),
        stamp("guest-ready"),
        stamp("exit"),
    );
    assert!(
        ready <= entry && entry <= guest_ready && guest_ready <= exit,
        "{run}"
    );
    assert!(run.stderr.contains("timings: exits-before-ready "), "{run}");
}

// ---- user errors: no KVM needed, caught before any KVM work ----

#[test]
fn missing_kernel_is_a_usage_error() {
    let run = run_dmalab(&["run", "--kernel", "/nonexistent/dmalab.elf"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "one line\n{run}");
    assert!(
        run.stderr.starts_with(
            "dmalab: cannot read kernel '/nonexistent/dmalab.elf' (give --kernel the path"
        ),
        "{run}"
    );
}

#[test]
fn too_little_memory_is_a_usage_error() {
    let run = run_dmalab(&["run", "--memory", "1"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert!(run.stderr.contains("'1' is outside 16 MiB–16 GiB"), "{run}");
}

#[test]
fn non_elf_kernel_is_a_usage_error() {
    let scratch = Scratch::new("non-elf");
    let script = scratch.file("kernel.sh", b"#!/bin/sh\necho not a kernel\n");
    let run = run_dmalab(&["run", "--kernel", script.to_str().unwrap()], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "one line\n{run}");
    assert!(run.stderr.contains("is not a dmalab guest kernel"), "{run}");
    assert!(run.stderr.contains("not an ELF file"), "{run}");
}

#[test]
fn bad_arguments_exit_64_and_help_exits_0() {
    let run = run_dmalab(&["run", "--no-such-flag"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    let run = run_dmalab(&["run", "--cpus", "0"], LIMIT);
    assert_eq!(run.code(), 64, "{run}");
    let run = run_dmalab(&[], LIMIT);
    assert_eq!(run.code(), 64, "no subcommand\n{run}");
    let run = run_dmalab(&["run", "--help"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    assert!(run.stdout.contains("--scenario"), "{run}");
    let run = run_dmalab(&["--version"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
}

// ---- hand-assembled guests ----

/// Boots `code` (at 1 MiB, entered in long mode) with extra `args`.
fn boot_code(test: &str, code: &[u8], args: &[&str]) -> common::Run {
    let scratch = Scratch::new(test);
    let kernel = scratch.file("guest.elf", &tiny_elf(code));
    let mut argv = vec!["run", "--kernel", kernel.to_str().unwrap()];
    argv.extend_from_slice(args);
    run_dmalab(&argv, LIMIT)
}

#[test]
fn spinning_guest_times_out_with_a_register_dump() {
    if !kvm_usable("spinning_guest_times_out_with_a_register_dump") {
        return;
    }
    // jmp .
    let run = boot_code("timeout", &[0xeb, 0xfe], &["--timeout", "1"]);
    assert_eq!(run.code(), 73, "{run}");
    assert!(run.stderr.contains("timeout"), "{run}");
    assert!(run.stderr.contains("RIP 0x0000000000100000"), "{run}");
    assert!(run.stderr.contains("CR3 0x0000000000010000"), "{run}");
    assert!(run.stderr.contains("bytes at RIP: eb fe"), "{run}");
    assert!(run.elapsed < Duration::from_secs(10), "{run}");
}

#[test]
fn two_spinning_vcpus_both_stop_on_timeout() {
    if !kvm_usable("two_spinning_vcpus_both_stop_on_timeout") {
        return;
    }
    let run = boot_code(
        "timeout2",
        &[0xeb, 0xfe],
        &["--timeout", "1", "--cpus", "2"],
    );
    assert_eq!(run.code(), 73, "{run}");
    assert!(run.stderr.contains("vCPU 0 registers:"), "{run}");
    assert!(run.stderr.contains("vCPU 1 registers:"), "{run}");
    // Each vCPU has its own boot stack and index in RSI.
    assert!(run.stderr.contains("RSP 0x000000000007c000"), "{run}");
}

#[test]
fn triple_fault_exits_71_with_a_register_dump() {
    if !kvm_usable("triple_fault_exits_71_with_a_register_dump") {
        return;
    }
    // ud2 with no IDT: #UD -> #GP -> #DF -> shutdown.
    let run = boot_code("triple", &[0x0f, 0x0b], &[]);
    assert_eq!(run.code(), 71, "{run}");
    assert!(run.stderr.contains("triple fault"), "{run}");
    assert!(run.stderr.contains("RIP 0x0000000000100000"), "{run}");
    assert!(run.stderr.contains("EFER 0x500"), "{run}");
}

#[test]
fn guest_exit_values_above_63_become_63() {
    if !kvm_usable("guest_exit_values_above_63_become_63") {
        return;
    }
    // mov al, 200; out 0xf4, al; jmp .
    let run = boot_code("exit63", &[0xb0, 200, 0xe6, 0xf4, 0xeb, 0xfe], &[]);
    assert_eq!(run.code(), 63, "{run}");
}

#[test]
fn string_port_output_reaches_stdout() {
    if !kvm_usable("string_port_output_reaches_stdout") {
        return;
    }
    let msg = b"rep outsb to COM1\nand a last line without newline";
    let mut code = vec![0x48, 0x8d, 0x35, 17, 0, 0, 0]; // lea rsi, [rip + 17]
    code.push(0xb9); // mov ecx, len
    code.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_le_bytes());
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03]); // mov dx, 0x3f8
    code.extend_from_slice(&[0xf3, 0x6e]); // rep outsb
    code.extend_from_slice(&[0xb0, 0x05, 0xe6, 0xf4]); // mov al, 5; out 0xf4, al
    code.extend_from_slice(&[0xeb, 0xfe]); // jmp .
    assert_eq!(code.len(), 24);
    code.extend_from_slice(msg);
    let run = boot_code("outsb", &code, &[]);
    assert_eq!(run.code(), 5, "{run}");
    assert_eq!(run.stdout.as_bytes(), msg, "{run}");
}

#[test]
fn guest_sees_the_host_bridge_on_conf1() {
    if !kvm_usable("guest_sees_the_host_bridge_on_conf1") {
        return;
    }
    let code = [
        0xb8, 0x00, 0x00, 0x00, 0x80, // mov eax, 0x80000000 (00:00.0, reg 0)
        0x66, 0xba, 0xf8, 0x0c, // mov dx, 0xcf8
        0xef, // out dx, eax
        0x66, 0xba, 0xfc, 0x0c, // mov dx, 0xcfc
        0x66, 0xed, // in ax, dx
        0x66, 0x3d, 0x86, 0x80, // cmp ax, 0x8086
        0x75, 0x04, // jne fail
        0xb0, 0x07, 0xe6, 0xf4, // mov al, 7; out 0xf4, al
        0xb0, 0x09, 0xe6, 0xf4, // fail: mov al, 9; out 0xf4, al
    ];
    let run = boot_code("conf1", &code, &[]);
    assert_eq!(run.code(), 7, "vendor 0x8086 expected\n{run}");
}

#[test]
fn unsupported_instruction_ends_with_a_dump() {
    if !kvm_usable("unsupported_instruction_ends_with_a_dump") {
        return;
    }
    // pxor xmm1, xmm1 at CPL0 with CR4.OSFXSR clear: KVM's emulator on a
    // software-virtualised host cannot run it (72, with the bytes); on
    // hardware KVM it raises #UD, and with no IDT that is a triple fault.
    let run = boot_code("sse", &[0x66, 0x0f, 0xef, 0xc9, 0xeb, 0xfe], &[]);
    match run.code() {
        72 => {
            assert!(run.stderr.contains("KVM internal error"), "{run}");
            assert!(run.stderr.contains("66 0f ef c9"), "{run}");
        }
        71 => assert!(run.stderr.contains("triple fault"), "{run}"),
        _ => panic!("expected 71 or 72\n{run}"),
    }
    assert!(run.stderr.contains("RIP 0x0000000000100000"), "{run}");
}

#[test]
fn guest_finds_boot_info_and_command_line_at_rdi() {
    if !kvm_usable("guest_finds_boot_info_and_command_line_at_rdi") {
        return;
    }
    let mut code = vec![0x48, 0xb8]; // movabs rax, DMALAB_BOOT_MAGIC
    code.extend_from_slice(b"DMALBOOT");
    code.extend_from_slice(&[0x48, 0x39, 0x07]); // cmp [rdi], rax
    code.extend_from_slice(&[0x75, 0x1f]); // jne fail
    code.extend_from_slice(&[0x48, 0x8b, 0x5f, 0x10]); // mov rbx, [rdi + 16] (cmdline_addr)
    code.extend_from_slice(&[0x48, 0x8b, 0x03]); // mov rax, [rbx]
    code.extend_from_slice(&[0x48, 0xb9]); // movabs rcx, "abcdefgh"
    code.extend_from_slice(b"abcdefgh");
    code.extend_from_slice(&[0x48, 0x39, 0xc8]); // cmp rax, rcx
    code.extend_from_slice(&[0x75, 0x09]); // jne fail
    code.extend_from_slice(&[0x8b, 0x47, 0x1c]); // mov eax, [rdi + 28] (cpu_count)
    code.extend_from_slice(&[0x04, 0x0a]); // add al, 10
    code.extend_from_slice(&[0xe6, 0xf4, 0xeb, 0xfe]); // out 0xf4, al; jmp .
    assert_eq!(code.len(), 46);
    code.extend_from_slice(&[0xb0, 0x09, 0xe6, 0xf4, 0xeb, 0xfe]); // fail: exit 9
    let run = boot_code("bootinfo", &code, &["--cpus", "2", "--cmdline", "abcdefgh"]);
    assert_eq!(
        run.code(),
        12,
        "magic, command line and cpu_count 2 expected\n{run}"
    );
}

#[test]
fn unmodelled_ports_are_logged_and_ignored() {
    if !kvm_usable("unmodelled_ports_are_logged_and_ignored") {
        return;
    }
    let code = [
        0xe6, 0x80, // out 0x80, al
        0xe4, 0x81, // in al, 0x81 (all ones)
        0x3c, 0xff, // cmp al, 0xff
        0x75, 0x04, // jne fail
        0xb0, 0x06, 0xe6, 0xf4, // mov al, 6; out 0xf4, al
        0xb0, 0x09, 0xe6, 0xf4, // fail: mov al, 9; out 0xf4, al
    ];
    let run = boot_code("unmodelled", &code, &[]);
    assert_eq!(run.code(), 6, "{run}");
    assert!(run.stderr.contains("unmodelled port 0x80"), "{run}");
}

#[test]
fn hello_runs_with_ram_above_4_gib() {
    if !kvm_usable("hello_runs_with_ram_above_4_gib") {
        return;
    }
    let run = run_dmalab(&["run", "--memory", "5G", "--scenario", "hello"], LIMIT);
    assert_eq!(run.code(), 0, "{run}");
    assert!(run.stdout.contains(RESULT_PASS), "{run}");
}

#[test]
fn console_line_shows_while_the_guest_idles() {
    if !kvm_usable("console_line_shows_while_the_guest_idles") {
        return;
    }
    let msg = b"printed, now idle\n";
    let mut code = vec![0x48, 0x8d, 0x35, 15, 0, 0, 0]; // lea rsi, [rip + 15]
    code.push(0xb9); // mov ecx, len
    code.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_le_bytes());
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03]); // mov dx, 0x3f8
    code.extend_from_slice(&[0xf3, 0x6e]); // rep outsb
                                           // cli; hlt; jmp back to cli: halted in the kernel, no more exits.
    code.extend_from_slice(&[0xfa, 0xf4, 0xeb, 0xfc]);
    assert_eq!(code.len(), 22);
    code.extend_from_slice(msg);
    let scratch = Scratch::new("idle-console");
    let kernel = scratch.file("guest.elf", &tiny_elf(&code));
    let mut live = common::Live::spawn(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--timeout",
        "20",
    ]);
    let waited = live.wait_for_line("printed, now idle", Duration::from_secs(10));
    assert!(
        waited.is_ok(),
        "line not shown while the guest idles: {waited:?}"
    );
    assert!(live.running(), "the guest should still be halted");
}
