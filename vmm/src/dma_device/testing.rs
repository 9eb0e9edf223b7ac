//! A device attached to a throw-away KVM VM (tests skip without KVM).
use super::*;
use crate::devices::pci::PciBus;
use device_model::regs::{self, channel_reg};
use kvm_ioctls::Kvm;
use vm_memory::{Bytes, GuestAddress};

pub struct Rig {
    pub vm: Arc<VmFd>,
    pub memory: GuestMemoryMmap,
    pub pci: PciBus,
    pub mmio: MmioBus,
    pub device: DmaDevice,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `None` if /dev/kvm is unusable, after the one skip rule of
/// `dmalab_protocol::kvm_skip` (a loud line, or a failure under
/// `DMALAB_REQUIRE_KVM=1` or `CI=true`).
pub fn rig(timing: TimingMode, doorbell: DoorbellMode) -> Option<Rig> {
    rig_with_profile(timing, doorbell, device_model::TimingConfig::default())
}

/// As `rig`, with the device timed by `profile`.
pub fn rig_with_profile(
    timing: TimingMode,
    doorbell: DoorbellMode,
    profile: device_model::TimingConfig,
) -> Option<Rig> {
    let test = dmalab_protocol::kvm_skip::current_test();
    if !dmalab_protocol::kvm_skip::kvm_usable(&test) {
        return None;
    }
    let kvm = Kvm::new().unwrap_or_else(|e| panic!("{test}: /dev/kvm opens but KVM does not: {e}"));
    let vm = Arc::new(kvm.create_vm().unwrap());
    vm.create_irq_chip().unwrap();
    let memory = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let mut pci = PciBus::new();
    let mmio = MmioBus::default();
    let options = DmaOptions {
        timing,
        profile,
        doorbell,
        plan: FaultPlan::default(),
        seed: 0,
        keep_trace: true,
        control: Some(std::env::temp_dir().join(format!(
            "dmalab-test-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))),
        pause: PauseGate::new(0),
        realtime_priority: None,
        realtime_spin_us: 0,
    };
    let device = DmaDevice::attach(&vm, &memory, &mut pci, &mmio, &options).unwrap();
    Some(Rig {
        vm,
        memory,
        pci,
        mmio,
        device,
    })
}

impl Rig {
    /// Channel 0 up (ring 0x1000, completions 0x2000, shadow 0x3000),
    /// one 64-byte copy 0x8000 → 0x9000 with IOC posted, shadow tail 1;
    /// the doorbell not rung.
    pub fn post_one_copy(&self) {
        self.post_copy(0x8000, 0x9000, 64);
    }

    /// As `post_one_copy`, for a copy of `len` bytes of 7s from `src` to
    /// `dst`.
    pub fn post_copy(&self, src: u64, dst: u64, len: u32) {
        let dma = &self.device.dma;
        let w = |r, v: u32| dma.access(|m| m.mmio_write(0, channel_reg(0, r), &v.to_le_bytes()));
        dma.access(|m| m.config_write(4, &[0x06, 0]));
        w(regs::CH_RING_BASE, 0x1000);
        w(regs::CH_RING_SIZE, 16);
        w(regs::CH_COMP_BASE, 0x2000);
        w(regs::CH_SHADOW_BASE, 0x3000);
        w(regs::CH_CTRL, regs::CTRL_ENABLE);
        self.memory
            .write_slice(&vec![7u8; len as usize], GuestAddress(src))
            .unwrap();
        let d = device_model::descriptor::Descriptor {
            src,
            dst,
            len,
            op: device_model::descriptor::OP_COPY,
            flags: device_model::descriptor::FLAG_IOC,
            cookie: 9,
        };
        self.memory
            .write_slice(&d.to_bytes(), GuestAddress(0x1000))
            .unwrap();
        self.memory.write_obj(1u32, GuestAddress(0x3000)).unwrap();
    }

    /// Whether `len` bytes at `dst` are all 7s (`post_copy`'s data).
    pub fn copied_to(&self, dst: u64, len: usize) -> bool {
        let mut out = vec![0u8; len];
        self.memory.read_slice(&mut out, GuestAddress(dst)).unwrap();
        out.iter().all(|&b| b == 7)
    }

    pub fn copied(&self) -> bool {
        self.copied_to(0x9000, 64)
    }
}
