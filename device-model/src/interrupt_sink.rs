//! Interrupt delivery as a trait: the model decodes MSI-X/MSI state and
//! decides *what* to signal; the VMM implements [`InterruptSink`] and decides
//! *how* (irqfd + GSI routing, or KVM_SIGNAL_MSI). Decode apart from deliver.
//!
//! A "vector" here is the device's message slot: MSI-X table entry *i*, or
//! slot 0 for the single MSI message. The sink learns each slot's current
//! address/data through [`InterruptSink::route_changed`] before the slot is
//! signalled with a new route, so a VMM can keep one irqfd per slot.

/// An MSI/MSI-X message: the memory write the device would issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsiMessage {
    /// Message address (`0xFEEx_xxxx` on x86).
    pub address: u64,
    /// Message data.
    pub data: u32,
}

/// Where the device's interrupts go.
///
/// A VMM keeps one irqfd per slot and re-programs the slot's GSI route when
/// told; a test just records:
///
/// ```
/// use device_model::{InterruptSink, MsiMessage};
///
/// #[derive(Default)]
/// struct Irqfds { routes: Vec<Option<MsiMessage>>, raised: Vec<u16> }
///
/// impl InterruptSink for Irqfds {
///     fn signal(&mut self, vector: u16, _msg: MsiMessage) {
///         self.raised.push(vector); // write the slot's irqfd
///     }
///     fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
///         let v = usize::from(vector);
///         if self.routes.len() <= v {
///             self.routes.resize(v + 1, None);
///         }
///         self.routes[v] = route; // KVM_SET_GSI_ROUTING for the slot's GSI
///     }
/// }
/// let mut sink = Irqfds::default();
/// sink.route_changed(0, Some(MsiMessage { address: 0xFEE0_0000, data: 0x41 }));
/// sink.signal(0, MsiMessage { address: 0xFEE0_0000, data: 0x41 });
/// assert_eq!(sink.raised, [0]);
/// ```
pub trait InterruptSink {
    /// Signal slot `vector` with `msg` (the message currently programmed for
    /// that slot). Called only for unmasked, enabled slots with bus mastering
    /// on.
    fn signal(&mut self, vector: u16, msg: MsiMessage);

    /// Slot `vector` now carries `route` (`None`: the slot is disabled or
    /// masked). Called whenever a table entry's address/data or mask, MSI's
    /// address/data or mask, the function mask, or the MSI-X/MSI enable bits
    /// change the effective message of a slot.
    fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
        let _ = (vector, route);
    }
}

/// A sink that records everything, for tests and tools.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordingSink {
    /// Signals in order: (slot, message).
    pub signals: Vec<(u16, MsiMessage)>,
    /// Route changes in order.
    pub routes: Vec<(u16, Option<MsiMessage>)>,
}

impl RecordingSink {
    /// How many times slot `vector` was signalled.
    pub fn count(&self, vector: u16) -> usize {
        self.signals.iter().filter(|(v, _)| *v == vector).count()
    }
}

impl InterruptSink for RecordingSink {
    fn signal(&mut self, vector: u16, msg: MsiMessage) {
        self.signals.push((vector, msg));
    }

    fn route_changed(&mut self, vector: u16, route: Option<MsiMessage>) {
        self.routes.push((vector, route));
    }
}

/// A sink that counts signals per slot without storing them (benchmarks).
#[derive(Debug, Default, Clone)]
pub struct CountingSink {
    /// Signals per slot.
    pub counts: Vec<u64>,
}

impl InterruptSink for CountingSink {
    fn signal(&mut self, vector: u16, _msg: MsiMessage) {
        let v = usize::from(vector);
        if self.counts.len() <= v {
            self.counts.resize(v + 1, 0);
        }
        self.counts[v] += 1;
    }
}
