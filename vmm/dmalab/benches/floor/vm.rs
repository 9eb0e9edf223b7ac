//! The bare floor VM: kvm-ioctls only, one vCPU, one memory slot, the
//! in-kernel irqchip (as `dmalab run` has), no devices. The host builds the
//! whole long-mode state the guest needs (as kvm-probe.c does): GDT, IDT,
//! identity page tables over the low 4 GiB (so the local APIC at
//! 0xFEE0_0000 and the doorbell at 0xC000_0000 are mapped), the mailbox, the
//! code; the vCPU starts at the image's entry in 64-bit mode, CPL0.
//!
//! Guest physical layout (mirrors `guest.S`):
//!   0x1000 GDT   0x2000 IDT   0x3000 PML4   0x4000 PDPT   0x5000–0x8FFF PDs
//!   0x9000 mailbox   0x10000 code   0x20000 stack top
//!   0x100000 round-trip samples, then the self-IPI samples
//!
//! With `Doorbell::Exit` the run loop answers each doorbell exit with
//! `KVM_SIGNAL_MSI` on the vCPU thread; with `Doorbell::Ioeventfd` the
//! doorbell never exits and `relay.rs`'s thread raises the MSI. The run
//! ends at the guest's "done" port with every sample read back and
//! checked: one interrupt per doorbell, none lost, none extra.

use super::relay::{self, Wiring};
use super::Doorbell;
use kvm_bindings::{
    kvm_enable_cap, kvm_msi, kvm_regs, kvm_segment, kvm_userspace_memory_region,
    KVM_CAP_EXIT_ON_EMULATION_FAILURE, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

const GDT: u64 = 0x1000;
const IDT: u64 = 0x2000;
const PML4: u64 = 0x3000;
const PDPT: u64 = 0x4000;
const PD: u64 = 0x5000;
const MAILBOX: u64 = 0x9000;
const CODE_BASE: u64 = 0x1_0000;
const STACK_TOP: u64 = 0x2_0000;
const SAMPLES: u64 = 0x10_0000;
const TWO_MIB: u64 = 2 << 20;

/// Mailbox fields (`guest.S` header).
const MB_ITERS: u64 = MAILBOX;
const MB_COUNT: u64 = MAILBOX + 0x08;
const MB_TSC_START: u64 = MAILBOX + 0x10;
const MB_TSC_END: u64 = MAILBOX + 0x18;
const MB_IDTR: u64 = MAILBOX + 0x20;
const MB_SAMPLES: u64 = MAILBOX + 0x30;
const MB_WARMUP: u64 = MAILBOX + 0x38;
const MB_IPI_SAMPLES: u64 = MAILBOX + 0x40;

/// Unmeasured rounds before the first sample, as the irq-bench scenario.
const WARMUP: u32 = 8;

/// Entry points inside the image (`.org` in `guest.S`).
const ISR_OFFSET: u64 = 0x200;
const SPURIOUS_OFFSET: u64 = 0x240;
const EXCEPTION_STUBS: u64 = 0x400;
const EXCEPTION_STUB_SIZE: u64 = 16;
/// The image must fit below the stack.
const MAX_IMAGE: usize = 0x8000;

const DOORBELL: u64 = 0xC000_0000;
const PORT_DONE: u16 = 0xE0;
const PORT_EXCEPTION: u16 = 0xE1;
const VECTOR: u8 = 0x40;
const SPURIOUS_VECTOR: u8 = 0xFF;
const MSI_ADDRESS: u32 = 0xFEE0_0000;

const CODE_SELECTOR: u16 = 0x08;
const DATA_SELECTOR: u16 = 0x10;
/// Vectors whose exception frame starts with an error code.
const HAS_ERROR_CODE: [u8; 8] = [8, 10, 11, 12, 13, 14, 17, 21];

/// The most iterations one run takes (16 MB of samples), as irq-bench.
pub const MAX_ITERS: u32 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("KVM {0} failed")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("cannot allocate the floor's guest memory")]
    Memory(#[source] vm_memory::mmap::FromRangesError),
    #[error("cannot access the floor's guest memory")]
    Access(#[source] vm_memory::GuestMemoryError),
    #[error("the floor image is {0} bytes, more than {MAX_IMAGE}")]
    ImageSize(usize),
    #[error("{0} iterations: the floor takes 1 to {MAX_ITERS}")]
    Iterations(u32),
    #[error("guest exception {vector} at rip {rip:#x}")]
    GuestException { vector: u32, rip: u64 },
    #[error("unexpected exit {0} at rip {1:#x}")]
    UnexpectedExit(String, u64),
    #[error(
        "{interrupts} interrupts for {doorbells} doorbells ({iters} iterations + {WARMUP} warm-up)"
    )]
    Lost {
        iters: u32,
        doorbells: u64,
        interrupts: u64,
    },
    #[error("cannot wire the ioeventfd doorbell")]
    Relay(#[source] relay::Error),
    #[error("KVM_SIGNAL_MSI delivered nothing {0} times")]
    Undelivered(u64),
    #[error("a sample is zero or the TSC went backwards")]
    BadSample,
}

