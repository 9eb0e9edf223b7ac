//! `dmalab run --gdb ADDR`: a gdb remote stub (the `gdbstub` crate, as
//! crosvm and Cloud Hypervisor use it) on a loopback TCP port or a Unix
//! socket. `docs/debugging.md` is the how-to and the platform's limits.
//!
//! - `gate`: the debug registers armed on a vCPU and a vCPU's debug exit;
//!   stopping the VM is the pause gate's (`pause.rs`: vCPUs parked, device
//!   time frozen, the stop credited to the guest as steal time);
//! - `target`: the VM as gdb's multi-threaded target;
//! - `paging`: guest-virtual addresses through the guest's page tables;
//! - `regs`: a vCPU's registers (general, segment, x87, SSE) as gdb's.
//!
//! The listener is bound before the VM is built (before /dev/kvm is
//! opened), so an address in use is a user error (exit 64). One thread accepts a connection, parks every
//! vCPU (gdb expects a stopped target), and runs the protocol until gdb
//! detaches or the VM ends; on detach the vCPUs run free and the next
//! connection is accepted. When the guest exits the main thread tells the
//! stub (`GdbStub::finish`), which reports the exit status to gdb.

mod gate;
mod paging;
mod regs;
mod target;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{self, BlockingEventLoop, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub as Stub};
use gdbstub::target::ext::base::multithread::MultiThreadResume;
use vm_memory::GuestMemoryMmap;

use crate::pause::PauseGate;

use gate::Event;
pub use gate::VcpuDebug;
use target::{StopReason, VmTarget};

/// How often the stub looks at the connection while the guest runs.
const CONNECTION_POLL: Duration = Duration::from_millis(10);

/// How long the main thread waits for the stub to tell gdb the VM ended.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Where `--gdb` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GdbAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for GdbAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GdbAddr::Tcp(a) => write!(f, "{a}"),
            GdbAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `--gdb`'s value parser: `host:port` on loopback, or a Unix socket path
