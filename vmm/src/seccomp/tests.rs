//! The filters compile, and a forbidden call is refused with one clear
//! line and exit 70 while allowed ones work. Refusals are tried in a
//! forked child (a filter cannot be removed, and SIGSYS ends the process),
//! which installs the handler and a filter directly: `prepare` would turn
//! filters on for every thread this test process starts afterwards.

use super::*;

#[test]
fn every_thread_filter_compiles() {
    for thread in THREADS {
        let prog = program(thread).unwrap();
        // At least one check per allowed call, plus the ioctl requests.
        assert!(prog.len() > syscalls(thread).len(), "{thread:?}");
    }
}

#[test]
fn the_refusal_message_names_the_thread_and_the_call() {
    let mut buf = [0u8; 320];
    let len = message(&mut buf, "vcpu", 41);
    let line = std::str::from_utf8(&buf[..len]).unwrap();
    assert!(
        line.starts_with("dmalab: seccomp: the vcpu thread made system call 41 (socket), which its filter forbids; stopped"),
        "{line}"
    );
    assert!(line.contains("--no-seccomp"), "{line}");
    assert!(line.ends_with('\n') && line.lines().count() == 1, "{line}");
    let len = message(&mut buf, "gdb", 999);
    let line = std::str::from_utf8(&buf[..len]).unwrap();
    assert!(line.contains("system call 999, which"), "{line}");
}

/// Forks; the child installs `thread`'s filter and runs `body`, then
/// exits 0. Returns the child's exit status and what it wrote on stderr.
fn in_filtered_child(thread: Thread, body: fn(c_int)) -> (c_int, String) {
    let prog = program(thread).unwrap();
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_end, write_end] = fds;
    // SAFETY: the child calls only async-signal-safe functions (dup2,
    // sigaction, prctl, seccomp, write, _exit) and allocates nothing.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: plain descriptor calls in the child.
        unsafe {
            libc::close(read_end);
            libc::dup2(write_end, 2);
        }
        let ok = vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, on_sigsys).is_ok();
        CURRENT.with(|c| c.set(thread.name()));
        if !ok || seccompiler::apply_filter(&prog).is_err() {
            // SAFETY: ends the child.
            unsafe { libc::_exit(99) };
        }
        body(write_end);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: our copy of the write end; the child holds its own.
    unsafe { libc::close(write_end) };
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(read_end, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n as usize]);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid out-pointer.
    unsafe {
        libc::close(read_end);
        libc::waitpid(pid, &mut status, 0);
    }
    assert!(
        libc::WIFEXITED(status),
        "child ended by a signal: {status:#x}"
    );
    (
        libc::WEXITSTATUS(status),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn a_vcpu_thread_may_write_but_not_open_a_socket() {
    let (status, err) = in_filtered_child(Thread::Vcpu, |fd| {
        let msg = b"allowed write\n";
        // SAFETY: writing a static buffer to the pipe.
        unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
        // SAFETY: socket(2) takes no pointers; the filter refuses it.
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    });
    assert_eq!(status, 70, "{err}");
    assert!(err.starts_with("allowed write\n"), "{err}");
    assert!(
        err.contains("the vcpu thread made system call 41 (socket), which its filter forbids"),
        "{err}"
    );
}

#[test]
fn an_ioctl_request_outside_the_thread_list_is_refused() {
    let (status, err) = in_filtered_child(Thread::Device, |_| {
        let mut size = [0u16; 4];
        // SAFETY: TIOCGWINSZ writes 8 bytes into `size`; the filter
        // refuses the request before it runs.
        unsafe { libc::ioctl(0, libc::TIOCGWINSZ, size.as_mut_ptr()) };
    });
    assert_eq!(status, 70, "{err}");
    assert!(
        err.contains("the dma-device thread made system call 16 (ioctl (a request this thread does not use))"),
        "{err}"
    );
}

#[test]
fn an_allowed_ioctl_request_passes() {
    let (status, err) = in_filtered_child(Thread::Device, |fd| {
        let mut on: c_int = 1;
        // SAFETY: FIONBIO reads one int; `fd` is the pipe's write end.
        let r = unsafe { libc::ioctl(fd, libc::FIONBIO, &mut on) };
        if r != 0 {
            // SAFETY: ends the child.
            unsafe { libc::_exit(98) };
        }
    });
    assert_eq!((status, err.as_str()), (0, ""));
}

#[test]
fn the_main_thread_may_not_start_a_program() {
    let (status, err) = in_filtered_child(Thread::Main, |_| {
        let path = c"/bin/true";
        let argv = [path.as_ptr(), std::ptr::null()];
        // SAFETY: a NUL-terminated path and argv; the filter refuses it.
        unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    });
    assert_eq!(status, 70, "{err}");
    assert!(
        err.contains("the main thread made system call 59 (execve)"),
        "{err}"
    );
}
