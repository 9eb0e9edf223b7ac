//! A read-only view of KVM's coalesced I/O ring, for the main thread.
//!
//! COM1's data-port writes are coalesced (`vm::coalesce_console`): they
//! wait in the ring until some vCPU exits and drains it. A guest that
//! prints a line and then idles in `hlt` (interrupts handled in the kernel,
//! no exits) would hold the line back. The main thread peeks at the ring
//! while it waits for the outcome and, if bytes have been waiting, kicks
//! vCPU 0 once (one exit) so it drains them. It never kicks while the ring
//! is empty: a kick stretches whatever the guest is doing by an exit, which
//! a guest timing its ISRs would notice.
//!
//! The page is mapped from a vCPU fd at `KVM_COALESCED_MMIO_PAGE_OFFSET`
//! (the ring is per VM; every vCPU fd maps the same page). Only `first`
//! (advanced by the draining vCPU) and `last` (advanced by KVM) are read.

use std::os::fd::AsRawFd;
use std::ptr::{self, NonNull};

use kvm_bindings::{kvm_coalesced_mmio_ring, KVM_COALESCED_MMIO_PAGE_OFFSET};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot map KVM's coalesced I/O ring")]
    Map(#[source] std::io::Error),
}

#[derive(Debug)]
pub struct RingPeek {
    ring: NonNull<kvm_coalesced_mmio_ring>,
    len: usize,
}

// SAFETY: the mapping is read-only shared memory, only ever read with
// volatile loads of plain integers; it can be used from any thread.
unsafe impl Send for RingPeek {}

impl RingPeek {
    /// Maps the ring of the VM that `vcpu` belongs to, read-only.
    pub fn new<F: AsRawFd>(vcpu: &F) -> Result<Self, Error> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let len = usize::try_from(page).map_err(|_| Error::Map(std::io::Error::last_os_error()))?;
        let offset = libc::off_t::from(KVM_COALESCED_MMIO_PAGE_OFFSET) * libc::off_t::from(page);
        // SAFETY: a fresh shared read-only mapping of one page of a KVM vCPU
        // fd at the offset KVM documents for the coalesced ring; the result
        // is checked before use.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                vcpu.as_raw_fd(),
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Error::Map(std::io::Error::last_os_error()));
        }
        let ring =
            NonNull::new(addr.cast()).ok_or_else(|| Error::Map(std::io::Error::last_os_error()))?;
        Ok(Self { ring, len })
    }

    /// True if KVM has appended entries nobody has drained yet.
    pub fn pending(&self) -> bool {
        let ring = self.ring.as_ptr();
        // SAFETY: `ring` points to the mapped page, which holds a
        // kvm_coalesced_mmio_ring header; volatile reads of two u32s that
        // other parties update concurrently.
        let (first, last) = unsafe {
            (
                ptr::addr_of!((*ring).first).read_volatile(),
                ptr::addr_of!((*ring).last).read_volatile(),
            )
        };
        first != last
    }
}

impl Drop for RingPeek {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the page `new` mapped, once.
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.len) };
    }
}
