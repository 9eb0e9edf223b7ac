//! COM1: a vm-superio 16550 UART at ports 0x3F8–0x3FF whose transmitter
//! writes to `dmalab`'s stdout.
//!
//! vm-superio flushes its writer after every byte; `ConsoleOut` makes that
//! cheap by buffering and writing to the sink once per completed line (or
//! when 4 KiB pile up, or when the VMM calls `flush_pending` at the end of
//! the run, so a last line without a newline is not lost). Bytes arrive one
//! write per byte: split by the vCPU loop from a `rep outsb` exit, or
//! replayed from KVM's coalesced ring (`vm::coalesce_console`); they only
//! append here, so a line costs one `write(2)`.
//!
//! The interrupt line is an eventfd registered as irqfd for GSI 4 (COM1's
//! ISA IRQ on the in-kernel IOAPIC); the dmalab guest never enables UART
//! interrupts, but a guest that does gets them. Input is not connected.

use std::io::{self, Write};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::bus::BusDevice;
use super::guest_log;

pub const COM1_PORT: u16 = 0x3f8;
pub const COM1_PORTS: u16 = 8;
pub const COM1_GSI: u32 = 4;

const FLUSH_AT: usize = 4096;

/// The UART's interrupt: an eventfd the VM registers as irqfd.
#[derive(Debug)]
pub struct IrqEvent(pub EventFd);

impl Trigger for IrqEvent {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// Line-buffered sink for the transmitter.
#[derive(Debug)]
pub struct ConsoleOut<W: Write> {
    sink: W,
    pending: Vec<u8>,
}

impl<W: Write> ConsoleOut<W> {
    pub fn new(sink: W) -> Self {
        Self {
            sink,
            pending: Vec::with_capacity(FLUSH_AT),
        }
    }

    /// Writes out whatever is buffered.
    pub fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .sink
            .write_all(&self.pending)
            .and_then(|()| self.sink.flush());
        self.pending.clear();
        result
    }

    pub fn sink(&self) -> &W {
        &self.sink
    }
}

impl<W: Write> Write for ConsoleOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if buf.contains(&b'\n') || self.pending.len() >= FLUSH_AT {
            self.flush_pending()?;
        }
        Ok(buf.len())
    }

    /// Deliberately lazy: vm-superio calls this after every byte.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// COM1 as a bus device.
pub struct SerialDevice<T: Trigger, W: Write> {
    uart: Serial<T, vm_superio::serial::NoEvents, ConsoleOut<W>>,
}

impl<T: Trigger, W: Write> std::fmt::Debug for SerialDevice<T, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDevice").finish_non_exhaustive()
    }
}

impl<T: Trigger, W: Write> SerialDevice<T, W> {
    pub fn new(trigger: T, sink: W) -> Self {
        Self {
            uart: Serial::new(trigger, ConsoleOut::new(sink)),
        }
    }

    /// Writes out a partial last line (end of run).
    pub fn flush_pending(&mut self) -> io::Result<()> {
        self.uart.writer_mut().flush_pending()
    }

    pub fn sink(&self) -> &W {
        self.uart.writer().sink()
    }
}

impl<T: Trigger + Send, W: Write + Send> BusDevice for SerialDevice<T, W> {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match u8::try_from(offset + i as u64) {
                Ok(reg) => self.uart.read(reg),
                Err(_) => 0xff,
            };
        }
    }

    /// A wider access writes consecutive registers, byte lane by byte lane,
    /// as on an ISA bus.
    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        for (i, &byte) in data.iter().enumerate() {
            let Ok(reg) = u8::try_from(offset + i as u64) else {
                return;
            };
            if let Err(e) = self.uart.write(reg, byte) {
                guest_log::warn(format_args!("COM1 output lost: {e:?}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[derive(Default, Clone)]
    struct CountingTrigger(Arc<AtomicU32>);
    impl Trigger for CountingTrigger {
        type E = ();
        fn trigger(&self) -> Result<(), ()> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    /// Counts the writes that reach the sink.
    #[derive(Default)]
    struct Sink {
        bytes: Vec<u8>,
        writes: usize,
    }
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            self.writes += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn put(dev: &mut SerialDevice<CountingTrigger, Sink>, text: &[u8]) {
        for b in text {
            dev.write(u64::from(COM1_PORT), 0, &[*b]);
        }
    }

    #[test]
    fn output_is_written_once_per_line() {
        let mut dev = SerialDevice::new(CountingTrigger::default(), Sink::default());
        put(&mut dev, b"hello from");
        assert_eq!(dev.sink().writes, 0, "no newline yet");
        put(&mut dev, b" user mode\nDMALAB");
        assert_eq!(dev.sink().bytes, b"hello from user mode\n");
        assert_eq!(dev.sink().writes, 1);
        dev.flush_pending().unwrap();
        assert_eq!(dev.sink().bytes, b"hello from user mode\nDMALAB");
    }

    #[test]
    fn line_status_says_transmitter_empty() {
        let mut dev = SerialDevice::new(CountingTrigger::default(), Sink::default());
        let mut lsr = [0u8];
        dev.read(u64::from(COM1_PORT), 5, &mut lsr);
        assert_eq!(lsr[0] & 0x60, 0x60, "THRE and TEMT");
    }

    #[test]
    fn word_write_spans_data_and_ier() {
        let trigger = CountingTrigger::default();
        let mut dev = SerialDevice::new(trigger.clone(), Sink::default());
        // 'A' to THR, 0x02 (THR-empty interrupt enable) to IER.
        dev.write(u64::from(COM1_PORT), 0, &[b'A', 0x02]);
        dev.flush_pending().unwrap();
        assert_eq!(dev.sink().bytes, b"A");
        let mut ier = [0u8];
        dev.read(u64::from(COM1_PORT), 1, &mut ier);
        assert_eq!(ier[0], 0x02);
        assert!(
            trigger.0.load(Ordering::Relaxed) >= 1,
            "THRE interrupt raised"
        );
    }

    #[test]
    fn long_output_without_newline_is_bounded() {
        let mut dev = SerialDevice::new(CountingTrigger::default(), Sink::default());
        put(&mut dev, &[b'x'; FLUSH_AT + 10]);
        assert_eq!(dev.sink().bytes.len(), FLUSH_AT);
    }
}
