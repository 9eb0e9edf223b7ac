//! The device thread: an event-manager loop over the doorbell ioeventfds
//! (`--doorbell ioeventfd`), the realtime timerfd, the control socket
//! (listener and connections) and a stop eventfd.
//!
//! - a doorbell eventfd: the guest wrote channel *c*'s `TAIL`; the thread
//!   takes the device lock and rings `doorbell(c, None)` (the tail comes
//!   from the shadow), unless memory decoding is off;
//! - the timerfd: `Dma::on_timer` (advance to host time, re-arm);
//! - the control socket: one reply line per request (`control_socket.rs`);
//! - the watch eventfd: events wait for watching connections; they are
//!   written to each (a watcher too slow to take them is dropped).
//!
//! In exit-doorbell instant mode nothing would wake the thread but the
//! socket (if any) and the stop event; it still runs, idle in epoll.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use event_manager::{EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberOps};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use dmalab_protocol::control::Line;

use super::control_socket::{self, Subscription, MAX_LINE};
use super::{Dma, DmaOptions, TimingMode};
use crate::pause::PauseGate;

const TIMER: u32 = 1 << 20;
const STOP: u32 = TIMER + 1;
const LISTENER: u32 = TIMER + 2;
const WATCH: u32 = TIMER + 3;
const CLIENT: u32 = 1 << 21;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the device thread's event loop")]
    EventManager(#[source] event_manager::Error),
    #[error("cannot create the stop eventfd")]
    EventFd(#[source] std::io::Error),
    #[error(
        "cannot listen on the control socket {0} (give --control a path in a writable directory)"
    )]
    Listen(PathBuf, #[source] std::io::Error),
    #[error(
        "--control {0}: the path exists and is not a socket (give a new path; nothing was removed)"
    )]
    NotASocket(PathBuf),
    #[error("--control {0}: another running dmalab serves this socket (give another path)")]
    InUse(PathBuf),
    #[error("cannot spawn the device thread")]
    Spawn(#[source] std::io::Error),
    #[error(
        "--realtime-priority {0}: cannot put the device thread under SCHED_FIFO \
         (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {0})"
    )]
    Priority(u8, #[source] std::io::Error),
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    watching: bool,
}

struct DeviceLoop {
    dma: Arc<Dma>,
    pause: Arc<PauseGate>,
    doorbell_fds: Vec<EventFd>,
    stop: EventFd,
    listener: Option<UnixListener>,
    clients: HashMap<u32, Client>,
    next_client: u32,
    stopped: Arc<AtomicBool>,
}

impl DeviceLoop {
    fn doorbell(&self, channel: usize) {
        if let Some(fd) = self.doorbell_fds.get(channel) {
            // Several writes before we ran are one doorbell: the shadow
            // holds the latest tail.
            let _ = fd.read();
        }
        let Ok(c) = u8::try_from(channel) else {
            return;
        };
        if self.dma.is_paused() {
            self.dma.defer_doorbell(c);
            return;
        }
        self.dma.eventfd_doorbell(c);
    }

