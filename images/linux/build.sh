#!/usr/bin/env bash
# Builds the dmalab Linux guest: Debian's linux-source-6.1, `make tinyconfig`
# plus images/linux/dmalab.config, the patches in images/linux/patches/, and
# the dmaengine driver (guest-driver/linux/) and the test harness
# (guest-driver/linux/harness/) built in. Prints the absolute path of the
# uncompressed vmlinux as its last stdout line; everything else goes to stderr.
#
# Cache: ${DMALAB_CACHE:-$HOME/.cache/dmalab}/linux/
#   src-<key>/    the unpacked, patched kernel source (key: package version
#                 and patches); driver and harness are copied in, a file only
#                 when its content changed, so make rebuilds only what did
#   build-<key>/  the persistent build tree (key: source key and fragment);
#                 drivers can be built out of tree against it
#   out-<key>/    the vmlinux of one exact set of inputs (key: all of them);
#                 when it exists the script does nothing else
#   build         a link to the build tree used last
#
# Environment: DMALAB_CACHE (cache root), DMALAB_JOBS (make -j, default 2).
# Usage: images/linux/build.sh [--print-build-dir]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
package=linux-source-6.1
tarball=/usr/src/linux-source-6.1.tar.xz
cache=${DMALAB_CACHE:-$HOME/.cache/dmalab}/linux
jobs=${DMALAB_JOBS:-2}
fragment=$here/dmalab.config
driver_dir=$repo/guest-driver/linux
harness_dir=$repo/guest-driver/linux/harness

log() { echo "linux-image: $*" >&2; }
die() { echo "linux-image: $*" >&2; exit 1; }

print_build_dir=false
case "${1:-}" in
  "") ;;
  --print-build-dir) print_build_dir=true ;;
  *) echo "usage: images/linux/build.sh [--print-build-dir]" >&2; exit 64 ;;
esac

# --- the kernel source package --------------------------------------------
if [ ! -f "$tarball" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "$tarball is missing and installing $package needs root: run images/setup-host.sh as root"
    sudo="sudo"
  fi
  log "installing $package (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >&2
fi
version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || stat -c '%s-%Y' "$tarball")

