//! One small bus trait and the port/MMIO buses of the VM.
//!
//! A device implements `BusDevice` (both methods default to "nothing here":
//! reads return all ones, writes are dropped), like Firecracker's
//! `vstate/bus.rs`. PCI devices get it for free from `pci::PciDevice`.
//!
//! Address decoding is vm-device's `IoManager` (the rust-vmm way): it maps a
//! port or MMIO range to an `Arc<dyn DevicePio/DeviceMmio>` and rejects an
//! access that runs past the end of its range. `Attached` adapts a
//! `Mutex<BusDevice>` to those traits. We do not use vm-device's own blanket
//! `impl DevicePio for Mutex<T: MutDevicePio>` because it panics on a
//! poisoned lock; ours recovers the guard: a device's state is plain data,
//! and the guest must never be able to bring the VMM down.
//!
//! `Buses` is built once, then shared by the vCPU threads (`Arc<Buses>`);
//! each device has its own lock, held only for the one access, never
//! across KVM_RUN. Lookup is a BTreeMap search: no allocation on the exit
//! path. The port bus is fixed once the vCPUs run; the MMIO bus
//! (`MmioBus`, a cloneable handle) can change at run time, because a guest
//! may move a PCI BAR: its `IoManager` sits behind an `RwLock`, read-locked
//! for each access and write-locked only to move a range. Whoever moves a
//! range must not hold a lock that an MMIO handler takes (the DMA device's
//! PCI adapter moves BARs after it released the device lock).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vm_device::bus::{
    MmioAddress, MmioAddressOffset, MmioRange, PioAddress, PioAddressOffset, PioRange,
};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_device::{DeviceMmio, DevicePio};

use super::guest_log;

/// A device on the port or MMIO bus. `base` is the start of the range the
/// device was attached at (so one device can serve several ranges), `offset`
/// the access's distance from it.
pub trait BusDevice: Send {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        let _ = (base, offset);
        data.fill(0xff);
    }
    fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
        let _ = (base, offset, data);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot attach a device at {kind} {base:#x}+{len:#x}")]
    Attach {
        kind: &'static str,
        base: u64,
        len: u64,
        #[source]
        source: vm_device::bus::Error,
    },
}

/// Locks a device mutex, recovering the guard if another thread panicked
/// while holding it.
pub fn lock<D: ?Sized>(device: &Mutex<D>) -> MutexGuard<'_, D> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A shared, locked `BusDevice` as vm-device sees it.
pub struct Attached<D: ?Sized>(pub Arc<Mutex<D>>);

impl<D: ?Sized> std::fmt::Debug for Attached<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attached")
    }
}

impl<D: BusDevice + ?Sized> DevicePio for Attached<D> {
    fn pio_read(&self, base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        lock(&self.0).read(u64::from(base.0), u64::from(offset), data);
    }
    fn pio_write(&self, base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        lock(&self.0).write(u64::from(base.0), u64::from(offset), data);
    }
}

impl<D: BusDevice + ?Sized> DeviceMmio for Attached<D> {
    fn mmio_read(&self, base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        lock(&self.0).read(base.0, offset, data);
    }
    fn mmio_write(&self, base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        lock(&self.0).write(base.0, offset, data);
    }
}

/// The VM's port and MMIO buses.
pub struct Buses {
    io: IoManager,
    mmio: MmioBus,
}

/// The MMIO bus, shared: ranges may be added, moved and removed while the
/// vCPUs run.
#[derive(Clone, Default)]
pub struct MmioBus(Arc<RwLock<IoManager>>);

impl std::fmt::Debug for MmioBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MmioBus")
    }
}

impl MmioBus {
    fn read_lock(&self) -> RwLockReadGuard<'_, IoManager> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, IoManager> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Attaches `device` (which does its own locking) at `[base, base + len)`;
    /// fails if the range overlaps one already attached.
    pub fn register(
        &self,
        base: u64,
        len: u64,
        device: Arc<dyn DeviceMmio + Send + Sync>,
    ) -> Result<(), Error> {
        let err = |source| Error::Attach {
            kind: "MMIO",
            base,
            len,
            source,
        };
        let range = MmioRange::new(MmioAddress(base), len).map_err(err)?;
        self.write_lock().register_mmio(range, device).map_err(err)
    }

    /// A read at `addr`; false (and `data` untouched) where nothing answers.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.read_lock().mmio_read(MmioAddress(addr), data).is_ok()
    }

    /// A write at `addr`; false where nothing answers.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        self.read_lock().mmio_write(MmioAddress(addr), data).is_ok()
    }

    /// Detaches the range that starts at `base`; true if there was one.
    pub fn unregister(&self, base: u64) -> bool {
        self.write_lock()
            .deregister_mmio(MmioAddress(base))
            .is_some()
    }
}

impl std::fmt::Debug for Buses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buses").finish_non_exhaustive()
    }
}

impl Default for Buses {
    fn default() -> Self {
        Self::new()
    }
}

impl Buses {
    pub fn new() -> Self {
        Self {
            io: IoManager::new(),
            mmio: MmioBus::default(),
        }
    }

    /// The MMIO bus, to move ranges at run time.
    pub fn mmio_bus(&self) -> MmioBus {
        self.mmio.clone()
    }

