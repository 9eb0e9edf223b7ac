//! The PCI function: config space, MSI-X table/PBA, MSI, and interrupt
//! delivery decisions (spec §2).
//!
//! This file decides whether a fired vector is sent, held pending or
//! dropped, and tells the [`InterruptSink`] about route changes; the sink
//! (the VMM) does the delivery. `config.rs` holds the header bytes,
//! `msix.rs` the table, `msi.rs` the MSI fields.

pub mod config;
pub mod msi;
pub mod msix;

use crate::interrupt_sink::{InterruptSink, MsiMessage};
use crate::trace::{DropReason, EventKind, Trace};

use config::{ConfigSpace, AF_CAP, AF_FLR, BAR0, BAR0_SIZE, BAR2_SIZE, CONFIG_SIZE, MSIX_CAP};
use msix::MsixTable;

/// MSI-X message control register offset.
const MSIX_CONTROL: usize = MSIX_CAP + 2;
/// MSI-X control: function mask.
const MSIX_FUNCTION_MASK: u16 = 1 << 14;
/// MSI-X control: enable.
const MSIX_ENABLE: u16 = 1 << 15;

/// A BAR moved: the VMM must re-register its MMIO range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarReprogrammed {
    /// BAR index (0 or 2).
    pub bar: u8,
    /// Previous address (as last reported; 0 at reset).
    pub old: u64,
    /// New address.
    pub new: u64,
    /// BAR size.
    pub size: u64,
}

/// What a config write asks of the device beyond storing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigWriteEffects {
    /// A BAR moved.
    pub bar: Option<BarReprogrammed>,
    /// FLR was initiated.
    pub flr: bool,
}

/// The function's PCI state.
#[derive(Debug, Clone)]
pub struct PciFunction {
    cfg: ConfigSpace,
    msix: MsixTable,
    vectors: u16,
    routes: Vec<Option<MsiMessage>>,
    reported_bar: [u64; 2],
}

impl PciFunction {
    /// Power-on state with `vectors` MSI-X vectors.
    pub fn new(vectors: u16) -> PciFunction {
        PciFunction {
            cfg: ConfigSpace::new(vectors),
            msix: MsixTable::new(vectors),
            vectors,
            routes: vec![None; usize::from(vectors)],
            reported_bar: [0; 2],
        }
    }

    /// Config space (read-only view).
    pub fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    /// Config space, device side.
    pub fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    /// The MSI-X table.
    pub fn msix(&self) -> &MsixTable {
        &self.msix
    }

    /// Whether a config access of `len` bytes at `offset` is well formed.
    pub fn config_access_ok(offset: u64, len: usize) -> bool {
        matches!(len, 1 | 2 | 4) && offset % len as u64 == 0 && offset < CONFIG_SIZE as u64
    }

    /// A guest config write (already checked with `config_access_ok`).
    pub fn config_write<S: InterruptSink>(
        &mut self,
        offset: usize,
        data: &[u8],
        sink: &mut S,
        trace: &mut Trace,
        cycle: u64,
    ) -> ConfigWriteEffects {
        self.cfg.write(offset, data);
        let mut fx = ConfigWriteEffects::default();
        if (AF_CAP + 4..AF_CAP + 5).contains(&offset) && self.cfg.u8_at(AF_CAP + 4) & AF_FLR != 0 {
            self.cfg.set8(AF_CAP + 4, 0);
            fx.flr = true;
            return fx;
        }
        let sizing = data.iter().all(|&b| b == 0xFF);
        if (BAR0..BAR0 + 24).contains(&offset) && !sizing {
            fx.bar = self.bar_change();
        }
        self.refresh(sink, trace, cycle);
        fx
    }

    fn bar_change(&mut self) -> Option<BarReprogrammed> {
        for (slot, (bar, size)) in [(0u8, BAR0_SIZE), (2u8, BAR2_SIZE)].into_iter().enumerate() {
            let new = self.cfg.bar_address(usize::from(bar));
            let old = self.reported_bar[slot];
            if new != old {
                self.reported_bar[slot] = new;
                return Some(BarReprogrammed {
                    bar,
                    old,
                    new,
                    size,
                });
            }
        }
        None
    }

    /// A guest BAR2 read.
    pub fn bar2_read(&self, offset: u64, data: &mut [u8]) -> Result<(), msix::MsixAccessError> {
        self.msix.read(offset, data)
    }

    /// A guest BAR2 write.
    pub fn bar2_write<S: InterruptSink>(
        &mut self,
        offset: u64,
        data: &[u8],
        sink: &mut S,
        trace: &mut Trace,
        cycle: u64,
    ) -> Result<(), msix::MsixAccessError> {
        self.msix.write(offset, data)?;
        self.refresh(sink, trace, cycle);
        Ok(())
    }

    fn msix_control(&self) -> u16 {
        self.cfg.u16_at(MSIX_CONTROL)
    }

    fn msix_enabled(&self) -> bool {
        self.msix_control() & MSIX_ENABLE != 0
    }