/// One bare VM, ready to run its `iters` round trips once.
pub struct FloorVm {
    _kvm: Kvm,
    fd: VmFd,
    vcpu: VcpuFd,
    memory: GuestMemoryMmap,
    iters: u32,
    /// Set for `Doorbell::Ioeventfd`.
    wiring: Option<Wiring>,
}

impl std::fmt::Debug for FloorVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorVm")
            .field("iters", &self.iters)
            .finish_non_exhaustive()
    }
}

impl FloorVm {
    pub fn new(image: &[u8], iters: u32, doorbell: Doorbell) -> Result<Self, Error> {
        if image.len() > MAX_IMAGE {
            return Err(Error::ImageSize(image.len()));
        }
        if iters == 0 || iters > MAX_ITERS {
            return Err(Error::Iterations(iters));
        }
        let kvm = Kvm::new().map_err(|e| Error::Kvm("open /dev/kvm", e))?;
        let fd = kvm
            .create_vm()
            .map_err(|e| Error::Kvm("KVM_CREATE_VM", e))?;
        // Only needed for real mode on Intel; harmless elsewhere.
        let _ = fd.set_tss_address(0xfffb_d000);
        if fd.check_extension_raw(KVM_CAP_EXIT_ON_EMULATION_FAILURE.into()) > 0 {
            let mut cap = kvm_enable_cap {
                cap: KVM_CAP_EXIT_ON_EMULATION_FAILURE,
                ..Default::default()
            };
            cap.args[0] = 1;
            fd.enable_cap(&cap)
                .map_err(|e| Error::Kvm("KVM_ENABLE_CAP(EXIT_ON_EMULATION_FAILURE)", e))?;
        }
        // Memory before the irqchip, as dmalab does (a slot added after an
        // in-kernel device costs 6–10 ms here); not part of the measurement
        // either way.
        let size = (SAMPLES + u64::from(iters) * 16).next_multiple_of(TWO_MIB);
        let memory = memory(&fd, size)?;
        fd.create_irq_chip()
            .map_err(|e| Error::Kvm("KVM_CREATE_IRQCHIP", e))?;
        write_tables(&memory, image, iters)?;
        let wiring = match doorbell {
            Doorbell::Exit => None,
            Doorbell::Ioeventfd => Some(
                Wiring::new(&fd, DOORBELL, MSI_ADDRESS, u32::from(VECTOR)).map_err(Error::Relay)?,
            ),
        };

        let vcpu = fd
            .create_vcpu(0)
            .map_err(|e| Error::Kvm("KVM_CREATE_VCPU", e))?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::Kvm("KVM_GET_SUPPORTED_CPUID", e))?;
        vcpu.set_cpuid2(&cpuid)
            .map_err(|e| Error::Kvm("KVM_SET_CPUID2", e))?;
        let mut sregs = vcpu
            .get_sregs()
            .map_err(|e| Error::Kvm("KVM_GET_SREGS", e))?;
        sregs.cs = segment(CODE_SELECTOR, 11, 1, 0);
        let data = segment(DATA_SELECTOR, 3, 0, 1);
        (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
        sregs.gdt.base = GDT;
        sregs.gdt.limit = 3 * 8 - 1;
        sregs.idt.base = 0; // the guest loads its own
        sregs.idt.limit = 0;
        sregs.cr3 = PML4;
        sregs.cr4 = 1 << 5; // PAE
        sregs.cr0 = (1 << 31) | (1 << 16) | (1 << 5) | (1 << 4) | (1 << 1) | 1; // PG WP NE ET MP PE
        sregs.efer = (1 << 10) | (1 << 8); // LMA LME
        vcpu.set_sregs(&sregs)
            .map_err(|e| Error::Kvm("KVM_SET_SREGS", e))?;
        vcpu.set_regs(&kvm_regs {
            rip: CODE_BASE,
            rsp: STACK_TOP,
            rflags: 2,
            ..Default::default()
        })
        .map_err(|e| Error::Kvm("KVM_SET_REGS", e))?;
        Ok(Self {
            _kvm: kvm,
            fd,
            vcpu,
            memory,
            iters,
            wiring,
        })
    }

