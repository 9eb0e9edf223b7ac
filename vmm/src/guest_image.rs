//! The built-in guest: the dmalab guest kernel ELF that `build.rs` builds
//! from `guest-driver/kernel/` (or takes from `DMALAB_GUEST_ELF`), embedded
//! so that `dmalab run` needs no file.

/// The dmalab guest kernel (ELF64 x86-64, linked at 1 MiB).
pub static BUILTIN_GUEST: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/guest/dmalab-guest.elf"));

/// How error messages name the built-in guest.
pub const BUILTIN_NAME: &str = "<built-in guest>";
