//! Typed trace events, each stamped with the device cycle it happened at.
//!
//! Events are small `Copy` values so the hot path only writes them into a
//! reused buffer; the VMM turns them into logs, metrics and trace files.

use crate::fault::FaultEffect;

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Neither MSI-X nor MSI is enabled.
    Disabled,
    /// Bus mastering is off.
    NoBusMaster,
    /// The cause is masked in `INT_MASK` (latched in `INT_STATUS`).
    CauseMasked,
    /// The vector is past the table.
    NoVector,
}

/// Which register space a [`EventKind::RegisterError`] was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// PCI config space.
    Config,
    /// BAR0 registers.
    Bar0,
    /// BAR2 (MSI-X).
    Bar2,
    /// A doorbell call (`Controller::doorbell`).
    Doorbell,
}

/// What was wrong with an ignored access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// Size not allowed or misaligned.
    BadSize,
    /// No register at the offset.
    NoRegister,
    /// A write to a read-only register (or RW* while enabled).
    ReadOnly,
    /// A value-less doorbell without a shadow.
    NoShadow,
    /// A BAR access while memory decoding is off.
    NotDecoded,
}

/// One thing that happened in the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A doorbell: the new tail, and whether it came from the shadow.
    Doorbell {
        /// Channel.
        channel: u8,
        /// New tail.
        tail: u32,
        /// Read from the shadow (value-less kick).
        from_shadow: bool,
    },
    /// A descriptor fetch started.
    FetchStart {
        /// Channel.
        channel: u8,
        /// Ring index.
        index: u32,
    },
    /// A descriptor was fetched and accepted with sequence number `seq`.
    DescriptorFetch {
        /// Channel.
        channel: u8,
        /// Ring index.
        index: u32,
        /// Device-wide sequence number.
        seq: u64,
        /// Length asked.
        len: u32,
    },
    /// A run of one descriptor's bursts on its channel, back to back: the
    /// first granted the bus at `start`, the last finished at the event's
    /// cycle. A burst that starts the cycle the run's last one finished,
    /// for the same descriptor, extends the run in the buffer
    /// (`Trace::push_burst`) instead of adding an event, so a channel
    /// streaming alone costs one event per descriptor, not two per burst.
    /// Every burst of a run but its last is a full `burst_bytes` one.
    Bursts {
        /// Channel.
        channel: u8,
        /// Descriptor sequence number.
        seq: u64,
        /// Cycle the run's first burst was granted the bus.
        start: u64,
        /// Bursts in the run.
        bursts: u32,
        /// Bytes moved by the run.
        bytes: u32,
    },
    /// A completion record was written (or, with `written = false`,
    /// suppressed by a fault or dropped for lack of ring space on abort).
    Completion {
        /// Channel.
        channel: u8,
        /// Descriptor sequence number.
        seq: u64,
        /// Ring index.
        index: u32,
        /// Completion status.
        status: u16,
        /// Bytes moved.
        bytes: u32,
        /// Whether the record reached memory.
        written: bool,
    },
    /// An interrupt cause fired for `vector`.
    MsiRaised {
        /// Vector (channel, or the error vector).
        vector: u16,
    },
    /// The vector is masked: the message is held.
    MsiMasked {
        /// Vector.
        vector: u16,
    },
    /// The vector's pending bit was set.
    MsiPending {
        /// Vector.
        vector: u16,
    },
    /// The message was sent to the sink (slot `slot`: MSI sends on 0).
    MsiDelivered {
        /// Vector (cause).
        vector: u16,
        /// Message slot signalled.
        slot: u16,
    },
    /// The message was not sent.
    MsiDropped {
        /// Vector.
        vector: u16,
        /// Why.
        reason: DropReason,
    },
    /// A fault rule applied to a descriptor.
    FaultApplied {
        /// Descriptor sequence number.
        seq: u64,
        /// Channel.
        channel: u8,
        /// Rule index in the engine.
        rule: u32,
        /// The effect.
        effect: FaultEffect,
    },
    /// An ignored access.
    RegisterError {
        /// Register space.
        space: Space,
        /// Offset in that space (the channel for doorbells).
        offset: u64,
        /// Size of the access.
        size: u8,
        /// What was wrong.
        error: AccessError,
    },
    /// A driver wrote `TRACE_MARKER`.
    DriverMarker {
        /// The value written.
        value: u32,
    },
    /// A channel changed state (`STATUS` state values; error code if any).
    ChannelState {
        /// Channel.
        channel: u8,
        /// New state (`regs::STATE_*`).
        state: u32,
        /// `ERROR_CODE`.
        error: u32,
    },
    /// The device was surprise-removed.
    Removed,
    /// A device reset (`GCTRL.RESET`) or function-level reset (`flr`).
    Reset {
        /// Whether it was an FLR.
        flr: bool,
    },
}

/// A stamped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// Device cycle.
    pub cycle: u64,
    /// What happened.
    pub kind: EventKind,
}

impl EventKind {
    /// The channel the event belongs to, if any (for per-channel tracks).
    pub fn channel(&self) -> Option<u8> {
        match *self {
            EventKind::Doorbell { channel, .. }
            | EventKind::FetchStart { channel, .. }
            | EventKind::DescriptorFetch { channel, .. }
            | EventKind::Bursts { channel, .. }
            | EventKind::Completion { channel, .. }
            | EventKind::FaultApplied { channel, .. }
            | EventKind::ChannelState { channel, .. } => Some(channel),
            _ => None,
        }
    }

    /// A short name for the event kind.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Doorbell { .. } => "doorbell",
            EventKind::FetchStart { .. } => "fetch_start",
            EventKind::DescriptorFetch { .. } => "descriptor_fetch",
            EventKind::Bursts { .. } => "bursts",
            EventKind::Completion { .. } => "completion",
            EventKind::MsiRaised { .. } => "msi_raised",
            EventKind::MsiMasked { .. } => "msi_masked",
            EventKind::MsiPending { .. } => "msi_pending",
            EventKind::MsiDelivered { .. } => "msi_delivered",
            EventKind::MsiDropped { .. } => "msi_dropped",
            EventKind::FaultApplied { .. } => "fault_applied",
            EventKind::RegisterError { .. } => "register_error",
            EventKind::DriverMarker { .. } => "driver_marker",
            EventKind::ChannelState { .. } => "channel_state",
            EventKind::Removed => "removed",
            EventKind::Reset { .. } => "reset",
        }
    }
}