    /// Runs the guest to its "done" port and returns its samples.
    pub fn run(&mut self) -> Result<super::FloorRun, Error> {
        let tsc_khz = self
            .vcpu
            .get_tsc_khz()
            .map_err(|e| Error::Kvm("KVM_GET_TSC_KHZ", e))?;
        let msi = kvm_msi {
            address_lo: MSI_ADDRESS,
            data: u32::from(VECTOR),
            ..Default::default()
        };
        let mut doorbells = 0u64;
        let mut undelivered = 0u64;
        let relay = match &self.wiring {
            Some(w) => Some(w.start().map_err(Error::Relay)?),
            None => None,
        };
        let outcome = self.run_loop(msi, &mut doorbells, &mut undelivered);
        if let Some(relay) = relay {
            doorbells += relay.stop().map_err(Error::Relay)?;
        }
        outcome?;
        if undelivered > 0 {
            return Err(Error::Undelivered(undelivered));
        }
        self.collect(tsc_khz, doorbells)
    }

    /// KVM_RUN until the guest's "done" port. Doorbell exits (exit mode
    /// only: an ioeventfd doorbell never exits) raise the MSI here.
    fn run_loop(
        &mut self,
        msi: kvm_msi,
        doorbells: &mut u64,
        undelivered: &mut u64,
    ) -> Result<(), Error> {
        let exit_mode = self.wiring.is_none();
        loop {
            let exit = self.vcpu.run();
            match exit {
                Ok(VcpuExit::MmioWrite(DOORBELL, _)) if exit_mode => {
                    *doorbells += 1;
                    // 0 = the interrupt was blocked (APIC disabled).
                    match self.fd.signal_msi(msi) {
                        Ok(n) if n > 0 => {}
                        Ok(_) => *undelivered += 1,
                        Err(e) => return Err(Error::Kvm("KVM_SIGNAL_MSI", e)),
                    }
                }
                Ok(VcpuExit::IoOut(PORT_DONE, _)) => return Ok(()),
                Ok(VcpuExit::IoOut(PORT_EXCEPTION, data)) => {
                    let vector = data.first().copied().unwrap_or(0xFF);
                    return Err(Error::GuestException {
                        vector: u32::from(vector),
                        rip: self.faulting_rip(vector),
                    });
                }
                Ok(VcpuExit::Intr) => {}
                Ok(other) => {
                    let what = format!("{other:?}");
                    return Err(Error::UnexpectedExit(what, self.rip()));
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
                Err(e) => return Err(Error::Kvm("KVM_RUN", e)),
            }
        }
    }

    fn collect(&self, tsc_khz: u32, doorbells: u64) -> Result<super::FloorRun, Error> {
        let read = |addr| self.memory.read_obj::<u64>(GuestAddress(addr));
        let interrupts = read(MB_COUNT).map_err(Error::Access)?;
        let rounds = u64::from(self.iters) + u64::from(WARMUP);
        // One interrupt per doorbell, then one per self-IPI round.
        if doorbells != rounds || interrupts != rounds + u64::from(self.iters) {
            return Err(Error::Lost {
                iters: self.iters,
                doorbells,
                interrupts,
            });
        }
        let start = read(MB_TSC_START).map_err(Error::Access)?;
        let end = read(MB_TSC_END).map_err(Error::Access)?;
        let cycles_total = end.checked_sub(start).ok_or(Error::BadSample)?;
        Ok(super::FloorRun {
            tsc_khz,
            samples: self.samples(SAMPLES)?,
            ipi_samples: self.samples(ipi_samples(self.iters))?,
            cycles_total,
        })
    }

    /// `iters` samples from `base`, each checked: a round trip costs
    /// thousands of cycles, so 0 or a wrapped subtraction means the guest
    /// did not write it.
    fn samples(&self, base: u64) -> Result<Vec<u64>, Error> {
        (0..u64::from(self.iters))
            .map(|i| {
                let sample = self
                    .memory
                    .read_obj::<u64>(GuestAddress(base + i * 8))
                    .map_err(Error::Access)?;
                if sample == 0 || sample > 1 << 48 {
                    return Err(Error::BadSample);
                }
                Ok(sample)
            })
            .collect()
    }

    fn rip(&self) -> u64 {
        self.vcpu.get_regs().map(|r| r.rip).unwrap_or(0)
    }

    /// The RIP saved in the exception frame on top of the guest stack.
    fn faulting_rip(&self, vector: u8) -> u64 {
        let Ok(regs) = self.vcpu.get_regs() else {
            return 0;
        };
        let skip = if HAS_ERROR_CODE.contains(&vector) {
            8
        } else {
            0
        };
        self.memory
            .read_obj::<u64>(GuestAddress(regs.rsp.wrapping_add(skip)))
            .unwrap_or(0)
    }
}

fn memory(fd: &VmFd, size: u64) -> Result<GuestMemoryMmap, Error> {
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)]).map_err(Error::Memory)?;
    for region in memory.iter() {
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(Error::Access)?;
        let slot = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the range is a live anonymous mapping owned by `memory`,
        // which `FloorVm` keeps as long as the VM fd; it is the only slot.
        unsafe { fd.set_user_memory_region(slot) }
            .map_err(|e| Error::Kvm("KVM_SET_USER_MEMORY_REGION", e))?;
    }
    Ok(memory)
}

