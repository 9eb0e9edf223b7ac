//! Realtime mode's side of the device: bringing the model up to host
//! time a slice per lock hold, measuring each released event's lateness,
//! spinning for events about to fall due, and the timer that wakes the
//! device thread (`clock.rs` has the clock itself).

use super::device_lock::DeviceGuard;
use super::lateness::{self, Stalls};
use super::{DeviceState, Dma, FOLLOW_NS, SPIN_NS};

impl Dma {
    /// Realtime: processes the events host time has made due, a slice per
    /// lock hold; stops early when the run ends.
    /// Each slice's guest-observable events are measured against host time
    /// (`lateness.rs`) before the trace can drain.
    pub(super) fn catch_up<'a>(&'a self, mut st: DeviceGuard<'a>) -> DeviceGuard<'a> {
        let target = self.clock.now_cycles();
        while !self.stopping() && !self.advance_measured(&mut st, target) {
            st = self.next_slice(st);
        }
        st
    }

    /// One slice of realtime progress up to `target`, its guest-observable
    /// events measured against host time (each dated by the message sends
    /// around it: `lateness::release_times`); whether the model reached it.
    fn advance_measured(&self, st: &mut DeviceState, target: u64) -> bool {
        let from = st.model.trace_events().len();
        // Sends before this slice (a register access's) are not its own.
        st.model.interrupts_mut().take_sends(&mut st.sends);
        let done = st.model.advance_slice(target, self.slice).done;
        let end_ns = self.clock.elapsed_ns();
        let matched = st.model.interrupts_mut().take_sends(&mut st.sends);
        st.send_ns.clear();
        st.send_ns.extend(st.sends.iter().map(|s| {
            (
                self.clock.since_origin(s.begun_ns),
                self.clock.since_origin(s.done_ns),
            )
        }));
        st.lateness.observe_sends(&st.send_ns);
        let released = st.model.trace_events().get(from..).unwrap_or(&[]);
        let sends = matched.then_some(st.send_ns.as_slice());
        lateness::release_times(released, sends, end_ns, &mut st.release_ns);
        st.lateness
            .observe(released, &st.release_ns, |c| self.clock.modelled_ns(c));
        done
    }

    /// Realtime: events due within `SPIN_NS` of host time are waited for
    /// by spinning and processed at once, instead of by a timer wake-up
    /// (tens of µs here). A doorbell's fetch, a small copy's record and its
    /// interrupt fall due within about a µs of each other. The spin is
    /// bounded by `SPIN_NS` per call; a frozen clock never spins.
    pub(super) fn spin_due(&self, st: &mut DeviceState) {
        let limit = self.clock.elapsed_ns().saturating_add(SPIN_NS);
        while let Some(next) = st.model.next_event() {
            let due = self.clock.modelled_ns(next).saturating_add(1);
            if due > limit || self.clock.frozen() {
                return;
            }
            let (stalls, reached) = self.spin_until(self.clock.elapsed_ns(), due, || false);
            st.lateness.observe_stalls(&stalls);
            if !reached || !self.advance_measured(st, self.clock.now_cycles()) {
                return;
            }
        }
    }

    /// Spins from host time `from` until host time reaches `due` (ns
    /// since the clock's origin), the clock freezes or `stop` says so;
    /// the stalls seen on the way, and whether `due` was reached.
    fn spin_until(&self, from: u64, due: u64, stop: impl Fn() -> bool) -> (Stalls, bool) {
        let mut stalls = Stalls::new(from);
        loop {
            let t = self.clock.elapsed_ns();
            stalls.read(t);
            if t >= due {
                return (stalls, true);
            }
            if self.clock.frozen() || stop() {
                return (stalls, false);
            }
            std::hint::spin_loop();
        }
    }

    pub(super) fn rearm(&self, st: &mut DeviceState) {
        let Some(next) = st.model.next_event() else {
            return;
        };
        if st.armed.is_some_and(|a| a <= next) {
            return;
        }
        match self.clock.arm_at(next) {
            Ok(()) => st.armed = Some(next),
            Err(e) => log::warn!("device timer: {e}"),
        }
    }

    /// Realtime, on the device thread: follows the model while its events
    /// come densely (a transfer streaming its bursts), so that a transfer
    /// the host processes faster than modelled is not left mid-way to a
    /// timer wake-up (5–45 µs here): while the next event is due within
    /// `SPIN_NS` of host time — or within the timer's lead, with
    /// `--realtime-spin` — it is waited for by spinning with the device
    /// lock released (vCPU accesses go on meanwhile) and processed as it
    /// falls due. Spinning stops after `FOLLOW_NS` in all, when the clock
    /// freezes or when the run ends; the caller re-arms the timer.
    pub(super) fn follow<'a>(&'a self, mut st: DeviceGuard<'a>) -> DeviceGuard<'a> {
        let window = self.clock.lead_ns().max(SPIN_NS);
        let mut spun = 0u64;
        while let Some(next) = st.model.next_event() {
            let due = self.clock.modelled_ns(next).saturating_add(1);
            let now = self.clock.elapsed_ns();
            if due > now.saturating_add(window)
                || spun > FOLLOW_NS
                || self.clock.frozen()
                || self.stopping()
            {
                break;
            }
            if due > now {
                drop(st);
                let (stalls, _) = self.spin_until(now, due, || self.stopping());
                spun += self.clock.elapsed_ns().saturating_sub(now);
                st = self.lock();
                st.lateness.observe_stalls(&stalls);
            }
            st = self.catch_up(st);
        }
        st
    }

    /// Realtime: the timer expired; process what is due (a slice per lock
    /// hold) and re-arm.
    pub fn on_timer(&self) {
        self.clock.acknowledge();
        if self.is_paused() || self.stopping() {
            return;
        }
        let mut st = self.lock();
        st.armed = None;
        st = self.catch_up(st);
        st = self.follow(st);
        self.rearm(&mut st);
        self.drain_if_due(&mut st);
    }
}
