//! A driver's `TRACE_MARKER` value, decoded: kind in bits 31:24, channel
//! in 23:16, an argument in 15:0. The one definition of the kinds on the
//! host side; the WDM-style guest driver writes them
//! (`guest-driver/kernel/dmadev.h`, `DMA_MARK_*`; `docs/dma-driver.md`).
//!
//! A routine's run is a pair: a begin marker (its argument the IRP's tag)
//! and an end marker, the begin kind with bit 7 set, whose argument is the
//! routine's own time as the guest measured it with its TSC, in µs
//! (steal time left out, 1 at least, 0xFFFF at most; 0 when the VMM left
//! it out of a trace). IRP start and IRP completion are
//! single markers carrying the tag: the two ends of an IRP's async span.

/// What a marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A routine began (argument: the channel's IRP tag).
    Begin(Routine),
    /// It ended (argument: its own guest time in µs).
    End(Routine),
    /// StartIo took an IRP (argument: its tag).
    IrpStart,
    /// The IRP was completed (argument: its tag).
    IrpComplete,
    /// A kind this side does not know.
    Other,
}

/// The driver routines markers pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routine {
    Isr,
    DpcForIsr,
    /// The watchdog's timer DPC, when it acts on a channel.
    TimerDpc,
    StartIo,
}

/// Kind numbers (bits 31:24).
pub const ISR: u32 = 1;
pub const DPC: u32 = 2;
pub const IRP_COMPLETE: u32 = 3;
pub const TIMER_DPC: u32 = 4;
pub const IRP_START: u32 = 5;
pub const START_IO: u32 = 6;
/// Set in an end marker's kind.
pub const END: u32 = 0x80;

impl Routine {
    /// Its name in traces and watch lines.
    pub fn name(self) -> &'static str {
        match self {
            Routine::Isr => "isr",
            Routine::DpcForIsr => "dpc",
            Routine::TimerDpc => "timer-dpc",
            Routine::StartIo => "start-io",
        }
    }

    /// Its name as a trace viewer shows the span.
    pub fn title(self) -> &'static str {
        match self {
            Routine::Isr => "ISR",
            Routine::DpcForIsr => "DpcForIsr",
            Routine::TimerDpc => "timer DPC",
            Routine::StartIo => "StartIo",
        }
    }
}

impl Marker {
    /// Decodes a `TRACE_MARKER` value.
    pub fn of(value: u32) -> Marker {
        let kind = value >> 24;
        let routine = match kind & !END {
            ISR => Some(Routine::Isr),
            DPC => Some(Routine::DpcForIsr),
            TIMER_DPC => Some(Routine::TimerDpc),
            START_IO => Some(Routine::StartIo),
            _ => None,
        };
        match (kind, routine) {
            (IRP_START, _) => Marker::IrpStart,
            (IRP_COMPLETE, _) => Marker::IrpComplete,
            (k, Some(r)) if k & END != 0 => Marker::End(r),
            (_, Some(r)) => Marker::Begin(r),
            _ => Marker::Other,
        }
    }
}

/// The channel a marker names (bits 23:16).
pub fn channel(value: u32) -> u8 {
    u8::try_from((value >> 16) & 0xff).unwrap_or(u8::MAX)
}

/// Its argument (bits 15:0): a tag, or an end marker's guest µs.
pub fn argument(value: u32) -> u16 {
    u16::try_from(value & 0xffff).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decode_into_pairs_and_irp_ends() {
        assert_eq!(Marker::of(0x0102_0007), Marker::Begin(Routine::Isr));
        assert_eq!(Marker::of(0x8102_0019), Marker::End(Routine::Isr));
        assert_eq!(Marker::of(0x0600_0000), Marker::Begin(Routine::StartIo));
        assert_eq!(Marker::of(0x8400_0000), Marker::End(Routine::TimerDpc));
        assert_eq!(Marker::of(0x0500_0001), Marker::IrpStart);
        assert_eq!(Marker::of(0x0300_0001), Marker::IrpComplete);
        assert_eq!(Marker::of(0x8500_0001), Marker::Other);
        assert_eq!(Marker::of(0x4200_0000), Marker::Other);
        assert_eq!((channel(0x8102_0019), argument(0x8102_0019)), (2, 0x19));
    }
}