/// GDT, IDT, page tables, mailbox and code.
fn write_tables(memory: &GuestMemoryMmap, image: &[u8], iters: u32) -> Result<(), Error> {
    let put = |addr: u64, value: u64| memory.write_obj(value, GuestAddress(addr));
    let gdt = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    for (i, entry) in (0u64..).zip(gdt) {
        put(GDT + i * 8, entry).map_err(Error::Access)?;
    }
    // Identity map of [0, 4 GiB) with 2 MiB pages: present, writable.
    put(PML4, PDPT | 0x3).map_err(Error::Access)?;
    for gib in 0..4u64 {
        let pd = PD + gib * 0x1000;
        put(PDPT + gib * 8, pd | 0x3).map_err(Error::Access)?;
        for i in 0..512u64 {
            let base = (gib << 30) | (i << 21);
            put(pd + i * 8, base | 0x83).map_err(Error::Access)?;
        }
    }
    for vector in 0..32u8 {
        let stub = CODE_BASE + EXCEPTION_STUBS + u64::from(vector) * EXCEPTION_STUB_SIZE;
        gate(memory, vector, stub)?;
    }
    gate(memory, VECTOR, CODE_BASE + ISR_OFFSET)?;
    gate(memory, SPURIOUS_VECTOR, CODE_BASE + SPURIOUS_OFFSET)?;
    memory
        .write_obj(256u16 * 16 - 1, GuestAddress(MB_IDTR))
        .map_err(Error::Access)?;
    put(MB_IDTR + 2, IDT).map_err(Error::Access)?;
    put(MB_ITERS, u64::from(iters)).map_err(Error::Access)?;
    put(MB_SAMPLES, SAMPLES).map_err(Error::Access)?;
    put(MB_WARMUP, u64::from(WARMUP)).map_err(Error::Access)?;
    put(MB_IPI_SAMPLES, ipi_samples(iters)).map_err(Error::Access)?;
    memory
        .write_slice(image, GuestAddress(CODE_BASE))
        .map_err(Error::Access)
}

/// Where the self-IPI samples go: after the round-trip samples.
fn ipi_samples(iters: u32) -> u64 {
    SAMPLES + u64::from(iters) * 8
}

/// A 64-bit interrupt gate (DPL0, present) to `handler`.
fn gate(memory: &GuestMemoryMmap, vector: u8, handler: u64) -> Result<(), Error> {
    let low = (handler & 0xffff)
        | (u64::from(CODE_SELECTOR) << 16)
        | (0x8E << 40)
        | (((handler >> 16) & 0xffff) << 48);
    let at = IDT + u64::from(vector) * 16;
    memory
        .write_obj(low, GuestAddress(at))
        .and_then(|()| memory.write_obj(handler >> 32, GuestAddress(at + 8)))
        .map_err(Error::Access)
}

/// A flat segment for `selector` (type 11 = code, 3 = data).
fn segment(selector: u16, type_: u8, long: u8, db: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db,
        s: 1,
        l: long,
        g: 1,
        ..Default::default()
    }
}
