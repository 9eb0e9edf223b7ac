//! Long work under the device lock (KVM rig): one doorbell posting
//! ~1.2 Mi model events runs a slice per lock hold, stops between slices
//! when the run ends, and the tally stays exact when a single unsliced run
//! (the control socket's `run`) overflows the model's trace buffer.

use device_model::regs::{self, channel_reg};

use super::testing::{rig, Rig};
use dmalab_protocol::control::{Answer, Line};

use super::{DeviceState, Dma, DoorbellMode, TimingMode};

fn ring_to(dma: &Dma, tail: u32) {
    ring_on(dma, &[0], tail);
}

/// Channels `channels`' doorbells to `tail`, in one access (a stepped
/// device takes no access while it has work).
fn ring_on(dma: &Dma, channels: &[u8], tail: u32) {
    dma.access(|m| {
        for &c in channels {
            m.mmio_write(0, channel_reg(c, regs::CH_TAIL), &tail.to_le_bytes());
        }
    });
}

/// 600 descriptors of 256 KiB on channel 0 (~1.2 Mi model events),
/// posted; the doorbell not rung.
const BIG_N: u32 = 600;
const BIG_LEN: u32 = 256 << 10;

fn post_big(rig: &Rig) {
    post_big_on(rig, 0);
}

/// As `post_big`, on channel `c` (0 or 1: rings at 0x1_0000 and
/// 0x1_8000, completions at 0x2_0000 and 0x2_8000; the same data).
fn post_big_on(rig: &Rig, c: u8) {
    use device_model::descriptor::{Descriptor, FLAG_IOC, OP_COPY};
    use vm_memory::{Bytes, GuestAddress};
    let dma = &rig.device.dma;
    let w = |r, v: u32| dma.access(|m| m.mmio_write(0, channel_reg(c, r), &v.to_le_bytes()));
    let ring = 0x1_0000 + 0x8000 * u32::from(c);
    dma.access(|m| m.config_write(4, &[0x06, 0]));
    w(regs::CH_RING_BASE, ring);
    w(regs::CH_RING_SIZE, 1024);
    w(regs::CH_COMP_BASE, 0x2_0000 + 0x8000 * u32::from(c));
    w(regs::CH_CTRL, regs::CTRL_ENABLE);
    for i in 0..BIG_N {
        let d = Descriptor {
            src: 0x8_0000,
            dst: 0xC_0000,
            len: BIG_LEN,
            op: OP_COPY,
            flags: FLAG_IOC,
            cookie: u64::from(i),
        };
        let at = GuestAddress(u64::from(ring + 32 * i));
        rig.memory.write_slice(&d.to_bytes(), at).unwrap();
    }
}

/// The last completion record: (cookie, bytes, status).
fn last_record(rig: &Rig) -> (u64, u32, u16) {
    use device_model::descriptor::Completion;
    use vm_memory::{Bytes, GuestAddress};
    let mut rec = [0u8; 32];
    let at = GuestAddress(0x2_0000 + 32 * u64::from(BIG_N - 1));
    rig.memory.read_slice(&mut rec, at).unwrap();
    let rec = Completion::from_bytes(&rec);
    (rec.cookie, rec.bytes_done, rec.status)
}

fn assert_exact_tally(st: &DeviceState) {
    assert_exact_tally_of(st, 1);
}

/// As `assert_exact_tally`, for `post_big` on `channels` channels.
fn assert_exact_tally_of(st: &DeviceState, channels: u64) {
    let t = &st.tally;
    let n = channels * u64::from(BIG_N);
    assert_eq!(
        (t.doorbells, t.descriptors, t.completions),
        (channels, n, n)
    );
    let bytes = n * u64::from(BIG_LEN);
    assert_eq!((t.bytes, t.completion_errors), (bytes, 0));
}