/// (anything with a `/`).
pub fn parse_addr(s: &str) -> Result<GdbAddr, String> {
    if s.contains('/') {
        return Ok(GdbAddr::Unix(PathBuf::from(s)));
    }
    let s2 = s.replacen("localhost:", "127.0.0.1:", 1);
    match s2.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => Ok(GdbAddr::Tcp(a)),
        Ok(a) => Err(format!(
            "'{a}' is not a loopback address; the gdb stub listens on 127.0.0.1 or ::1 only \
             (e.g. --gdb 127.0.0.1:1234)"
        )),
        Err(_) => Err(format!(
            "'{s}' is neither host:port (e.g. 127.0.0.1:1234) nor a Unix socket path \
             (e.g. ./gdb.sock)"
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen for gdb on {0} (pick another port or path)")]
    Listen(GdbAddr, #[source] io::Error),
    #[error(
        "cannot listen for gdb on {}: the path exists and is not a stale socket \
         (give --gdb a new path)", .0.display()
    )]
    PathTaken(PathBuf),
    #[error("cannot start the gdb thread")]
    Thread(#[source] io::Error),
}

impl Error {
    /// The user's to fix (exit 64): the address or path is taken.
    pub fn is_usage(&self) -> bool {
        !matches!(self, Error::Thread(_))
    }
}

/// `--gdb`'s socket, bound before any VM exists (`Listener::bind`): an
/// address in use is the user's to fix before /dev/kvm is opened.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`; a Unix socket path may replace only a stale socket.
    pub fn bind(addr: &GdbAddr) -> Result<Self, Error> {
        let listen = |e| Error::Listen(addr.clone(), e);
        match addr {
            GdbAddr::Tcp(a) => TcpListener::bind(a).map(Listener::Tcp).map_err(listen),
            GdbAddr::Unix(path) => {
                remove_stale_socket(path)?;
                UnixListener::bind(path)
                    .map(|l| Listener::Unix(l, path.clone()))
                    .map_err(listen)
            }
        }
    }

    fn accept(&self) -> io::Result<Box<dyn ConnectionExt<Error = io::Error>>> {
        Ok(match self {
            Listener::Tcp(l) => Box::new(l.accept()?.0),
            Listener::Unix(l, _) => Box::new(l.accept()?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A socket nobody answers on may go; anything else at `path` stays.
fn remove_stale_socket(path: &Path) -> Result<(), Error> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() || UnixStream::connect(path).is_ok() {
        return Err(Error::PathTaken(path.to_path_buf()));
    }
    std::fs::remove_file(path).map_err(|e| Error::Listen(GdbAddr::Unix(path.to_path_buf()), e))
}

/// The running stub, owned by the main thread.
#[derive(Debug)]
pub struct GdbStub {
    events: Sender<Event>,
    /// A gdb is connected (the exit is worth waiting to report).
    connected: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl GdbStub {
    /// Starts the stub's thread on `listener` (`Listener::bind`); returns
    /// it with one `VcpuDebug` per vCPU. With `wait`, the VM is paused
    /// before its first guest instruction until gdb resumes it.
    pub fn start(
        listener: Listener,
        vcpus: usize,
        wait: bool,
        pause: &Arc<PauseGate>,
        memory: GuestMemoryMmap,
    ) -> Result<(Self, Vec<VcpuDebug>), Error> {
        let (events, inbox) = mpsc::channel();
        let ends = (0..vcpus)
            .map(|_| VcpuDebug::new(events.clone(), pause.clone()))
            .collect();
        if wait {
            // No vCPU thread runs yet: they park at their first loop top.
            if let Err(e) = pause.pause() {
                log::warn!("gdb: cannot hold the VM for --gdb-wait: {e}");
            }
        }
        let connected = Arc::new(AtomicBool::new(false));
        let mut target = VmTarget::new(vcpus, inbox, pause.clone(), memory);
        let thread = thread::Builder::new()
            .name("gdb".into())
            .spawn({
                let connected = connected.clone();
                move || serve(&listener, &mut target, &connected)
            })
            .map_err(Error::Thread)?;
        Ok((
            Self {
                events,
                connected,
                thread,
            },
            ends,
        ))
    }

    /// The VM is over with `status`: lets the stub tell a connected gdb,
    /// waiting a little for it.
    pub fn finish(self, status: u8) {
        let _ = self.events.send(Event::Exited(status));
        if !self.connected.load(Ordering::Acquire) {
            return;
        }
        let deadline = Instant::now() + EXIT_GRACE;
        while !self.thread.is_finished() && Instant::now() < deadline {
            thread::sleep(CONNECTION_POLL);
        }
    }
}

/// Accepts gdb connections one at a time until the VM is over.
fn serve(listener: &Listener, target: &mut VmTarget, connected: &AtomicBool) {
    crate::seccomp::enter(crate::seccomp::Thread::Gdb);
    while target.exited().is_none() {
        let conn = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("gdb: accept failed: {e}");
                return;
            }
        };
        // gdb expects a stopped target.
        connected.store(true, Ordering::Release);
        if target.pending().is_some() && target.exited().is_some() {
            return;
        }
        target.stop_all();
        match Stub::new(conn).run_blocking::<EventLoop>(target) {
            Ok(DisconnectReason::TargetExited(_)) | Ok(DisconnectReason::TargetTerminated(_)) => {
                return
            }
            Ok(DisconnectReason::Disconnect) | Ok(DisconnectReason::Kill) => {}
            Err(e) => log::warn!("gdb: session ended: {e}"),
        }
        // gdb is gone: let the guest run free.
        connected.store(false, Ordering::Release);
        let _ = target.clear_resume_actions();
        target.forget_breakpoints();
        let _ = target.resume();
    }
}

enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = VmTarget;
    type Connection = Box<dyn ConnectionExt<Error = io::Error>>;
    type StopReason = StopReason;

    fn wait_for_stop_reason(
        target: &mut VmTarget,
        conn: &mut Self::Connection,
    ) -> Result<run_blocking::Event<StopReason>, WaitForStopReasonError<String, io::Error>> {
        loop {
            if let Some(stop) = target.poll(CONNECTION_POLL) {
                return Ok(run_blocking::Event::TargetStopped(stop));
            }
            if conn
                .peek()
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(run_blocking::Event::IncomingData(byte));
            }
        }
    }

    fn on_interrupt(target: &mut VmTarget) -> Result<Option<StopReason>, String> {
        target.stop_all();
        Ok(Some(StopReason::SignalWithThread {
            tid: target.first_alive(),
            signal: Signal::SIGINT,
        }))
    }
}
