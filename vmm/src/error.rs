//! The top-level error of `dmalab run` and the exit status it carries
//! (the statuses themselves are `dmalab_protocol::status`).
//!
//! A user error prints one line on stderr, `dmalab: <what>: <cause>`, whose
//! first part says what to do. Statuses 71–73 come with register dumps and
//! are printed by `run.rs`, not through this type.

use std::path::PathBuf;

use crate::vm;

/// Exit statuses (defined once, in the protocol crate).
pub use dmalab_protocol::status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot read kernel '{}' (give --kernel the path of a dmalab guest ELF or a \
         Linux vmlinux or bzImage, or leave --kernel out to boot the built-in guest)",
        path.display()
    )]
    KernelRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "kernel '{name}' is not a dmalab guest kernel (an x86-64 ELF executable \
         linked at 1 MiB, as guest-driver/kernel builds) nor a Linux vmlinux or bzImage"
    )]
    KernelInvalid {
        name: String,
        #[source]
        source: crate::boot::elf::Error,
    },
    #[error("kernel '{name}' looks like a Linux {format} but cannot be booted")]
    LinuxInvalid {
        name: String,
        format: &'static str,
        #[source]
        source: crate::boot::linux::Error,
    },
    #[error("cannot read initrd '{}' (give --initrd the path of an initramfs)", path.display())]
    InitrdRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--initrd needs a Linux --kernel (a vmlinux or bzImage); the dmalab guest takes none")]
    InitrdNeedsLinux,
    #[error("bad guest command line (shorten --cmdline)")]
    Cmdline(#[source] crate::boot::Error),
    #[error("cannot set up the VM")]
    Vm(#[source] vm::Error),
    #[error("cannot start the gdb stub")]
    Gdb(#[source] crate::gdb::Error),
    #[error("cannot install the vCPU kick signal handler")]
    Signal(#[source] vmm_sys_util::errno::Error),
    #[error("cannot set up the seccomp filters")]
    Seccomp(#[source] crate::seccomp::Error),
    #[error("cannot start a vCPU thread")]
    Thread(#[source] std::io::Error),
    #[error("every vCPU thread ended without a report")]
    NoReport,
    #[error("cannot read fault plan '{}' (give --faults the path of a TOML plan, see docs/fault-plans.md)", path.display())]
    PlanRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad fault plan '{}'", path.display())]
    PlanInvalid {
        path: PathBuf,
        #[source]
        source: device_model::fault::FaultPlanError,
    },
    #[error("cannot set up the DMA controller")]
    Dma(#[source] crate::dma_device::Error),
    #[error("{what} '{}': {why} (checked before the run; nothing ran)", path.display())]
    OutputPath {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("cannot write {what} '{}'", path.display())]
    Output {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit status for this error.
    pub fn status(&self) -> u8 {
        match self {
            Error::KernelRead { .. }
            | Error::KernelInvalid { .. }
            | Error::LinuxInvalid { .. }
            | Error::InitrdRead { .. }
            | Error::InitrdNeedsLinux
            | Error::Cmdline(_)
            | Error::PlanRead { .. }
            | Error::PlanInvalid { .. }
            | Error::OutputPath { .. } => status::USAGE,
            Error::Dma(e) if e.is_usage() => status::USAGE,
            Error::Gdb(e) if e.is_usage() => status::USAGE,
            Error::Vm(e) if e.kvm_unavailable() => status::KVM_UNAVAILABLE,
            Error::Vm(_)
            | Error::Signal(_)
            | Error::Seccomp(_)
            | Error::Thread(_)
            | Error::NoReport
            | Error::Dma(_)
            | Error::Gdb(_)
            | Error::Output { .. } => status::INTERNAL,
        }
    }
}

/// An error and its causes on one line (defined with the exit statuses:
/// both programs of `dmalab` print their errors this way).
pub use dmalab_protocol::one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kernel_is_a_usage_error_with_a_hint() {
        let e = Error::KernelRead {
            path: "/nope/kernel.elf".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.status(), status::USAGE);
        let line = one_line(&e);
        assert!(
            line.starts_with("cannot read kernel '/nope/kernel.elf' (give --kernel"),
            "{line}"
        );
        assert!(line.contains("not found"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_bad_plan_is_one_line_naming_the_file() {
        let source = device_model::fault::FaultPlan::from_toml("this is = = not toml").unwrap_err();
        let e = Error::PlanInvalid {
            path: "plan.toml".into(),
            source,
        };
        assert_eq!(e.status(), status::USAGE);
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("bad fault plan 'plan.toml': cannot read the fault plan: TOML parse error at line 1"), "{line}");
        assert!(!line.contains('^') && !line.contains(" | "), "{line}");
    }

    #[test]
    fn kvm_errors_map_to_69_or_70() {
        let no_kvm = Error::Vm(vm::Error::KvmOpen(kvm_ioctls::Error::new(libc::EACCES)));
        assert_eq!(no_kvm.status(), status::KVM_UNAVAILABLE);
        assert!(one_line(&no_kvm).contains("join the 'kvm' group"));
        let internal = Error::Vm(vm::Error::Kvm(
            "KVM_SET_REGS",
            kvm_ioctls::Error::new(libc::EINVAL),
        ));
        assert_eq!(internal.status(), status::INTERNAL);
    }
}