/// Instant mode runs one doorbell's 1.2 Mi events a slice per lock
/// hold, draining between slices: the model's buffer never fills. The
/// doorbell's exit took that long: it is noted as time the vCPU was held
/// (stolen from the guest); a plain register read is not.
#[test]
fn instant_mode_runs_a_long_doorbell_in_slices() {
    let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Exit) else {
        return;
    };
    post_big(&rig);
    let _ = crate::pause::take_held();
    let start = std::time::Instant::now();
    ring_to(&rig.device.dma, BIG_N);
    let took = start.elapsed();
    let held = crate::pause::take_held().expect("a long access is noted as held");
    assert!(
        held <= took && held >= super::HELD_FROM,
        "{held:?} of {took:?}"
    );
    // (One of three, in case the host preempts this thread inside one.)
    let short_not_held = (0..3).any(|_| {
        let mut id = [0u8; 4];
        rig.device.dma.access(|m| m.mmio_read(0, regs::ID, &mut id));
        crate::pause::take_held().is_none()
    });
    assert!(short_not_held, "a register read is not noted as held");
    assert_eq!(last_record(&rig), (u64::from(BIG_N - 1), BIG_LEN, 0));
    let mut st = rig.device.dma.lock();
    st.drain();
    assert_eq!(st.model.trace_lost(), 0, "drained between slices");
    assert_exact_tally(&st);
}

/// Once the run is stopping, an access does its register write and no
/// model work.
#[test]
fn instant_mode_does_no_model_work_once_the_run_ends() {
    let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Exit) else {
        return;
    };
    post_big(&rig);
    rig.device.dma.stop();
    ring_to(&rig.device.dma, BIG_N);
    let st = rig.device.dma.lock();
    assert!(st.model.next_event().is_some(), "work left");
    assert_eq!(st.model.counters().completions, 0);
}

/// Realtime: once the run is stopping, neither a timer expiry nor an
/// access moves the model, however far behind host time it is; so after a
/// timeout nothing keeps the device lock busy while the vCPUs stop.
#[test]
fn realtime_does_no_model_work_once_the_run_ends() {
    let Some(rig) = rig(TimingMode::Realtime, DoorbellMode::Exit) else {
        return;
    };
    post_big(&rig);
    let dma = &rig.device.dma;
    ring_to(dma, BIG_N);
    dma.stop();
    let progress = |dma: &Dma| {
        let st = dma.lock();
        let c = st.model.counters();
        (st.model.now(), c.descriptors, c.completions, c.bytes)
    };
    let before = progress(dma);
    dma.on_timer();
    ring_to(dma, BIG_N);
    assert_eq!(progress(dma), before);
    assert!(dma.lock().model.next_event().is_some(), "work left");
}

/// One unsliced run of two channels' doorbells (no drain between
/// slices; their bursts interleave on the bus, one trace event each)
/// overflows the model's trace buffer: the tally is still exact.
#[test]
fn the_tally_is_exact_when_the_model_trace_overflows() {
    let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
        return;
    };
    post_big_on(&rig, 0);
    post_big_on(&rig, 1);
    let dma = &rig.device.dma;
    ring_on(dma, &[0, 1], BIG_N);
    dma.lock().model.run_until_idle();
    assert_eq!(last_record(&rig), (u64::from(BIG_N - 1), BIG_LEN, 0));
    let mut st = dma.lock();
    st.drain();
    assert!(st.model.trace_lost() > 0, "the model's buffer overflowed");
    assert_exact_tally_of(&st, 2);
}

/// A control-socket `run` (`step idle`).
fn run(dma: &Dma) -> Line {
    super::control_socket::handle(dma, &crate::pause::PauseGate::new(0), "run").0
}

/// A control-socket `run` in stepped mode runs a slice per lock hold
/// too, draining between slices (no trace loss), and stops between
/// slices when the run ends.
#[test]
fn a_control_socket_run_goes_in_slices_and_stops_when_the_run_ends() {
    let Some(r) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
        return;
    };
    post_big(&r);
    let dma = &r.device.dma;
    ring_to(dma, BIG_N);
    let holds = dma.holds.holds();
    assert!(matches!(
        run(dma),
        Line::Ok {
            ok: Answer::Time { next: None, .. },
            ..
        }
    ));
    let slices = dma.holds.holds() - holds;
    assert!(slices > 50, "one hold per slice: {slices}");
    assert_eq!(last_record(&r), (u64::from(BIG_N - 1), BIG_LEN, 0));
    let mut st = dma.lock();
    st.drain();
    assert_eq!(st.model.trace_lost(), 0, "drained between slices");
    assert_exact_tally(&st);
    drop(st);

    let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
        return;
    };
    post_big(&rig);
    let dma = &rig.device.dma;
    ring_to(dma, BIG_N);
    dma.stop();
    let reply = run(dma);
    assert!(
        !matches!(
            reply,
            Line::Ok {
                ok: Answer::Time { next: None, .. },
                ..
            }
        ),
        "{reply}"
    );
    assert!(dma.lock().model.counters().completions < 10);
}
