//! Assembles `guest.S` into the flat image the floor VM loads.
//!
//! gcc is already a build requirement (the dmalab guest kernel is built by
//! `vmm/build.rs`), so the floor guest stays readable assembly rather than
//! hand-encoded bytes: `gcc -c` then `objcopy -O binary -j .text`, in a
//! fresh directory under the system temp dir, removed afterwards. The image
//! is position independent except for the fixed addresses in `guest.S`'s
//! header, which `vm.rs` mirrors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{fs, io};

const SOURCE: &str = include_str!("guest.S");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use the scratch directory {0}")]
    Scratch(PathBuf, #[source] io::Error),
    #[error("cannot run {0} (is it installed?)")]
    Spawn(&'static str, #[source] io::Error),
    #[error("{0} failed: {1}")]
    Tool(&'static str, String),
}

/// The floor guest as flat bytes, to be loaded at `vm::CODE_BASE`.
pub fn assemble() -> Result<Vec<u8>, Error> {
    let dir = std::env::temp_dir().join(format!("dmalab-floor-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| Error::Scratch(dir.clone(), e))?;
    let result = assemble_in(&dir);
    // Best effort: a leftover scratch directory harms nothing.
    let _ = fs::remove_dir_all(&dir);
    result
}

fn assemble_in(dir: &Path) -> Result<Vec<u8>, Error> {
    let source = dir.join("guest.S");
    let object = dir.join("guest.o");
    let flat = dir.join("guest.bin");
    fs::write(&source, SOURCE).map_err(|e| Error::Scratch(dir.to_path_buf(), e))?;
    tool(
        "gcc",
        Command::new("gcc")
            .args(["-c", "-x", "assembler-with-cpp", "-o"])
            .arg(&object)
            .arg(&source),
    )?;
    tool(
        "objcopy",
        Command::new("objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&object)
            .arg(&flat),
    )?;
    fs::read(&flat).map_err(|e| Error::Scratch(dir.to_path_buf(), e))
}

fn tool(name: &'static str, command: &mut Command) -> Result<(), Error> {
    let out = command.output().map_err(|e| Error::Spawn(name, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tool(
            name,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
