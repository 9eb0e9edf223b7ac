//! Builds the dmalab guest kernel as part of the normal build, so the binary
//! can embed it (`include_bytes!` in `src/guest_image.rs`).
//!
//! Runs `make -C <workspace>/guest-driver/kernel O=$OUT_DIR/guest`, which
//! produces `$OUT_DIR/guest/dmalab-guest.elf` (the contract with the guest
//! kernel's Makefile). If make or the compiler fails, the build fails with
//! the compiler's messages.
//!
//! `DMALAB_GUEST_ELF=<path>` skips make and embeds that prebuilt ELF instead
//! (for a host without gcc, or to pin a known-good guest while bisecting).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const GUEST_ELF: &str = "dmalab-guest.elf";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guest_out = out_dir.join("guest");
    let dest = guest_out.join(GUEST_ELF);

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DMALAB_GUEST_ELF");
    if let Some(prebuilt) = env::var_os("DMALAB_GUEST_ELF") {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        if let Err(e) = std::fs::create_dir_all(&guest_out)
            .and_then(|()| std::fs::copy(&prebuilt, &dest).map(drop))
        {
            fail(&format!(
                "DMALAB_GUEST_ELF={}: cannot copy it into the build: {e}",
                prebuilt.display()
            ));
        }
        return;
    }

    let kernel_dir = manifest_dir.join("..").join("guest-driver").join("kernel");
    // A directory: cargo rescans everything below it for changes.
    println!("cargo:rerun-if-changed={}", kernel_dir.display());
    build_guest(&kernel_dir, &guest_out);
    if !dest.is_file() {
        fail(&format!(
            "make -C {} succeeded but did not produce {}",
            kernel_dir.display(),
            dest.display()
        ));
    }
}

fn build_guest(kernel_dir: &Path, guest_out: &Path) {
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(kernel_dir)
        .arg(format!("O={}", guest_out.display()));
    // Share cargo's jobserver so the guest build respects `-j`.
    if let Some(flags) = env::var_os("CARGO_MAKEFLAGS") {
        make.env("MAKEFLAGS", flags);
    }
    let output = match make.output() {
        Ok(output) => output,
        Err(e) => fail(&format!(
            "cannot run make for the guest kernel ({e}); install make and gcc, \
             or set DMALAB_GUEST_ELF to a prebuilt dmalab-guest.elf"
        )),
    };
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        fail(&format!(
            "building the guest kernel failed ({}): make -C {} O={}",
            output.status,
            kernel_dir.display(),
            guest_out.display()
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1);
}
