//! From `--kernel` (and `--initrd`) to a checked [`Guest`], before any KVM
//! work, so every mistake is one line and exit status 64: a bzImage or an
//! ELF with a `Linux` note is booted as Linux (`boot/linux/`), any other
//! ELF as a dmalab guest; `--initrd` is read here and needs Linux.

use crate::boot::guest::Guest;
use crate::boot::linux::{self, Format};
use crate::boot::{elf, layout};
use crate::cli::RunArgs;
use crate::error::Error;

/// Checks the kernel `image` called `name` (and reads `--initrd`).
pub fn guest(args: &RunArgs, name: &str, image: &[u8]) -> Result<Guest, Error> {
    let Some(format) = Format::detect(image) else {
        if args.initrd.is_some() {
            return Err(Error::InitrdNeedsLinux);
        }
        let kernel = elf::parse(image, layout::low_ram_end(args.memory)).map_err(|source| {
            Error::KernelInvalid {
                name: name.to_string(),
                source,
            }
        })?;
        return Ok(Guest::Dmalab(kernel));
    };
    let initrd = match &args.initrd {
        Some(path) => Some(std::fs::read(path).map_err(|source| Error::InitrdRead {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let kernel = linux::Kernel::parse(format, image, args.memory, initrd).map_err(|source| {
        Error::LinuxInvalid {
            name: name.to_string(),
            format: format.name(),
            source,
        }
    })?;
    Ok(Guest::linux(kernel))
}

/// The guest's command line: the dmalab guest's (`--cmdline`, then the
/// scenario), or for Linux the VMM's defaults, then `--cmdline`, then
/// `scenario=NAME` if `--scenario` is given (no default scenario).
pub fn cmdline(args: &RunArgs, guest: &Guest) -> String {
    if !guest.is_linux() {
        return args.guest_cmdline();
    }
    let mut words = args.cmdline.clone();
    if let Some(name) = &args.scenario {
        words.push_str(" scenario=");
        words.push_str(name);
    }
    guest.cmdline(&words)
}
