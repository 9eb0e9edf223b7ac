//! `--doorbell ioeventfd`: each channel's `TAIL` register is a KVM
//! ioeventfd, so a guest write there does not exit to user space; KVM
//! signals the eventfd and the device thread rings the doorbell without a
//! value (`Controller::doorbell(c, None)`: the tail comes from the shadow).
//!
//! The eventfds are registered with length 0 (any access size) and no
//! datamatch, at `BAR0 + 0x100 + 0x80·c + 0x10`. They follow BAR0: when the
//! guest moves it, `move_to` unregisters them at the old address and
//! registers them at the new one (nowhere if BAR0 is not decoded).

use std::sync::Arc;

use device_model::regs::{channel_reg, CH_TAIL};
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create a doorbell eventfd")]
    EventFd(#[source] std::io::Error),
    #[error("KVM_IOEVENTFD at {0:#x} failed")]
    Register(u64, #[source] kvm_ioctls::Error),
}

/// The channels' doorbell eventfds and where they are registered.
#[derive(Debug)]
pub struct Doorbells {
    vm: Arc<VmFd>,
    fds: Vec<EventFd>,
    bar0: Option<u64>,
}

impl Doorbells {
    /// One eventfd per channel, not registered yet.
    pub fn new(vm: Arc<VmFd>, channels: u8) -> Result<Self, Error> {
        let fds = (0..channels)
            .map(|_| EventFd::new(EFD_NONBLOCK).map_err(Error::EventFd))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            vm,
            fds,
            bar0: None,
        })
    }

    /// Duplicates of the eventfds for the device thread (same counters).
    pub fn clones(&self) -> Result<Vec<EventFd>, Error> {
        self.fds
            .iter()
            .map(|fd| fd.try_clone().map_err(Error::EventFd))
            .collect()
    }

    /// Where BAR0 is decoded now, if anywhere.
    pub fn bar0(&self) -> Option<u64> {
        self.bar0
    }

    /// The address of channel `c`'s `TAIL` with BAR0 at `bar0`.
    pub fn tail_address(bar0: u64, c: u8) -> u64 {
        bar0 + channel_reg(c, CH_TAIL)
    }

    /// Moves the doorbells to BAR0 at `bar0` (`None`: not decoded).
    pub fn move_to(&mut self, bar0: Option<u64>) -> Result<(), Error> {
        if self.bar0 == bar0 {
            return Ok(());
        }
        if let Some(old) = self.bar0.take() {
            for (c, fd) in (0u8..).zip(&self.fds) {
                let at = Self::tail_address(old, c);
                if let Err(e) =
                    self.vm
                        .unregister_ioevent(fd, &IoEventAddress::Mmio(at), NoDatamatch)
                {
                    log::warn!("cannot remove the doorbell ioeventfd at {at:#x}: {e}");
                }
            }
        }
        let Some(new) = bar0 else {
            return Ok(());
        };
        for (c, fd) in (0u8..).zip(&self.fds) {
            let at = Self::tail_address(new, c);
            if let Err(e) = self
                .vm
                .register_ioevent(fd, &IoEventAddress::Mmio(at), NoDatamatch)
            {
                // Undo the ones registered, so the state stays "nowhere".
                for (c2, fd2) in (0u8..c).zip(&self.fds) {
                    let at2 = Self::tail_address(new, c2);
                    let _ =
                        self.vm
                            .unregister_ioevent(fd2, &IoEventAddress::Mmio(at2), NoDatamatch);
                }
                return Err(Error::Register(at, e));
            }
        }
        self.bar0 = Some(new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_addresses_follow_bar0() {
        assert_eq!(Doorbells::tail_address(0xc000_0000, 0), 0xc000_0110);
        assert_eq!(
            Doorbells::tail_address(0xd000_0000, 3),
            0xd000_0000 + 0x100 + 3 * 0x80 + 0x10
        );
    }
}