# --- input keys ------------------------------------------------------------
# Files of the driver and the harness that go into the kernel tree.
tree_files() { # dir -> relative paths, sorted
  [ -d "$1" ] || return 0
  (cd "$1" && find . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' -o -name Kbuild -o -name Kconfig \) \
    -printf '%P\n' | LC_ALL=C sort)
}
hash_files() { # dir, files... -> one hash over names and contents
  local dir=$1; shift
  local f
  for f in "$@"; do printf '%s\n' "$f"; sha256sum < "$dir/$f"; done | sha256sum | cut -c1-16
}

mapfile -t patches < <(cd "$here/patches" && find . -maxdepth 1 -name '*.patch' -printf '%P\n' | LC_ALL=C sort)
mapfile -t driver_files < <(tree_files "$driver_dir")
mapfile -t harness_files < <(tree_files "$harness_dir")

src_key=$(printf '%s\n%s\n' "$version" "$(hash_files "$here/patches" "${patches[@]}")" | sha256sum | cut -c1-16)
# One build tree per source and fragment: checkouts of different versions
# share the cache, and one tree reconfigured back and forth between two
# fragments would rebuild most of the kernel each time.
build_key=$(printf '%s\n%s\n' "$src_key" "$(sha256sum < "$fragment")" | sha256sum | cut -c1-16)
# The Kconfig files decide which options exist; the configuration is redone
# only when they change.
config_key=$(printf '%s\n%s\n%s\n' "$build_key" \
  "$( [ -f "$driver_dir/Kconfig" ] && sha256sum < "$driver_dir/Kconfig")" \
  "$( [ -f "$harness_dir/Kconfig" ] && sha256sum < "$harness_dir/Kconfig")" | sha256sum | cut -c1-16)
out_key=$(printf '%s\n%s\n%s\n%s\n' "$config_key" \
  "$(hash_files "$driver_dir" "${driver_files[@]}")" \
  "$(hash_files "$harness_dir" "${harness_files[@]}")" \
  "$(sha256sum < "${BASH_SOURCE[0]}")" | sha256sum | cut -c1-16)

src=$cache/src-$src_key
build=$cache/build-$build_key
out=$cache/out-$out_key

if $print_build_dir; then
  echo "$build"
  exit 0
fi

if [ -f "$out/vmlinux" ]; then
  log "up to date ($out)"
  echo "$out/vmlinux"
  exit 0
fi

mkdir -p "$cache"
# Tests build the image from several processes at once: one builder at a time.
exec 9>"$cache/lock"
if ! flock -n 9; then
  log "waiting for another build ($cache/lock)"
  flock 9
fi
if [ -f "$out/vmlinux" ]; then
  log "up to date ($out), built meanwhile"
  echo "$out/vmlinux"
  exit 0
fi

# --- source tree: unpack and patch once per key ------------------------------
if [ ! -f "$src/.dmalab-ready" ]; then
  rm -rf "$src" "$src.tmp"
  mkdir -p "$src.tmp"
  log "unpacking $tarball ($package $version) into $src"
  tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
  for p in "${patches[@]}"; do
    log "applying patches/$p"
    patch -d "$src.tmp" -p1 --forward --quiet < "$here/patches/$p" >&2 || die "patches/$p does not apply to $package $version"
  done
  touch "$src.tmp/.dmalab-ready"
  mv "$src.tmp" "$src"
fi

# --- driver and harness: copied in when their content changed --------------
sync_dir() { # from-dir, to-dir (relative to the source), files...
  local from=$1 rel=$2
  local to=$src/$rel
  shift 2
  mkdir -p "$to"
  local f
  for f in "$@"; do
    if ! cmp -s "$from/$f" "$to/$f"; then
      log "updating $rel/$f"
      cp "$from/$f" "$to/$f"
    fi
  done
  # Files removed from the repository leave the tree too.
  for f in $(cd "$to" && find . -maxdepth 1 -type f -printf '%P\n'); do
    if [ ! -f "$from/$f" ]; then
      log "removing $rel/$f"
      rm -f "$to/$f"
    fi
  done
}
hook_in() { # subdir of drivers/dma with a Kconfig and a Kbuild
  local sub=$1
  grep -qF "source \"drivers/dma/$sub/Kconfig\"" "$src/drivers/dma/Kconfig" ||
    sed -i "\$i source \"drivers/dma/$sub/Kconfig\"" "$src/drivers/dma/Kconfig"
  grep -qF "obj-y += $sub/" "$src/drivers/dma/Makefile" ||
    echo "obj-y += $sub/" >> "$src/drivers/dma/Makefile"
}
if [ -f "$driver_dir/Kconfig" ]; then
  sync_dir "$driver_dir" drivers/dma/dmalab "${driver_files[@]}"
  hook_in dmalab
fi
if [ -f "$harness_dir/Kconfig" ]; then
  sync_dir "$harness_dir" drivers/dma/dmalab-harness "${harness_files[@]}"
  hook_in dmalab-harness
fi

# --- configuration: tinyconfig + fragment, checked ----------------------------
mkdir -p "$build"
if [ "$(cat "$build/.dmalab-config-key" 2>/dev/null)" != "$config_key" ]; then
  log "configuring $build (tinyconfig + $(basename "$fragment"))"
  make -C "$src" O="$build" -s tinyconfig >/dev/null
  "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" >/dev/null
  make -C "$src" O="$build" -s olddefconfig >&2
  bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) want=$line; name=${line%%=*} ;;
      "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}; want="" ;;
      *) continue ;;
    esac
    got=$(grep -E "^$name=" "$build/.config" || true)
    if [ "$got" != "$want" ]; then
      log "config: $fragment asks for '${want:-# $name is not set}', the kernel has '${got:-unset}'"
      bad=1
    fi
  done < "$fragment"
  [ "$bad" -eq 0 ] || die "the configuration does not match the fragment (see above)"
  echo "$config_key" > "$build/.dmalab-config-key"
fi
# $cache/build names the tree built last, for out-of-tree driver builds.
ln -sfn "$(basename "$build")" "$cache/build"
touch "$src" "$build"

# --- build -------------------------------------------------------------------
# "modules" builds none (everything is built in) but leaves the tree ready
# for out-of-tree modules: Module.symvers, scripts/module.lds, modpost.
log "make -j$jobs vmlinux modules in $build"
start=$(date +%s)
make -C "$src" O="$build" -j"$jobs" -s vmlinux modules >&2 || die "kernel build failed (build tree $build)"
log "built in $(( $(date +%s) - start )) s"

mkdir -p "$out.tmp"
cp "$build/vmlinux" "$out.tmp/vmlinux"
cp "$build/.config" "$out.tmp/config"
cp "$build/System.map" "$out.tmp/System.map"
rm -rf "$out"
mv "$out.tmp" "$out"
# Keep the newest few of each: checkouts of other versions share the cache.
prune() { # kind, how many to keep
  (cd "$cache" && ls -1dt "$1"-*/ 2>/dev/null | tail -n +$(($2 + 1)) | xargs -r rm -rf)
}
prune out 8
prune build 4
prune src 3
echo "$out/vmlinux"