    /// Attaches `device` at ports `[base, base + len)`.
    pub fn attach_pio<D: BusDevice + 'static>(
        &mut self,
        base: u16,
        len: u16,
        device: Arc<Mutex<D>>,
    ) -> Result<(), Error> {
        let err = |source| Error::Attach {
            kind: "port",
            base: u64::from(base),
            len: u64::from(len),
            source,
        };
        let range = PioRange::new(PioAddress(base), len).map_err(err)?;
        self.io
            .register_pio(range, Arc::new(Attached(device)))
            .map_err(err)
    }

    /// Attaches `device` at guest-physical `[base, base + len)`.
    pub fn attach_mmio<D: BusDevice + 'static>(
        &mut self,
        base: u64,
        len: u64,
        device: Arc<Mutex<D>>,
    ) -> Result<(), Error> {
        self.mmio.register(base, len, Arc::new(Attached(device)))
    }

    /// A port read; all ones where nothing answers.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) {
        if self.io.pio_read(PioAddress(port), data).is_err() {
            data.fill(0xff);
            guest_log::warn(format_args!(
                "read of {} bytes from unmodelled port {port:#x}",
                data.len()
            ));
        }
    }

    /// A port write; dropped where nothing answers.
    pub fn pio_write(&self, port: u16, data: &[u8]) {
        if self.io.pio_write(PioAddress(port), data).is_err() {
            guest_log::warn(format_args!(
                "write of {data:02x?} to unmodelled port {port:#x}"
            ));
        }
    }

    /// An MMIO read; all ones where nothing answers.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        if !self.mmio.read(addr, data) {
            data.fill(0xff);
            guest_log::warn(format_args!(
                "read of {} bytes from unmodelled MMIO {addr:#x}",
                data.len()
            ));
        }
    }

    /// An MMIO write; dropped where nothing answers.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        if !self.mmio.write(addr, data) {
            guest_log::warn(format_args!(
                "write of {data:02x?} to unmodelled MMIO {addr:#x}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last write; reads return `base + offset` in byte 0.
    #[derive(Default)]
    struct Probe {
        last: Option<(u64, u64, Vec<u8>)>,
    }

    impl BusDevice for Probe {
        fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
            data.fill(0);
            data[0] = (base + offset).to_le_bytes()[0];
        }
        fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
            self.last = Some((base, offset, data.to_vec()));
        }
    }

    /// A device that keeps the defaults.
    struct Nothing;
    impl BusDevice for Nothing {}

    #[test]
    fn accesses_reach_the_device_with_base_and_offset() {
        let probe = Arc::new(Mutex::new(Probe::default()));
        let mut buses = Buses::new();
        buses.attach_pio(0x3f8, 8, probe.clone()).unwrap();
        buses
            .attach_mmio(0xd000_0000, 0x1000, probe.clone())
            .unwrap();
        buses.pio_write(0x3fb, &[0x80]);
        assert_eq!(lock(&probe).last, Some((0x3f8, 3, vec![0x80])));
        buses.mmio_write(0xd000_0010, &[1, 2, 3, 4]);
        assert_eq!(
            lock(&probe).last,
            Some((0xd000_0000, 0x10, vec![1, 2, 3, 4]))
        );
        let mut b = [0u8; 1];
        buses.pio_read(0x3fd, &mut b);
        assert_eq!(b, [0xfd]);
    }

    #[test]
    fn unmodelled_and_overlong_accesses_read_all_ones() {
        let probe = Arc::new(Mutex::new(Probe::default()));
        let mut buses = Buses::new();
        buses.attach_pio(0x3f8, 8, probe.clone()).unwrap();
        let mut d = [0u8; 4];
        buses.pio_read(0x80, &mut d);
        assert_eq!(d, [0xff; 4]);
        // Runs past the end of the serial range: not delivered.
        let mut d = [0u8; 4];
        buses.pio_read(0x3fe, &mut d);
        assert_eq!(d, [0xff; 4]);
        buses.pio_write(0x3fe, &[1, 2, 3, 4]);
        assert_eq!(lock(&probe).last, None);
        let mut d = [0u8; 8];
        buses.mmio_read(0xfee0_0000, &mut d);
        assert_eq!(d, [0xff; 8]);
    }

    #[test]
    fn default_methods_are_open_bus() {
        let mut buses = Buses::new();
        buses
            .attach_pio(0x80, 1, Arc::new(Mutex::new(Nothing)))
            .unwrap();
        let mut d = [0u8; 1];
        buses.pio_read(0x80, &mut d);
        assert_eq!(d, [0xff]);
        buses.pio_write(0x80, &[1]);
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut buses = Buses::new();
        buses
            .attach_pio(0x3f8, 8, Arc::new(Mutex::new(Nothing)))
            .unwrap();
        let again = buses.attach_pio(0x3fc, 2, Arc::new(Mutex::new(Nothing)));
        assert!(matches!(again, Err(Error::Attach { kind: "port", .. })));
    }

    #[test]
    fn a_poisoned_device_still_answers() {
        let probe = Arc::new(Mutex::new(Probe::default()));
        let p2 = probe.clone();
        let _ = std::thread::spawn(move || {
            let _guard = p2.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(probe.is_poisoned());
        let mut buses = Buses::new();
        buses.attach_pio(0x3f8, 8, probe.clone()).unwrap();
        buses.pio_write(0x3f8, b"x");
        assert_eq!(lock(&probe).last, Some((0x3f8, 0, vec![b'x'])));
    }
}
