//! The control API's answers (`docs/control-api.md`): one request line in,
//! one reply line out, against the device and the VM's pause gate. The
//! requests, replies and events are `dmalab_protocol::control`'s types;
//! the connections, and pushing events to watchers, are the device
//! thread's (`device_thread.rs`).
//!
//! The socket works in every timing mode; it is created by default only in
//! stepped mode, where it is the only way time moves. Steps to a cycle or
//! to idle run a slice per device-lock hold (`Dma::step`).

use std::path::Path;

use device_model::fault::FaultPlan;
use device_model::regs::{self, channel_reg};
pub use dmalab_protocol::control::MAX_LINE;
use dmalab_protocol::control::{
    Answer, ChannelInfo, GlobalRegisters, Line, MsixEntry, Registers, Request, Stats, Status,
    StepTo, TraceAction, MAX_STEP_CYCLES, VERSION,
};

use super::{steps, watch, DeviceState, Dma, TimingMode};
use crate::pause::PauseGate;
use crate::regdump::RegDump;

/// What a request asks of its connection (beside the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    Unchanged,
    Watch,
    Unwatch,
}

/// Answers one request line.
pub fn handle(dma: &Dma, pause: &PauseGate, line: &str) -> (Line, Subscription) {
    let (id, request) = match Request::parse_line(line) {
        Ok(r) => r,
        Err((id, why)) => return (Line::reply(id, Err(why)), Subscription::Unchanged),
    };
    let subscription = match request {
        Request::Watch => Subscription::Watch,
        Request::Unwatch => Subscription::Unwatch,
        _ => Subscription::Unchanged,
    };
    (Line::reply(id, answer(dma, pause, request)), subscription)
}

fn time(st: &DeviceState) -> Answer {
    Answer::Time {
        now: st.model.now(),
        next: st.model.next_event(),
    }
}

fn answer(dma: &Dma, pause: &PauseGate, request: Request) -> Result<Answer, String> {
    // The gate takes the device lock itself (its listener): not held here.
    match request {
        Request::Pause => {
            pause.pause().map_err(|e| dmalab_protocol::one_line(&e))?;
            return Ok(time(&dma.lock()));
        }
        Request::Resume => {
            pause.resume();
            return Ok(time(&dma.lock()));
        }
        Request::Vcpu { index } => {
            let memory = dma.lock().model.memory().clone();
            return pause
                .with_vcpu(usize::from(index), move |fd| {
                    RegDump::capture(index, fd, &memory).to_string()
                })
                .map(Answer::Vcpu)
                .map_err(|e| dmalab_protocol::one_line(&e));
        }
        _ => {}
    }
    let mut st = dma.lock();
    let answer = match request {
        Request::Version => Answer::Version(VERSION),
        Request::Now => time(&st),
        Request::Watch | Request::Unwatch => {
            // A new watcher sees events from now on, not the backlog.
            st.drain();
            Answer::Done
        }
        Request::Status => {
            let gate = pause.status();
            Answer::Status(Status {
                timing: dma.clock.mode().name().to_string(),
                paused: gate.paused,
                vcpus: gate.vcpus,
                parked: gate.parked,
                held: dma.waiting(),
                pauses: gate.pauses,
                paused_ms: u64::try_from(gate.paused_total.as_millis()).unwrap_or(u64::MAX),
                now: st.model.now(),
                next: st.model.next_event(),
            })
        }
        Request::Step { to } => {
            if dma.clock.mode() != TimingMode::Stepped && !pause.is_paused() {
                return Err(format!(
                    "step needs stepped timing or a paused VM (the VM runs {})",
                    dma.clock.mode().name()
                ));
            }
            let result = match to {
                StepTo::Cycles(n) if n > MAX_STEP_CYCLES => Err(format!(
                    "step moves at most {MAX_STEP_CYCLES} cycles at a time, not {n}"
                )),
                StepTo::Cycles(n) => {
                    let to = st.model.now().saturating_add(n);
                    st = dma.step(st, Some(to));
                    Ok(())
                }
                StepTo::Idle => {
                    st = dma.step(st, None);
                    Ok(())
                }
                _ => steps::step(&mut st, to),
            };
            dma.settle(&mut st);
            dma.stepped();
            result?;
            time(&st)
        }
        Request::Stats => {
            st.drain();
            Answer::Stats(Stats {
                now: st.model.now(),
                next: st.model.next_event(),
                tally: st.tally.counters().clone(),
                trace_lost: st.trace_lost(),
            })
        }
        Request::Channels => {
            st.drain();
            Answer::Channels(channels(&st, dma.channels))
        }
        Request::Registers => {
            st.drain();
            Answer::Registers(registers(&st, dma.channels))
        }
        Request::Inject { effect, channel } => inject(&mut st, dma.channels, effect, channel)?,
        Request::Trace { action, file } => {
            let guest_times = dma.clock.mode() == TimingMode::Realtime;
            trace(&mut st, action, file.as_deref(), guest_times)?
        }
        Request::Pause | Request::Resume | Request::Vcpu { .. } => unreachable!("answered above"),
    };
    Ok(answer)
}

/// A connection starts watching.
pub fn watch(dma: &Dma) {
    dma.lock().watch.watchers += 1;
}

