//! Exact counters of what the device did, kept beside the trace ring.
//!
//! Every event the device emits is counted here before the ring decides
//! whether it has room for it, so the counters are exact whatever the ring
//! does: full (events lost), drained late, or recording switched off. A
//! report built from them cannot undercount; a report built by tallying the
//! drained events would. Counting is a few additions per event and never
//! allocates.
//!
//! The counters are cumulative from power-on: device resets and FLR do not
//! clear them (they are the host's view, not a register).

use crate::fault::FaultEffect;
use crate::regs::status;

use super::EventKind;

/// Number of fault-effect kinds ([`FaultEffect::KIND_NAMES`]).
const FAULT_KINDS: usize = FaultEffect::KIND_NAMES.len();

/// What the device did since power-on, counted exactly.
///
/// ```
/// use device_model::{Controller, DeviceConfig, RecordingSink};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
/// let cfg = DeviceConfig { trace_capacity: 0, ..DeviceConfig::default() };
/// let mut dev = Controller::new(cfg, mem, RecordingSink::default()).unwrap();
/// dev.mmio_read(0, 0x000, &mut [0u8; 4]); // memory decoding off: ignored
/// assert_eq!(dev.trace_lost(), 1);       // the ring had no room…
/// assert_eq!(dev.counters().register_errors, 1); // …the counter is exact
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Doorbells taken (either path).
    pub doorbells: u64,
    /// Descriptors accepted (fetched, with a sequence number).
    pub descriptors: u64,
    /// Completions (records written or suppressed).
    pub completions: u64,
    /// Completions whose status was an error.
    pub completion_errors: u64,
    /// Bytes moved, as the completions report them.
    pub bytes: u64,
    /// Interrupt causes raised on a channel vector.
    pub channel_raises: u64,
    /// Interrupt causes raised on the error vector.
    pub error_raises: u64,
    /// Messages sent to the interrupt sink.
    pub interrupts_sent: u64,
    /// Messages the function did not send (MSI/MSI-X disabled, no bus
    /// master, cause masked, no such vector).
    pub msi_dropped: u64,
    /// Messages held pending because their vector was masked.
    pub interrupts_masked: u64,
    /// Ignored register accesses (what `BAD_ACCESS` counts, never cleared).
    pub register_errors: u64,
    /// Channels that entered `ERROR`.
    pub channel_errors: u64,
    /// Faults applied, by kind, in [`FaultEffect::KIND_NAMES`] order.
    faults: [u64; FAULT_KINDS],
    /// The number of channels (which vectors are channel vectors).
    channels: u8,
}

impl Counters {
    /// All zero, for a device with `channels` channels.
    pub fn new(channels: u8) -> Counters {
        Counters {
            doorbells: 0,
            descriptors: 0,
            completions: 0,
            completion_errors: 0,
            bytes: 0,
            channel_raises: 0,
            error_raises: 0,
            interrupts_sent: 0,
            msi_dropped: 0,
            interrupts_masked: 0,
            register_errors: 0,
            channel_errors: 0,
            faults: [0; FAULT_KINDS],
            channels,
        }
    }

    /// Counts one emitted event.
    #[inline]
    pub fn count(&mut self, kind: &EventKind) {
        let add = |n: &mut u64| *n = n.saturating_add(1);
        match *kind {
            EventKind::Doorbell { .. } => add(&mut self.doorbells),
            EventKind::DescriptorFetch { .. } => add(&mut self.descriptors),
            EventKind::Completion { status, bytes, .. } => {
                add(&mut self.completions);
                self.bytes = self.bytes.saturating_add(u64::from(bytes));
                if status::is_error(status) {
                    add(&mut self.completion_errors);
                }
            }
            EventKind::MsiRaised { vector } if vector < u16::from(self.channels) => {
                add(&mut self.channel_raises)
            }
            EventKind::MsiRaised { .. } => add(&mut self.error_raises),
            EventKind::MsiDelivered { .. } => add(&mut self.interrupts_sent),
            EventKind::MsiDropped { .. } => add(&mut self.msi_dropped),
            EventKind::MsiPending { .. } => add(&mut self.interrupts_masked),
            EventKind::FaultApplied { effect, .. } => add(&mut self.faults[effect.kind_index()]),
            EventKind::RegisterError { .. } => add(&mut self.register_errors),
            EventKind::ChannelState { error, .. } if error != 0 => add(&mut self.channel_errors),
            _ => {}
        }
    }

