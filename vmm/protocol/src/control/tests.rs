use super::*;

#[test]
fn requests_read_back_as_written_in_json_and_in_words() {
    let all = [
        Request::Version,
        Request::Status,
        Request::Pause,
        Request::Resume,
        Request::Now,
        Request::Step {
            to: StepTo::Cycles(100),
        },
        Request::Step {
            to: StepTo::Completion,
        },
        Request::Inject {
            effect: "drop-interrupt".into(),
            channel: Some(1),
        },
        Request::Channels,
        Request::Registers,
        Request::Vcpu { index: 0 },
        Request::Stats,
        Request::Watch,
        Request::Unwatch,
        Request::Trace {
            action: TraceAction::Stop,
            file: Some("/tmp/t.json".into()),
        },
    ];
    for (id, r) in (1u64..).zip(all) {
        assert_eq!(Request::parse_line(&r.to_line(id)), Ok((id, r.clone())));
    }
    let words = |s: &str| Request::parse_line(s).map(|(_, r)| r);
    assert_eq!(
        words("  step   7 "),
        Ok(Request::Step {
            to: StepTo::Cycles(7)
        })
    );
    assert_eq!(words("next"), Ok(Request::Step { to: StepTo::Event }));
    assert_eq!(
        words("inject delay-interrupt cycles=5000 channel=2"),
        Ok(Request::Inject {
            effect: serde_json::json!({"kind": "delay-interrupt", "cycles": 5000}),
            channel: Some(2)
        })
    );
    for bad in [
        "",
        "step",
        "step x",
        "jump",
        "now 1",
        "step 1 2",
        "vcpu",
        "inject",
        "inject drop-interrupt channel=x",
        "trace stop",
    ] {
        assert!(Request::parse_line(bad).is_err(), "{bad:?}");
    }
    for (bad, id) in [
        (r#"{"id":4,"cmd":"jump"}"#, 4),
        (r#"{"cmd":"status"}"#, 0),
        (r#"{"id":5,"cmd":"status","extra":1}"#, 5),
        (r#"{"id":6"#, 0),
        ("[1]", 0),
    ] {
        match Request::parse_line(bad) {
            Err((got, _)) => assert_eq!(got, id, "{bad}"),
            Ok(r) => panic!("{bad} parsed as {r:?}"),
        }
    }
}

#[test]
fn lines_read_back_as_written() {
    let stats = Stats {
        now: 5,
        next: None,
        tally: crate::report::DeviceCounters {
            descriptors: 1,
            ..Default::default()
        },
        trace_lost: 0,
    };
    let lines = [
        Line::reply(1, Ok(Answer::Version(VERSION))),
        Line::reply(2, Ok(Answer::Time { now: 0, next: None })),
        Line::reply(3, Ok(Answer::Stats(stats))),
        Line::reply(4, Ok(Answer::Injected { rule: 2 })),
        Line::reply(5, Ok(Answer::Done)),
        Line::reply(6, Err("the VM is not paused".into())),
        Line::Event {
            event: Event {
                cycle: 9,
                ns: 9,
                host_us: 10,
                channel: Some(0),
                what: "completion".into(),
                guest_us: None,
                detail: "seq 1".into(),
            },
        },
    ];
    for line in lines {
        assert_eq!(Line::parse(&line.to_string()), Ok(line.clone()), "{line}");
    }
    assert_eq!(
        Line::reply(2, Ok(Answer::Time { now: 1, next: None })).to_string(),
        r#"{"id":2,"ok":{"time":{"now":1,"next":null}}}"#
    );
    assert!(Line::parse("ok now=1").is_err());
}