    fn accept(&mut self, ops: &mut EventOps) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let id = CLIENT + self.next_client;
            self.next_client = (self.next_client + 1) % (1 << 20);
            if ops
                .add(Events::with_data(&stream, id, EventSet::IN))
                .is_ok()
            {
                self.clients.insert(
                    id,
                    Client {
                        stream,
                        buf: Vec::new(),
                        watching: false,
                    },
                );
            }
        }
    }

    fn serve(&mut self, id: u32, ops: &mut EventOps) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; 512];
        // The peer is done sending (`echo status | socat - UNIX-CONNECT:…`
        // half-closes right after its request): the lines it sent are still
        // answered, then the connection is closed.
        let mut eof = false;
        let mut closed = false;
        loop {
            match client.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => client.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        while !closed {
            let Some(client) = self.clients.get_mut(&id) else {
                return;
            };
            let Some(end) = client.buf.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = client.buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]);
            let (reply, subscription) = control_socket::handle(&self.dma, &self.pause, text.trim());
            match subscription {
                Subscription::Watch if !client.watching => {
                    client.watching = true;
                    control_socket::watch(&self.dma);
                }
                Subscription::Unwatch if client.watching => {
                    client.watching = false;
                    control_socket::unwatch(&self.dma);
                }
                _ => {}
            }
            // Events the request caused go out before its reply.
            self.push_events(ops);
            let Some(client) = self.clients.get(&id) else {
                return;
            };
            closed = write_line(&client.stream, &reply.to_string()).is_err();
        }
        let too_long = |c: &Client| c.buf.len() > MAX_LINE;
        if !closed && self.clients.get(&id).is_some_and(too_long) {
            if let Some(client) = self.clients.get(&id) {
                let _ = write_line(
                    &client.stream,
                    &Line::reply(0, Err("request line too long".into())).to_string(),
                );
            }
            closed = true;
        }
        if closed || eof {
            self.close(id, ops);
        }
    }

    fn close(&mut self, id: u32, ops: &mut EventOps) {
        if let Some(c) = self.clients.remove(&id) {
            let _ = ops.remove(Events::with_data(&c.stream, id, EventSet::IN));
            if c.watching {
                control_socket::unwatch(&self.dma);
            }
        }
    }

    /// Writes the waiting events to every watching connection.
    fn push_events(&mut self, ops: &mut EventOps) {
        let _ = self.dma.watch_ready.read();
        let events = std::mem::take(&mut self.dma.lock().watch.events);
        if events.is_empty() {
            return;
        }
        let mut text = String::new();
        for event in events {
            text.push_str(&Line::Event { event }.to_string());
            text.push('\n');
        }
        let text = text.trim_end();
        let gone: Vec<u32> = self
            .clients
            .iter()
            .filter(|(_, c)| c.watching && write_line(&c.stream, text).is_err())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.close(id, ops);
        }
    }
}

