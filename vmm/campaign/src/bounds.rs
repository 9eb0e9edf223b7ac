//! What the driver's counters may reach against the host's fault log:
//! the kinds of fault that break a transfer, the upper bounds on the
//! driver's recovery counters, and the failures that need a fault to
//! happen at all. The oracle (`oracle.rs`) applies them.

/// An upper bound: `field <= sum of the applied faults of kinds` (plus
/// `latency-spike` and `delay-interrupt` in realtime when `slow`: there a
/// slow descriptor takes real time and can outlast the watchdog). Each one
/// held on 1,000 random plans (seeds 42 and 7) and every named scenario;
/// `docs/campaign.md` says why each holds.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub field: &'static str,
    pub kinds: &'static [&'static str],
    pub slow: bool,
}

/// Kinds that break a transfer so that the driver retries or fails it
/// (the failure block also shows the fault log around them).
pub const BREAKING: &[&str] = &[
    "dma-error",
    "fetch-error",
    "halt",
    "hang",
    "missing-completion",
    "stale-completion",
    "short-transfer",
    "surprise-removal",
];

/// The breaking kinds a driver answers with a retry or a reset: all but
/// `surprise-removal`.
const RETRIED: &[&str] = &[
    "dma-error",
    "fetch-error",
    "halt",
    "hang",
    "missing-completion",
    "stale-completion",
    "short-transfer",
];

/// The driver's counters against the host's fault log.
pub const BOUNDS: &[Bound] = &[
    // A lost interrupt is one the device dropped (or, in realtime, one
    // delayed past the watchdog's grace).
    Bound {
        field: "watchdog_recoveries",
        kinds: &["drop-interrupt", "delay-interrupt"],
        slow: false,
    },
    // No record within the timeout: hung, no record, a stale one, or gone.
    Bound {
        field: "watchdog_timeouts",
        kinds: &[
            "hang",
            "missing-completion",
            "stale-completion",
            "surprise-removal",
        ],
        slow: true,
    },
    // Every retry and reset answers an injected fault, and never a
    // removal: after one the driver fails requests with
    // STATUS_DEVICE_REMOVED, it does not repost them (its reset reads
    // STATUS first and, all ones, gives up before resetting).
    Bound {
        field: "retries",
        kinds: RETRIED,
        slow: true,
    },
    Bound {
        field: "resets",
        kinds: RETRIED,
        slow: true,
    },
    // Records by status: each error status comes from its fault, or is a
    // stale copy of an earlier record.
    Bound {
        field: "short_transfers",
        kinds: &["short-transfer"],
        slow: false,
    },
    Bound {
        field: "rec_short",
        kinds: &["short-transfer", "stale-completion"],
        slow: false,
    },
    Bound {
        field: "rec_err_dma",
        kinds: &["dma-error", "stale-completion"],
        slow: false,
    },
    Bound {
        field: "rec_err_fetch",
        kinds: &["fetch-error", "stale-completion"],
        slow: false,
    },
    Bound {
        field: "rec_err_halted",
        kinds: &["halt", "stale-completion"],
        slow: false,
    },
    Bound {
        field: "rec_err_other",
        kinds: &["stale-completion"],
        slow: false,
    },
    // Failures by NTSTATUS, each from the faults that can cause it.
    Bound {
        field: "fail_hw",
        kinds: &["dma-error", "halt"],
        slow: false,
    },
    Bound {
        field: "fail_param",
        kinds: &[],
        slow: false,
    },
];

/// How many transfers one fault of `kind` can break: a surprise removal
/// takes the whole device, with a transfer in flight on each channel
/// (`stress` on 4 channels: 4 watchdog timeouts for 1 removal).
pub(crate) fn weight(kind: &str) -> u64 {
    if kind == "surprise-removal" {
        u64::from(device_model::DeviceConfig::default().channels)
    } else {
        1
    }
}

/// Failures that need a fault of these kinds to happen at all.
pub(crate) const CAUSES: &[(&str, &[&str], bool)] = &[
    ("fail_removed", &["surprise-removal"], false),
    (
        "fail_timeout",
        &[
            "hang",
            "missing-completion",
            "stale-completion",
            "halt",
            "surprise-removal",
        ],
        true,
    ),
    ("fail_io", BREAKING, false),
    // Any failure; not a bound: after a surprise removal every later IRP
    // fails at once.
    ("irps_failed", BREAKING, true),
];
