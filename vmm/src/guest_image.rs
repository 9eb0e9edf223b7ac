//! The built-in guest: the dmalab guest kernel ELF that `build.rs` builds
//! from `guest-driver/kernel/` (or takes from `DMALAB_GUEST_ELF`), embedded
//! so that `dmalab run` needs no file.

/// The dmalab guest kernel (ELF64 x86-64, linked at 1 MiB).
pub static BUILTIN_GUEST: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/guest/dmalab-guest.elf"));

/// How error messages name the built-in guest.
pub const BUILTIN_NAME: &str = "<built-in guest>";

/// Writes the built-in guest ELF to `path` (for gdb's `file`).
pub fn write_builtin(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(path, BUILTIN_GUEST)
}

/// A path holding the built-in guest ELF for `--gdb` to print:
/// `$TMPDIR/dmalab-guest-<hash>.elf`, named for its contents so that
/// different builds do not overwrite each other's, written (through a
/// rename, so a reader never sees half a file) if not there yet.
pub fn builtin_on_disk() -> std::io::Result<std::path::PathBuf> {
    // FNV-1a: a stable name for these bytes, not a security measure.
    let hash = BUILTIN_GUEST.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = std::env::temp_dir();
    let path = dir.join(format!("dmalab-guest-{hash:016x}.elf"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == BUILTIN_GUEST.len() as u64) {
        return Ok(path);
    }
    let partial = dir.join(format!(
        "dmalab-guest-{hash:016x}.elf.{}",
        std::process::id()
    ));
    write_builtin(&partial)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}