/// Writes `line` and a newline, waiting (briefly) if the peer is slow.
fn write_line(mut stream: &UnixStream, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut at = 0;
    let mut spins = 0;
    while at < bytes.len() {
        match stream.write(&bytes[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock && spins < 1000 => {
                spins += 1;
                std::thread::yield_now();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl MutEventSubscriber for DeviceLoop {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        match events.data() {
            TIMER => self.dma.on_timer(),
            STOP => {
                let _ = self.stop.read();
                self.stopped.store(true, Ordering::Release);
            }
            LISTENER => self.accept(ops),
            WATCH => self.push_events(ops),
            id if id >= CLIENT => self.serve(id, ops),
            channel => self.doorbell(channel as usize),
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        for (c, fd) in (0u32..).zip(&self.doorbell_fds) {
            if let Err(e) = ops.add(Events::with_data(fd, c, EventSet::IN)) {
                log::error!("device thread: cannot watch doorbell {c}: {e}");
            }
        }
        if self.dma.clock.mode() == TimingMode::Realtime {
            if let Err(e) = ops.add(Events::with_data(&self.dma.clock, TIMER, EventSet::IN)) {
                log::error!("device thread: cannot watch the timer: {e}");
            }
        }
        if let Err(e) = ops.add(Events::with_data(&self.stop, STOP, EventSet::IN)) {
            log::error!("device thread: cannot watch the stop event: {e}");
        }
        if let Err(e) = ops.add(Events::with_data(
            &self.dma.watch_ready,
            WATCH,
            EventSet::IN,
        )) {
            log::error!("device thread: cannot watch the watch event: {e}");
        }
        if let Some(l) = &self.listener {
            if let Err(e) = ops.add(Events::with_data(l, LISTENER, EventSet::IN)) {
                log::error!("device thread: cannot watch the control socket: {e}");
            }
        }
    }
}

/// The running device thread.
#[derive(Debug)]
pub struct DeviceThread {
    stop: EventFd,
    handle: Option<JoinHandle<()>>,
    /// The control socket's path, if one was created.
    pub control: Option<PathBuf>,
}

impl DeviceThread {
    /// Starts the loop over `doorbell_fds` (ioeventfds, channel order).
    pub fn start(
        dma: Arc<Dma>,
        doorbell_fds: Vec<EventFd>,
        options: &DmaOptions,
    ) -> Result<Self, Error> {
        let control = match (&options.control, options.timing) {
            (Some(path), _) => Some(path.clone()),
            (None, TimingMode::Stepped) => {
                Some(std::env::temp_dir().join(format!("dmalab-{}.sock", std::process::id())))
            }
            (None, _) => None,
        };
        let listener = match &control {
            Some(path) => {
                let l = claim(path)?;
                eprintln!(
                    "dmalab: control socket {0} (connect: dmalab ctl --socket {0} status)",
                    path.display()
                );
                if options.timing == TimingMode::Stepped {
                    eprintln!(
                        "dmalab: stepped timing: device time moves only when a client steps it; \
                         waiting for one (dmalab ctl --socket {} step completion)",
                        path.display()
                    );
                }
                Some(l)
            }
            None => None,
        };
        let stop = EventFd::new(EFD_NONBLOCK).map_err(Error::EventFd)?;
        let stopped = Arc::new(AtomicBool::new(false));
        let mut manager: EventManager<DeviceLoop> =
            EventManager::new().map_err(Error::EventManager)?;
        manager.add_subscriber(DeviceLoop {
            dma,
            pause: options.pause.clone(),
            doorbell_fds,
            stop: stop.try_clone().map_err(Error::EventFd)?,
            listener,
            clients: HashMap::new(),
            next_client: 0,
            stopped: stopped.clone(),
        });
        let priority = options.realtime_priority;
        let (started, start_result) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("dma-device".into())
            .spawn(move || {
                let set = priority.map_or(Ok(()), set_fifo);
                let ok = set.is_ok();
                let _ = started.send(set);
                if ok {
                    run(manager, &stopped);
                }
            })
            .map_err(Error::Spawn)?;
        // The thread says whether it got its priority before any guest
        // code runs; without it, the run does not start.
        match start_result.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(Error::Priority(priority.unwrap_or(0), e));
            }
            Err(_) => {
                let _ = handle.join();
                return Err(Error::Spawn(std::io::Error::other(
                    "the device thread ended before it started",
                )));
            }
        }
        Ok(Self {
            stop,
            handle: Some(handle),
            control,
        })
    }

    /// Stops the loop, waits for it, removes the control socket file.
    pub fn stop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Some(path) = self.control.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the control socket at `path`. A file already there is removed
/// only if it is a socket nobody serves (left by a run that died);
/// anything else, or a live socket, is refused.
fn claim(path: &std::path::Path) -> Result<UnixListener, Error> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Listen(path.to_path_buf(), e)),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(Error::NotASocket(path.to_path_buf()))
        }
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(|e| Error::Listen(path.to_path_buf(), e))?;
        }
    }
    let l = UnixListener::bind(path).map_err(|e| Error::Listen(path.to_path_buf(), e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::Listen(path.to_path_buf(), e))?;
    Ok(l)
}

/// Puts the calling thread under SCHED_FIFO at `priority`.
fn set_fifo(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param
    // that outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn run(mut manager: EventManager<DeviceLoop>, stopped: &AtomicBool) {
    crate::cpu_wait::count_this_thread();
    crate::seccomp::enter(crate::seccomp::Thread::Device);
    while !stopped.load(Ordering::Acquire) {
        if let Err(e) = manager.run_with_timeout(-1) {
            log::error!("device thread: event loop failed: {e}");
            return;
        }
    }
}
