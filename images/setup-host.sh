#!/usr/bin/env bash
# Installs what building and testing dmalab needs on a Debian 12 host, and
# nothing when it is all there already (idempotent; prints what it fetches).
#
#   gcc, make, binutils  the dmalab guest kernel (freestanding C) and its
#                        instruction check (objdump)
#   linux-source-6.1,    the Linux guest image (images/linux/build.sh):
#   bc, bison, flex,     Debian's kernel source tarball and what building a
#   libelf-dev,          vmlinux from it needs
#   libssl-dev, patch,
#   xz-utils, cpio
#   gdb                  the gdb stub's test (tests/gdb.rs) and debugging
#                        a guest (docs/debugging.md)
#   socat                the control API's shell examples and their test
#                        (docs/control-api.md, tests/control.rs)
#   g++                  libFuzzer, which the device model's fuzz targets
#                        build (device-model/fuzz/run.sh, run by CI)
#   cargo, rustc         the VMM and the device model (the machine's rustup
#                        toolchain; this script only checks that it is there)
#
# Usage: images/setup-host.sh         (run as root, or with sudo available)
set -euo pipefail

packages=(gcc make binutils
          linux-source-6.1 bc bison flex libelf-dev libssl-dev patch xz-utils cpio
          gdb socat g++)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup-host: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup-host: installing ${missing[*]} (apt-get)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup-host: cargo not found: install a Rust toolchain (https://rustup.rs) and rerun" >&2
  exit 1
fi
