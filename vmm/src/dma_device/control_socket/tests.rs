use super::*;
use crate::dma_device::testing::rig;
use crate::dma_device::DoorbellMode;
use dmalab_protocol::control::StepTo;

fn ask(dma: &Dma, pause: &PauseGate, request: Request) -> Result<Answer, String> {
    match handle(dma, pause, &request.to_line(7)).0 {
        Line::Ok { id: 7, ok } => Ok(ok),
        Line::Error { id: 7, error } => Err(error),
        other => panic!("{other:?}"),
    }
}

fn time(now: u64, next: Option<u64>) -> Result<Answer, String> {
    Ok(Answer::Time { now, next })
}

fn ring(dma: &Dma) {
    dma.access(|m| m.mmio_write(0, channel_reg(0, regs::CH_TAIL), &1u32.to_le_bytes()));
}

#[test]
fn steps_move_stepped_time_and_stop_where_asked() {
    let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
        return;
    };
    let (dma, gate) = (&rig.device.dma, PauseGate::new(0));
    let step = |to| ask(dma, &gate, Request::Step { to });
    rig.post_one_copy();
    assert_eq!(ask(dma, &gate, Request::Now), time(0, None));
    ring(dma);
    assert_eq!(ask(dma, &gate, Request::Now), time(0, Some(500)), "fetch");
    assert_eq!(step(StepTo::Cycles(100)), time(100, Some(500)));
    let Ok(Answer::Time { now, .. }) = step(StepTo::Event) else {
        panic!("step event")
    };
    assert_eq!(now, 500, "the fetch is the next event");
    assert!(!rig.copied(), "time stands still between steps");
    step(StepTo::Completion).unwrap();
    assert!(rig.copied(), "a completion means the data moved");
    let last = {
        let mut st = dma.lock();
        st.drain();
        st.last_completion[0].clone().expect("a completion")
    };
    assert_eq!((last.seq, last.bytes, last.status), (1, 64, 0));
    assert!(step(StepTo::Completion).unwrap_err().contains("went idle"));
    assert!(step(StepTo::Cycles(u64::MAX)).is_err(), "bounded");
    assert_eq!(step(StepTo::Idle), time(dma.lock().model.now(), None));
    let Ok(Answer::Stats(stats)) = ask(dma, &gate, Request::Stats) else {
        panic!("stats")
    };
    assert_eq!((stats.tally.descriptors, stats.tally.bytes), (1, 64));
    let Ok(Answer::Channels(ch)) = ask(dma, &gate, Request::Channels) else {
        panic!("channels")
    };
    assert_eq!((ch[0].ring_size, ch[0].tail, ch[0].in_flight), (16, 1, 0));
    assert_eq!(ch[0].state, "idle");
    let Ok(Answer::Registers(regs)) = ask(dma, &gate, Request::Registers) else {
        panic!("registers")
    };
    assert_eq!(regs.global.id, device_model::regs::ID_VALUE);
    assert_eq!(regs.msix.len(), usize::from(dma.channels) + 1);
    assert_eq!(
        ask(dma, &gate, Request::Version),
        Ok(Answer::Version(VERSION))
    );
    for bad in ["", "step", "step x", "jump", "now 1", "{\"id\":1}"] {
        assert!(
            matches!(handle(dma, &gate, bad).0, Line::Error { .. }),
            "{bad:?}"
        );
    }
}

#[test]
fn step_is_refused_in_realtime_unless_paused() {
    let Some(rig) = rig(TimingMode::Realtime, DoorbellMode::Exit) else {
        return;
    };
    let dma = &rig.device.dma;
    let gate = PauseGate::new(0);
    gate.add_listener(dma.clone());
    let step = || {
        ask(
            dma,
            &gate,
            Request::Step {
                to: StepTo::Cycles(10),
            },
        )
    };
    let refused = step().unwrap_err();
    assert!(refused.contains("paused VM"), "{refused}");
    ask(dma, &gate, Request::Pause).unwrap();
    let before = dma.clock.now_cycles();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(dma.clock.now_cycles(), before, "the paused clock stands");
    assert!(step().is_ok());
    ask(dma, &gate, Request::Resume).unwrap();
    assert!(step().is_err());
}

#[test]
fn an_injected_fault_applies_to_the_next_descriptor_and_is_logged() {
    let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Exit) else {
        return;
    };
    let (dma, gate) = (&rig.device.dma, PauseGate::new(0));
    let inject =
        |effect: serde_json::Value, channel| ask(dma, &gate, Request::Inject { effect, channel });
    assert!(inject("no-such-effect".into(), None).is_err());
    assert!(
        inject("drop-interrupt".into(), Some(99)).is_err(),
        "no channel 99"
    );
    assert_eq!(
        inject("drop-interrupt".into(), Some(0)),
        Ok(Answer::Injected { rule: 0 })
    );
    rig.post_one_copy();
    ring(dma);
    let mut st = dma.lock();
    st.drain();
    assert_eq!(st.tally.faults["drop-interrupt"], vec![1]);
    assert_eq!(st.injected.len(), 1, "kept for the replayable plan");
}

#[test]
fn a_recorded_trace_is_written_at_stop() {
    let Some(rig) = rig(TimingMode::Instant, DoorbellMode::Exit) else {
        return;
    };
    let (dma, gate) = (&rig.device.dma, PauseGate::new(0));
    let path = std::env::temp_dir().join(format!("dmalab-trace-{}.json", std::process::id()));
    let trace = |action, file: Option<&Path>| {
        ask(
            dma,
            &gate,
            Request::Trace {
                action,
                file: file.map(Path::to_path_buf),
            },
        )
    };
    assert!(
        trace(TraceAction::Stop, Some(&path)).is_err(),
        "not started"
    );
    trace(TraceAction::Start, None).unwrap();
    rig.post_one_copy();
    ring(dma);
    trace(TraceAction::Stop, Some(&path)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(text.contains("\"traceEvents\""), "{text}");
}

#[test]
fn a_stepped_vcpu_access_waits_until_the_steps_reach_idle() {
    let Some(rig) = rig(TimingMode::Stepped, DoorbellMode::Exit) else {
        return;
    };
    let dma = rig.device.dma.clone();
    rig.post_one_copy();
    ring(&dma);
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
    let reply = ask(&dma, &PauseGate::new(0), Request::Step { to: StepTo::Idle });
    let (now, next) = rx.recv().unwrap();
    reader.join().unwrap();
    assert_eq!(next, None, "the access acted on an idle device");
    assert_eq!(reply, time(now, None));
}