    /// The message slot `v` sends now; `None` while it cannot send
    /// (disabled, or masked: a VMM then removes its route, and gets it
    /// back through `route_changed` before the unmask releases a pending
    /// message).
    fn route(&self, v: usize) -> Option<MsiMessage> {
        if self.msix_enabled() {
            if self.msix_control() & MSIX_FUNCTION_MASK != 0 || self.msix.masked(v) {
                return None;
            }
            self.msix.message(v)
        } else if msi::enabled(&self.cfg) && v == 0 && !msi::masked(&self.cfg) {
            Some(msi::message(&self.cfg))
        } else {
            None
        }
    }

    /// Re-derives routes (telling the sink of changes) and sends messages
    /// that an unmask released.
    fn refresh<S: InterruptSink>(&mut self, sink: &mut S, trace: &mut Trace, cycle: u64) {
        for v in 0..self.vectors {
            let r = self.route(usize::from(v));
            if self.routes[usize::from(v)] != r {
                self.routes[usize::from(v)] = r;
                sink.route_changed(v, r);
            }
        }
        self.release_pending(sink, trace, cycle);
    }

    /// Sends pending messages whose masks are now clear.
    pub fn release_pending<S: InterruptSink>(
        &mut self,
        sink: &mut S,
        trace: &mut Trace,
        cycle: u64,
    ) {
        if !self.cfg.bus_master() {
            return;
        }
        if self.msix_enabled() {
            if self.msix_control() & MSIX_FUNCTION_MASK != 0 || self.msix.pba() == 0 {
                return;
            }
            for v in 0..self.vectors {
                let i = usize::from(v);
                if self.msix.pending(i) && !self.msix.masked(i) {
                    self.msix.set_pending(i, false);
                    self.send(v, v, sink, trace, cycle);
                }
            }
        } else if msi::enabled(&self.cfg) && msi::pending(&self.cfg) && !msi::masked(&self.cfg) {
            msi::set_pending(&mut self.cfg, false);
            self.send(0, 0, sink, trace, cycle);
        }
    }

    fn send<S: InterruptSink>(
        &self,
        vector: u16,
        slot: u16,
        sink: &mut S,
        trace: &mut Trace,
        cycle: u64,
    ) {
        if let Some(msg) = self.route(usize::from(slot)) {
            sink.signal(slot, msg);
            trace.push(cycle, EventKind::MsiDelivered { vector, slot });
        }
    }

    /// A cause fired on `vector`: send, hold pending, or drop.
    pub fn deliver<S: InterruptSink>(
        &mut self,
        vector: u16,
        sink: &mut S,
        trace: &mut Trace,
        cycle: u64,
    ) {
        let drop =
            |trace: &mut Trace, reason| trace.push(cycle, EventKind::MsiDropped { vector, reason });
        if vector >= self.vectors {
            return drop(trace, DropReason::NoVector);
        }
        if !self.cfg.bus_master() {
            return drop(trace, DropReason::NoBusMaster);
        }
        let v = usize::from(vector);
        if self.msix_enabled() {
            if self.msix_control() & MSIX_FUNCTION_MASK != 0 || self.msix.masked(v) {
                self.msix.set_pending(v, true);
                trace.push(cycle, EventKind::MsiMasked { vector });
                trace.push(cycle, EventKind::MsiPending { vector });
                return;
            }
            return self.send(vector, vector, sink, trace, cycle);
        }
        if msi::enabled(&self.cfg) {
            if msi::masked(&self.cfg) {
                msi::set_pending(&mut self.cfg, true);
                trace.push(cycle, EventKind::MsiMasked { vector });
                trace.push(cycle, EventKind::MsiPending { vector });
                return;
            }
            return self.send(vector, 0, sink, trace, cycle);
        }
        drop(trace, DropReason::Disabled)
    }

    /// Function-level reset: back to power-on; routes reported as gone.
    pub fn reset<S: InterruptSink>(&mut self, sink: &mut S) {
        self.cfg = ConfigSpace::new(self.vectors);
        self.msix = MsixTable::new(self.vectors);
        self.reported_bar = [0; 2];
        for v in 0..self.vectors {
            if self.routes[usize::from(v)].take().is_some() {
                sink.route_changed(v, None);
            }
        }
    }

