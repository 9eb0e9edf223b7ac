//! The KVM virtual machine: in-kernel irqchip, guest RAM, vCPUs in their
//! long-mode entry state, the boot structures and the devices.
//!
//! Order: guest memory slots, then the irqchip and the coalesced console
//! zone (measured here: the first KVM_SET_USER_MEMORY_REGION made after any
//! in-kernel I/O device is registered takes 6–10 ms, before them ~60 µs),
//! then the vCPUs (KVM wants the irqchip first); the first vCPU before the
//! boot info (which carries its TSC frequency).
//! Application processors are made RUNNABLE at once: every vCPU starts at
//! `e_entry` together, no INIT/SIPI (boot protocol, "Entry state").
//!
//! No PIT for the dmalab guest: it times itself with the TSC and the local
//! APIC timer. A Linux guest gets KVM's in-kernel PIT (`Guest::needs_pit`).
//! `KVM_CAP_EXIT_ON_EMULATION_FAILURE` is enabled where offered, so an
//! instruction KVM's emulator cannot run ends in a clean
//! `KVM_EXIT_INTERNAL_ERROR` carrying the instruction bytes.

use std::io;
use std::sync::{Arc, Mutex};

use kvm_bindings::{
    kvm_enable_cap, kvm_mp_state, kvm_pit_config, kvm_userspace_memory_region, KVM_API_VERSION,
    KVM_CAP_EXIT_ON_EMULATION_FAILURE, KVM_MAX_CPUID_ENTRIES, KVM_MP_STATE_RUNNABLE,
    KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, IoEventAddress, Kvm, VcpuFd, VmFd};
use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::boot::{self, bootinfo::BootParams, guest::Guest, layout};
use crate::devices::bus::{self, Buses};
use crate::devices::cmos::{Cmos, CMOS_PORT, CMOS_PORTS};
use crate::devices::debug_port::{
    DebugExit, ExitRequest, Marker, DEBUG_EXIT_PORT, DEBUG_EXIT_PORTS, MARKER_PORT, MARKER_PORTS,
};
use crate::devices::pci::PciBus;
use crate::devices::pci_host::{
    HostBridge, PciConfigIo, CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT, PORTS,
};
use crate::devices::serial::{IrqEvent, SerialDevice, COM1_GSI, COM1_PORT, COM1_PORTS};
use crate::report::{ResultSlot, ResultTap};
use crate::timings::{Stamp, Timings};

const _: () = assert!(layout::MAX_VCPUS == 16, "update Error::CpuCount");

/// Where KVM keeps the real-mode TSS on Intel hosts (as Firecracker).
const KVM_TSS_ADDR: usize = 0xfffb_d000;

