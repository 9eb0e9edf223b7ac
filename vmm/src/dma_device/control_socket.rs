//! The control socket: a Unix stream socket with a line protocol, one
//! reply line per request. The requests and replies, with their table, are
//! `dmalab_protocol::control`; this file answers them against the device
//! (`docs/dma-device.md`).
//!
//! The socket works in every timing mode (in instant mode the device is
//! always idle, in realtime mode a step may run events early); it is
//! created by default only in stepped mode, where it is the only way time
//! moves. Steps run a slice per device-lock hold (`Dma::step`).

pub use dmalab_protocol::control::MAX_LINE;
use dmalab_protocol::control::{Reply, Request, Stats, Status, VERSION};

use super::Dma;
use crate::pause::PauseGate;

/// Answers one request line.
pub fn handle(dma: &Dma, pause: &PauseGate, line: &str) -> String {
    match Request::parse(line) {
        Ok(request) => answer(dma, pause, request),
        Err(why) => Reply::Error(why),
    }
    .to_string()
}

fn answer(dma: &Dma, pause: &PauseGate, request: Request) -> Reply {
    // The gate takes the device lock itself (its listener): not held here.
    match request {
        Request::Pause => {
            if let Err(e) = pause.pause() {
                return Reply::Error(dmalab_protocol::one_line(&e));
            }
        }
        Request::Resume => pause.resume(),
        Request::Status => {
            let gate = pause.status();
            let st = dma.lock();
            return Reply::Status(Status {
                timing: dma.clock.mode().name().to_string(),
                paused: gate.paused,
                vcpus: gate.vcpus,
                parked: gate.parked,
                held: dma.waiting(),
                pauses: gate.pauses,
                paused_ms: u64::try_from(gate.paused_total.as_millis()).unwrap_or(u64::MAX),
                now: st.model.now(),
                next: st.model.next_event(),
            });
        }
        _ => {}
    }
    let mut st = dma.lock();
    match request {
        Request::Version => return Reply::Version(VERSION),
        Request::Now | Request::Pause | Request::Resume | Request::Status => {}
        Request::Step(k) => {
            let to = st.model.now().saturating_add(k);
            st = dma.step(st, Some(to));
        }
        Request::Next => {
            if let Some(t) = st.model.next_event() {
                st = dma.step(st, Some(t));
            }
        }
        Request::Run => st = dma.step(st, None),
        Request::Stats => {
            st.drain();
            return Reply::Stats(Stats {
                now: st.model.now(),
                next: st.model.next_event(),
                tally: st.tally.counters().clone(),
                trace_lost: st.trace_lost(),
            });
        }
    }
    dma.settle(&mut st);
    dma.stepped();
    Reply::Time {
        now: st.model.now(),
        next: st.model.next_event(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma_device::testing::rig;
    use crate::dma_device::{DoorbellMode, TimingMode};
    use device_model::regs::{self, channel_reg};

    fn handle(dma: &Dma, line: &str) -> String {
        super::handle(dma, &PauseGate::new(0), line)
    }

    #[test]
    fn requests_move_stepped_time_and_bad_ones_get_errors() {
        let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
            return;
        };
        let dma = &rig.device.dma;
        rig.post_one_copy();
        assert_eq!(handle(dma, "now"), "ok now=0 next=idle");
        dma.access(|m| m.mmio_write(0, channel_reg(0, regs::CH_TAIL), &1u32.to_le_bytes()));
        let reply = handle(dma, "now");
        assert_eq!(reply, "ok now=0 next=500", "the fetch takes 500 cycles");
        assert_eq!(handle(dma, "step 100"), "ok now=100 next=500");
        let reply = handle(dma, "next");
        assert!(reply.starts_with("ok now=500 next="), "{reply}");
        assert!(!rig.copied(), "time stands still between steps");
        let reply = handle(dma, "run");
        assert!(reply.ends_with("next=idle"), "{reply}");
        assert!(rig.copied());
        let stats = handle(dma, "stats");
        let json: serde_json::Value =
            serde_json::from_str(stats.strip_prefix("ok ").unwrap()).unwrap();
        assert_eq!(json["tally"]["descriptors"], 1, "{json}");
        assert_eq!(json["tally"]["bytes"], 64, "{json}");
        assert_eq!(json["next"], serde_json::Value::Null);
        assert_eq!(handle(dma, "version"), "ok version=2");
        for bad in ["", "step", "step x", "jump", "now 1", "step 1 2"] {
            assert!(handle(dma, bad).starts_with("error "), "{bad:?}");
        }
    }

    #[test]
    fn a_stepped_vcpu_access_waits_until_the_steps_reach_idle() {
        let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
            return;
        };
        let dma = rig.device.dma.clone();
        rig.post_one_copy();
        dma.access(|m| m.mmio_write(0, channel_reg(0, regs::CH_TAIL), &1u32.to_le_bytes()));
        let (tx, rx) = std::sync::mpsc::channel();
        let d2 = dma.clone();
        let reader = std::thread::spawn(move || {
            let seen = d2.access(|m| (m.now(), m.next_event()));
            tx.send(seen).unwrap();
        });
        // The access must be waiting, not done, while the device is busy.
        while dma.waiting() == 0 {
            assert!(
                rx.try_recv().is_err(),
                "the access did not wait for the steps"
            );
            std::thread::yield_now();
        }
        let reply = handle(&dma, "run");
        let (now, next) = rx.recv().unwrap();
        reader.join().unwrap();
        assert_eq!(next, None, "the access acted on an idle device");
        assert_eq!(reply, format!("ok now={now} next=idle"));
    }
}