/// A connection that watched went away or unwatched.
pub fn unwatch(dma: &Dma) {
    let mut st = dma.lock();
    st.watch.watchers = st.watch.watchers.saturating_sub(1);
    if st.watch.watchers == 0 {
        st.watch.events.clear();
    }
}

fn peek(st: &DeviceState, offset: u64) -> u32 {
    st.model.peek_bar0(offset).unwrap_or(0)
}

fn channels(st: &DeviceState, n: u8) -> Vec<ChannelInfo> {
    (0..n)
        .map(|c| {
            let r = |reg| peek(st, channel_reg(c, reg));
            let wide = |lo, hi| u64::from(r(lo)) | u64::from(r(hi)) << 32;
            let (head, tail, size) = (r(regs::CH_HEAD), r(regs::CH_TAIL), r(regs::CH_RING_SIZE));
            let status = r(regs::CH_STATUS);
            ChannelInfo {
                channel: c,
                state: watch::state_name(status).to_string(),
                enabled: r(regs::CH_CTRL) & regs::CTRL_ENABLE != 0,
                error_code: r(regs::CH_ERROR_CODE),
                ring_base: wide(regs::CH_RING_BASE, regs::CH_RING_BASE_HI),
                ring_size: size,
                head,
                tail,
                in_flight: if size == 0 {
                    0
                } else {
                    tail.wrapping_sub(head) % size
                },
                comp_base: wide(regs::CH_COMP_BASE, regs::CH_COMP_BASE_HI),
                comp_head: r(regs::CH_COMP_HEAD),
                comp_tail: r(regs::CH_COMP_TAIL),
                completed: r(regs::CH_COMPLETED),
                last_completion: st.last_completion.get(usize::from(c)).cloned().flatten(),
            }
        })
        .collect()
}

fn registers(st: &DeviceState, n: u8) -> Registers {
    let g = |o| peek(st, o);
    let caps = g(regs::CAPS);
    let vectors = usize::from(n) + 1;
    let msix: Vec<MsixEntry> = (0..vectors)
        .filter_map(|v| {
            let (m, masked, pending) = st.model.peek_msix(v)?;
            Some(MsixEntry {
                vector: v,
                address: m.address,
                data: m.data,
                masked,
                pending,
            })
        })
        .collect();
    let pba = msix
        .iter()
        .filter(|e| e.pending && e.vector < 64)
        .fold(0u64, |acc, e| acc | 1 << e.vector);
    Registers {
        global: GlobalRegisters {
            id: g(regs::ID),
            version: g(regs::VERSION),
            caps,
            channels: (caps >> regs::CAPS_CHANNELS_SHIFT) & 0xff,
            max_xfer: g(regs::MAX_XFER),
            clock_mhz: g(regs::CLOCK_MHZ),
            int_status: g(regs::INT_STATUS),
            int_mask: g(regs::INT_MASK),
            cycle: u64::from(g(regs::CYCLE)) | u64::from(g(regs::CYCLE_HI)) << 32,
            bad_access: g(regs::BAD_ACCESS),
        },
        channels: channels(st, n),
        msix,
        pba,
    }
}

/// Adds a one-shot rule: `effect` on the next descriptor (of `channel`).
fn inject(
    st: &mut DeviceState,
    channels: u8,
    effect: serde_json::Value,
    channel: Option<u8>,
) -> Result<Answer, String> {
    let effect = toml::Value::try_from(effect).map_err(|e| format!("inject: bad effect: {e}"))?;
    let mut rule = toml::Table::new();
    rule.insert("name".into(), "injected by hand".into());
    rule.insert("effect".into(), effect);
    rule.insert("nth".into(), 1.into());
    if let Some(c) = channel {
        rule.insert("channel".into(), i64::from(c).into());
    }
    let mut doc = toml::Table::new();
    doc.insert("rule".into(), toml::Value::Array(vec![rule.into()]));
    let text = toml::to_string(&doc).map_err(|e| format!("inject: {e}"))?;
    let plan = FaultPlan::from_toml(&text)
        .and_then(|p| p.validate_for(channels).map(|()| p))
        .map_err(|e| format!("inject: {}", dmalab_protocol::one_line(&e)))?;
    let Some(rule) = plan.rules.into_iter().next() else {
        return Err("inject: no rule".into());
    };
    let rule = st
        .model
        .faults_mut()
        .add_rule(rule)
        .map_err(|e| format!("inject: {}", dmalab_protocol::one_line(&e)))?;
    Ok(Answer::Injected { rule })
}

fn trace(
    st: &mut DeviceState,
    action: TraceAction,
    file: Option<&Path>,
    guest_times: bool,
) -> Result<Answer, String> {
    st.drain();
    match (action, file) {
        (TraceAction::Start, _) => {
            st.recording.get_or_insert_with(Vec::new).clear();
            Ok(Answer::Done)
        }
        (TraceAction::Stop, None) => Err("trace stop needs a FILE".into()),
        (TraceAction::Stop, Some(path)) => {
            let mut events = st
                .recording
                .take()
                .ok_or("no trace recording (send 'trace start' first)")?;
            if !guest_times {
                super::device_state::without_guest_times(&mut events);
            }
            std::fs::write(path, st.model.chrome_json(&events))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(Answer::Done)
        }
    }
}

#[cfg(test)]
mod tests;