    /// BAR addresses: (index, address, size) for BAR0 and BAR2.
    pub fn bars(&self) -> [(u8, u64, u64); 2] {
        [
            (0, self.cfg.bar_address(0), BAR0_SIZE),
            (2, self.cfg.bar_address(2), BAR2_SIZE),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt_sink::RecordingSink;

    fn setup() -> (PciFunction, RecordingSink, Trace) {
        (
            PciFunction::new(5),
            RecordingSink::default(),
            Trace::new(100, true, 1),
        )
    }

    fn w32(
        p: &mut PciFunction,
        s: &mut RecordingSink,
        t: &mut Trace,
        off: usize,
        v: u32,
    ) -> ConfigWriteEffects {
        p.config_write(off, &v.to_le_bytes(), s, t, 0)
    }

    #[test]
    fn bar_move_is_reported_once_and_sizing_is_not() {
        let (mut p, mut s, mut t) = setup();
        let fx = w32(&mut p, &mut s, &mut t, BAR0, 0xFFFF_FFFF);
        assert_eq!(fx.bar, None);
        let fx = w32(&mut p, &mut s, &mut t, BAR0, 0xC000_0000);
        assert_eq!(
            fx.bar,
            Some(BarReprogrammed {
                bar: 0,
                old: 0,
                new: 0xC000_0000,
                size: BAR0_SIZE
            })
        );
        assert_eq!(w32(&mut p, &mut s, &mut t, BAR0, 0xC000_0000).bar, None);
        let fx = w32(&mut p, &mut s, &mut t, BAR0 + 8, 0xC000_1000);
        assert_eq!(fx.bar.unwrap().bar, 2);
    }

    #[test]
    fn masked_vector_goes_pending_and_is_delivered_on_unmask() {
        let (mut p, mut s, mut t) = setup();
        w32(&mut p, &mut s, &mut t, 4, 0x6); // memory + bus master
        p.bar2_write(0, &0xFEE0_0000u32.to_le_bytes(), &mut s, &mut t, 0)
            .unwrap();
        p.bar2_write(8, &0x30u32.to_le_bytes(), &mut s, &mut t, 0)
            .unwrap();
        w32(&mut p, &mut s, &mut t, MSIX_CAP, 0x8000_0000); // enable MSI-X (control in the upper half)
        assert!(s.routes.is_empty(), "masked vectors have no route");
        p.deliver(0, &mut s, &mut t, 1);
        assert!(s.signals.is_empty());
        assert!(p.msix().pending(0));
        p.bar2_write(12, &0u32.to_le_bytes(), &mut s, &mut t, 2)
            .unwrap();
        let routed = MsiMessage {
            address: 0xFEE0_0000,
            data: 0x30,
        };
        assert_eq!(s.routes, vec![(0, Some(routed))], "unmask routes first");
        assert_eq!(
            s.signals,
            vec![(
                0,
                MsiMessage {
                    address: 0xFEE0_0000,
                    data: 0x30
                }
            )]
        );
        assert!(!p.msix().pending(0));
        p.deliver(0, &mut s, &mut t, 3);
        assert_eq!(s.signals.len(), 2);
    }

    #[test]
    fn function_mask_holds_all_vectors() {
        let (mut p, mut s, mut t) = setup();
        w32(&mut p, &mut s, &mut t, 4, 0x6);
        p.bar2_write(12, &0u32.to_le_bytes(), &mut s, &mut t, 0)
            .unwrap();
        w32(&mut p, &mut s, &mut t, MSIX_CAP, 0xC000_0000);
        p.deliver(0, &mut s, &mut t, 0);
        assert!(s.signals.is_empty());
        w32(&mut p, &mut s, &mut t, MSIX_CAP, 0x8000_0000);
        assert_eq!(s.signals.len(), 1);
    }

    #[test]
    fn no_bus_master_or_no_enable_drops() {
        let (mut p, mut s, mut t) = setup();
        p.deliver(0, &mut s, &mut t, 0);
        w32(&mut p, &mut s, &mut t, 4, 0x6);
        p.deliver(0, &mut s, &mut t, 0);
        p.deliver(9, &mut s, &mut t, 0);
        let reasons: Vec<_> = t.events().iter().map(|e| e.kind).collect();
        assert_eq!(
            reasons,
            vec![
                EventKind::MsiDropped {
                    vector: 0,
                    reason: DropReason::NoBusMaster
                },
                EventKind::MsiDropped {
                    vector: 0,
                    reason: DropReason::Disabled
                },
                EventKind::MsiDropped {
                    vector: 9,
                    reason: DropReason::NoVector
                },
            ]
        );
        assert!(s.signals.is_empty());
    }

    #[test]
    fn msi_fallback_sends_every_cause_on_slot_zero_and_honours_mask() {
        let (mut p, mut s, mut t) = setup();
        w32(&mut p, &mut s, &mut t, 4, 0x6);
        w32(&mut p, &mut s, &mut t, config::MSI_CAP + 4, 0xFEE0_0000);
        w32(&mut p, &mut s, &mut t, config::MSI_CAP + 12, 0x45);
        w32(&mut p, &mut s, &mut t, config::MSI_CAP + 16, 1);
        w32(&mut p, &mut s, &mut t, config::MSI_CAP, 0x0001_0000);
        p.deliver(3, &mut s, &mut t, 0);
        assert!(s.signals.is_empty() && msi::pending(p.config()));
        w32(&mut p, &mut s, &mut t, config::MSI_CAP + 16, 0);
        assert_eq!(
            s.signals,
            vec![(
                0,
                MsiMessage {
                    address: 0xFEE0_0000,
                    data: 0x45
                }
            )]
        );
    }

    #[test]
    fn flr_request_is_reported_and_reset_clears() {
        let (mut p, mut s, mut t) = setup();
        w32(&mut p, &mut s, &mut t, 4, 0x6);
        let fx = p.config_write(AF_CAP + 4, &[1], &mut s, &mut t, 0);
        assert!(fx.flr);
        p.reset(&mut s);
        assert_eq!(p.config().command(), 0);
    }
}