/// COM1 writing to the process's stdout.
pub type Console = SerialDevice<IrqEvent, ResultTap<io::Stdout>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot open /dev/kvm (load the kvm module and make sure you may read and write \
         /dev/kvm: join the 'kvm' group or run as root)"
    )]
    KvmOpen(#[source] kvm_ioctls::Error),
    #[error("/dev/kvm speaks KVM API version {0}, not {KVM_API_VERSION}")]
    KvmApiVersion(i32),
    #[error("a VM has 1 to 16 vCPUs, not {0}")]
    CpuCount(u8),
    #[error("KVM lacks a capability dmalab needs: {0}")]
    MissingCap(&'static str),
    #[error("KVM refused to create a VM")]
    CreateVm(#[source] kvm_ioctls::Error),
    #[error("KVM {0} failed")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("cannot allocate {0} MiB of guest memory")]
    Memory(u64, #[source] vm_memory::mmap::FromRangesError),
    #[error("cannot place the guest kernel")]
    Kernel(#[source] boot::Error),
    #[error("cannot write the boot structures")]
    Boot(#[source] boot::Error),
    #[error("cannot attach the devices")]
    Devices(#[source] bus::Error),
    #[error("cannot set up PCI bus 0")]
    Pci(#[source] crate::devices::pci::Error),
    #[error("cannot create the COM1 interrupt eventfd")]
    EventFd(#[source] io::Error),
}

impl Error {
    /// True if KVM itself is missing or unusable (exit status 69).
    pub fn kvm_unavailable(&self) -> bool {
        matches!(
            self,
            Error::KvmOpen(_) | Error::KvmApiVersion(_) | Error::MissingCap(_) | Error::CreateVm(_)
        )
    }
}

/// What to build.
#[derive(Debug)]
pub struct VmConfig<'a> {
    pub ram_bytes: u64,
    pub cpus: u8,
    pub kernel_image: &'a [u8],
    pub kernel: &'a Guest,
    pub cmdline: &'a str,
}

/// A VM ready for its first KVM_RUN.
#[derive(Debug)]
pub struct Vm {
    /// Kept open for the VM's lifetime.
    pub kvm: Kvm,
    /// Shared with the DMA controller (routes, ioeventfds).
    pub fd: Arc<VmFd>,
    pub memory: GuestMemoryMmap,
    pub vcpus: Vec<VcpuFd>,
    /// Port and MMIO buses; more devices may be attached until the vCPUs
    /// start (`run` then shares them read-only).
    pub buses: Buses,
    pub console: Arc<Mutex<Console>>,
    /// The last `DMALAB-RESULT` line the guest printed.
    pub result: ResultSlot,
    /// The last `EXCEPTION` line the guest printed.
    pub exception: ResultSlot,
    pub exit_request: Arc<ExitRequest>,
    pub pci: Arc<Mutex<PciConfigIo>>,
    /// COM1's data port writes are coalesced in KVM's ring (each vCPU fd
    /// has it mapped); vCPUs drain it under this lock.
    pub console_ring: Option<Arc<Mutex<()>>>,
}

impl Vm {
    pub fn new(config: &VmConfig<'_>, timings: &Arc<Timings>) -> Result<Self, Error> {
        if config.cpus == 0 || config.cpus > layout::MAX_VCPUS {
            return Err(Error::CpuCount(config.cpus));
        }
        let kvm = Kvm::new().map_err(Error::KvmOpen)?;
        let version = kvm.get_api_version();
        if version != KVM_API_VERSION as i32 {
            return Err(Error::KvmApiVersion(version));
        }
        for (cap, name) in [
            (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
            (Cap::Irqfd, "KVM_CAP_IRQFD"),
            (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
            (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
            (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(Error::MissingCap(name));
            }
        }
        let fd = kvm.create_vm().map_err(Error::CreateVm)?;
        if let Err(e) = fd.set_tss_address(KVM_TSS_ADDR) {
            log::debug!("KVM_SET_TSS_ADDR: {e} (only needed for real mode on Intel)");
        }
        if fd.check_extension_raw(KVM_CAP_EXIT_ON_EMULATION_FAILURE.into()) > 0 {
            let mut cap = kvm_enable_cap {
                cap: KVM_CAP_EXIT_ON_EMULATION_FAILURE,
                ..Default::default()
            };
            cap.args[0] = 1;
            fd.enable_cap(&cap)
                .map_err(|e| Error::Kvm("KVM_ENABLE_CAP(EXIT_ON_EMULATION_FAILURE)", e))?;
        }

        // Memory slots first: on this platform the first slot added after
        // any in-kernel I/O device exists (the irqchip's, the coalesced
        // zone's) costs 6–10 ms; before them, ~60 µs.
        let memory = guest_memory(&fd, config.ram_bytes)?;
        fd.create_irq_chip()
            .map_err(|e| Error::Kvm("KVM_CREATE_IRQCHIP", e))?;
        if config.kernel.needs_pit() {
            let pit = kvm_pit_config {
                flags: KVM_PIT_SPEAKER_DUMMY,
                ..Default::default()
            };
            fd.create_pit2(pit)
                .map_err(|e| Error::Kvm("KVM_CREATE_PIT2", e))?;
        }
        let console_ring = coalesce_console(&fd);
        config
            .kernel
            .load(&memory, config.kernel_image)
            .map_err(Error::Kernel)?;

        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::Kvm("KVM_GET_SUPPORTED_CPUID", e))?;
        let mut vcpus = Vec::with_capacity(usize::from(config.cpus));
        for index in 0..config.cpus {
            let mut vcpu = create_vcpu(&fd, &supported, config.kernel, index)?;
            if console_ring.is_some() {
                vcpu.map_coalesced_mmio_ring()
                    .map_err(|e| Error::Kvm("mapping the coalesced I/O ring", e))?;
            }
            vcpus.push(vcpu);
        }
        let tsc_khz = vcpus
            .first()
            .and_then(|v| v.get_tsc_khz().ok())
            .unwrap_or(0);
        let params = BootParams {
            ram_bytes: config.ram_bytes,
            cpu_count: config.cpus,
            cmdline_len: config.cmdline.len(),
            tsc_khz,
        };
        config
            .kernel
            .write_boot(&memory, &params, config.cmdline)
            .map_err(Error::Boot)?;

        let devices = Devices::new(&fd, timings)?;
        timings.stamp(Stamp::VmReady);
        Ok(Self {
            kvm,
            fd: Arc::new(fd),
            memory,
            vcpus,
            buses: devices.buses,
            console: devices.console,
            result: devices.result,
            exception: devices.exception,
            exit_request: devices.exit_request,
            pci: devices.pci,
            console_ring,
        })
    }
}

/// The devices every dmalab VM has, attached to fresh buses.
struct Devices {
    buses: Buses,
    console: Arc<Mutex<Console>>,
    result: ResultSlot,
    exception: ResultSlot,
    exit_request: Arc<ExitRequest>,
    pci: Arc<Mutex<PciConfigIo>>,
}

impl Devices {
    fn new(fd: &VmFd, timings: &Arc<Timings>) -> Result<Self, Error> {
        let irq = EventFd::new(EFD_NONBLOCK).map_err(Error::EventFd)?;
        fd.register_irqfd(&irq, COM1_GSI)
            .map_err(|e| Error::Kvm("KVM_IRQFD(COM1)", e))?;
        let result = ResultSlot::default();
        let exception = ResultSlot::default();
        let tap = ResultTap::new(io::stdout(), result.clone()).with_exception(exception.clone());
        let console = Arc::new(Mutex::new(SerialDevice::new(IrqEvent(irq), tap)));
        let exit_request = Arc::new(ExitRequest::default());
        let debug_exit = Arc::new(Mutex::new(DebugExit::new(exit_request.clone())));
        let marker = Arc::new(Mutex::new(Marker::new(timings.clone())));
        let mut pci_bus = PciBus::new();
        pci_bus
            .add(0, Arc::new(Mutex::new(HostBridge::default())))
            .map_err(Error::Pci)?;
        let pci = Arc::new(Mutex::new(PciConfigIo::new(pci_bus)));

        let mut buses = Buses::new();
        buses
            .attach_pio(COM1_PORT, COM1_PORTS, console.clone())
            .map_err(Error::Devices)?;
        buses
            .attach_pio(DEBUG_EXIT_PORT, DEBUG_EXIT_PORTS, debug_exit)
            .map_err(Error::Devices)?;
        buses
            .attach_pio(MARKER_PORT, MARKER_PORTS, marker)
            .map_err(Error::Devices)?;
        buses
            .attach_pio(CMOS_PORT, CMOS_PORTS, Arc::new(Mutex::new(Cmos::default())))
            .map_err(Error::Devices)?;
        buses
            .attach_pio(CONFIG_ADDRESS_PORT, PORTS, pci.clone())
            .map_err(Error::Devices)?;
        buses
            .attach_pio(CONFIG_DATA_PORT, PORTS, pci.clone())
            .map_err(Error::Devices)?;
        Ok(Self {
            buses,
            console,
            result,
            exception,
            exit_request,
            pci,
        })
    }
}

/// Has KVM buffer guest writes to COM1's data port (0x3F8, one byte) in its
/// coalesced ring instead of exiting to user space for each: a line costs no
/// exit at all (here `rep outsb` otherwise exits once per byte). Writes to
/// the other UART registers and all reads still exit, and every vCPU drains
/// the ring before it handles any exit, so the UART sees the guest's order.
/// Returns the drain lock, or None where KVM lacks coalesced PIO.
fn coalesce_console(fd: &VmFd) -> Option<Arc<Mutex<()>>> {
    if !fd.check_extension(Cap::CoalescedPio) {
        return None;
    }
    match fd.register_coalesced_mmio(IoEventAddress::Pio(u64::from(COM1_PORT)), 1) {
        Ok(()) => Some(Arc::new(Mutex::new(()))),
        Err(e) => {
            log::debug!("coalesced PIO for COM1 refused: {e}");
            None
        }
    }
}

/// Allocates guest RAM and registers each region as a KVM memory slot.
fn guest_memory(fd: &VmFd, ram_bytes: u64) -> Result<GuestMemoryMmap, Error> {
    let ranges: Vec<(GuestAddress, usize)> = layout::ram_regions(ram_bytes)
        .into_iter()
        .map(|(base, len)| (base, usize::try_from(len).unwrap_or(usize::MAX)))
        .collect();
    let memory = GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| Error::Memory(ram_bytes / layout::MIB, e))?;
    for (slot, region) in memory.iter().enumerate() {
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(|_| {
                Error::Kvm("guest memory mapping", kvm_ioctls::Error::new(libc::EFAULT))
            })?;
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live anonymous mapping owned by `memory`,
        // which the `Vm` keeps for as long as the VM fd exists; the ranges
        // do not overlap (`ram_regions`).
        unsafe { fd.set_user_memory_region(region) }
            .map_err(|e| Error::Kvm("KVM_SET_USER_MEMORY_REGION", e))?;
    }
    Ok(memory)
}

fn create_vcpu(
    fd: &VmFd,
    supported: &kvm_bindings::CpuId,
    guest: &Guest,
    index: u8,
) -> Result<VcpuFd, Error> {
    let vcpu = fd
        .create_vcpu(u64::from(index))
        .map_err(|e| Error::Kvm("KVM_CREATE_VCPU", e))?;
    let tsc_khz = vcpu.get_tsc_khz().unwrap_or(0);
    vcpu.set_cpuid2(&guest.cpuid(supported, index, tsc_khz))
        .map_err(|e| Error::Kvm("KVM_SET_CPUID2", e))?;
    let sregs = vcpu
        .get_sregs()
        .map_err(|e| Error::Kvm("KVM_GET_SREGS", e))?;
    // A Linux application processor stays in reset until INIT/SIPI.
    let Some((regs, sregs)) = guest.entry_state(index, sregs) else {
        return Ok(vcpu);
    };
    vcpu.set_sregs(&sregs)
        .map_err(|e| Error::Kvm("KVM_SET_SREGS", e))?;
    vcpu.set_regs(&regs)
        .map_err(|e| Error::Kvm("KVM_SET_REGS", e))?;
    if index > 0 {
        vcpu.set_mp_state(kvm_mp_state {
            mp_state: KVM_MP_STATE_RUNNABLE,
        })
        .map_err(|e| Error::Kvm("KVM_SET_MP_STATE", e))?;
    }
    Ok(vcpu)
}