    /// Faults of kind `kind` applied.
    pub fn faults_of(&self, kind: &FaultEffect) -> u64 {
        self.faults[kind.kind_index()]
    }

    /// Faults applied, by kind name, kinds that never applied left out.
    pub fn faults(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        FaultEffect::KIND_NAMES
            .iter()
            .zip(self.faults)
            .filter(|&(_, n)| n > 0)
            .map(|(&name, n)| (name, n))
    }

    /// Faults applied in all.
    pub fn faults_applied(&self) -> u64 {
        self.faults.iter().fold(0, |a, &n| a.saturating_add(n))
    }

    /// Interrupts that sent nothing: dropped by the function, or by a
    /// drop-interrupt fault.
    pub fn interrupts_dropped(&self) -> u64 {
        self.msi_dropped
            .saturating_add(self.faults_of(&FaultEffect::DropInterrupt))
    }

    /// Interrupts a delay-interrupt fault postponed.
    pub fn interrupts_delayed(&self) -> u64 {
        self.faults_of(&FaultEffect::DelayInterrupt { cycles: 0 })
    }

    /// Completions that raised no channel interrupt of their own: they
    /// shared one (coalescing) or asked for none (no IOC flag). Completions
    /// minus channel-vector causes, dropped and delayed ones; never below 0.
    pub fn interrupts_coalesced(&self) -> u64 {
        let own = self
            .channel_raises
            .saturating_add(self.interrupts_dropped())
            .saturating_add(self.interrupts_delayed());
        self.completions.saturating_sub(own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::DropReason;

    #[test]
    fn events_are_counted_by_what_they_mean() {
        let mut c = Counters::new(2);
        let completion = |status, bytes| EventKind::Completion {
            channel: 0,
            seq: 1,
            index: 0,
            status,
            bytes,
            written: true,
        };
        let fault = |effect| EventKind::FaultApplied {
            seq: 1,
            channel: 0,
            rule: 0,
            effect,
        };
        for kind in [
            completion(status::OK, 64),
            completion(status::ERR_SRC, 0),
            completion(status::OK, 64),
            completion(status::OK, 64),
            EventKind::MsiRaised { vector: 0 },
            EventKind::MsiRaised { vector: 2 },
            EventKind::MsiDelivered { vector: 0, slot: 0 },
            EventKind::MsiDropped {
                vector: 2,
                reason: DropReason::CauseMasked,
            },
            fault(FaultEffect::DropInterrupt),
            fault(FaultEffect::DropInterrupt),
            fault(FaultEffect::Hang),
            EventKind::ChannelState {
                channel: 1,
                state: crate::regs::STATE_ERROR,
                error: 7,
            },
            EventKind::ChannelState {
                channel: 1,
                state: crate::regs::STATE_HALTED,
                error: 0,
            },
        ] {
            c.count(&kind);
        }
        assert_eq!((c.completions, c.completion_errors, c.bytes), (4, 1, 192));
        assert_eq!((c.channel_raises, c.error_raises), (1, 1));
        assert_eq!((c.interrupts_sent, c.interrupts_dropped()), (1, 3));
        assert_eq!(
            c.interrupts_coalesced(),
            0,
            "4 completions, 1 raised, 3 dropped"
        );
        assert_eq!(c.channel_errors, 1);
        assert_eq!(c.faults_applied(), 3);
        let kinds: Vec<_> = c.faults().collect();
        assert_eq!(kinds, [("drop-interrupt", 2), ("hang", 1)]);
    }
}
