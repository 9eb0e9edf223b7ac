#!/usr/bin/env bash
# Runs the unit tests of device-model and vmm, and guests, under a sanitizer
# (docs/fuzzing.md, "Sanitizers"). Not part of .ci/run (too slow for its
# budget): run it by hand or from a nightly job.
#
#   .ci/sanitize.sh asan       # AddressSanitizer + LeakSanitizer (default)
#   .ci/sanitize.sh valgrind   # memcheck on the same tests, normal build
#
# asan: the stable toolchain with RUSTC_BOOTSTRAP=1 (lets it take
# -Zsanitizer; no nightly toolchain needed), an instrumented build in
# target/asan (--target so build scripts and proc macros stay plain), then
# the unit tests and three guest runs with the instrumented dmalab.
# valgrind: Debian's valgrind over the normal debug test binaries and the
# same guest runs. Guest runs use --no-seccomp: LeakSanitizer stops the
# world at exit with clone and ptrace, and valgrind issues its own system
# calls, both refused by the filters (docs/hardening.md).
# Exits non-zero on any sanitizer report or failed test.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-asan}
TARGET=x86_64-unknown-linux-gnu
JOBS=${JOBS:-2}
GUEST_RUNS=(
  "--scenario dma-smoke --timing instant"
  "--scenario dma-smoke --timing realtime --doorbell ioeventfd --cpus 2"
  "--scenario hostile --timing instant --cmdline seed=7"
)

guest_runs() {
  local bin=$1
  shift
  for args in "${GUEST_RUNS[@]}"; do
    echo "== guest: dmalab run $args" >&2
    # shellcheck disable=SC2086 # the arguments are meant to split
    "$@" "$bin" run $args --timeout 120 --no-seccomp >/dev/null
  done
}

case "$MODE" in
asan)
  export RUSTC_BOOTSTRAP=1
  export RUSTFLAGS="-Zsanitizer=address"
  export RUSTDOCFLAGS="-Zsanitizer=address"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
  echo "== asan: unit tests of device-model and vmm (target/asan)" >&2
  cargo test -j"$JOBS" --target "$TARGET" --target-dir target/asan \
    -p device-model -p vmm --lib
  echo "== asan: dmalab" >&2
  cargo build -j"$JOBS" --target "$TARGET" --target-dir target/asan -p dmalab
  guest_runs "target/asan/$TARGET/debug/dmalab" env
  ;;
valgrind)
  command -v valgrind >/dev/null || {
    echo "sanitize: valgrind is missing (apt-get install valgrind)" >&2
    exit 69
  }
  VG=(valgrind --quiet --error-exitcode=86 --leak-check=full
    --errors-for-leak-kinds=definite --track-origins=no)
  echo "== valgrind: building the unit-test binaries" >&2
  mapfile -t bins < <(cargo test -j"$JOBS" -p device-model -p vmm --lib --no-run \
    --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
  for b in "${bins[@]}"; do
    echo "== valgrind: $b" >&2
    # One test thread: valgrind serialises threads anyway. The seccomp
    # tests are skipped: valgrind does not implement seccomp(2).
    "${VG[@]}" "$b" --test-threads=1 -q --skip seccomp::tests::
  done
  cargo build -j"$JOBS" -p dmalab
  guest_runs target/debug/dmalab "${VG[@]}"
  ;;
*)
  echo "sanitize: unknown mode '$MODE' (asan or valgrind)" >&2
  exit 64
  ;;
esac
echo "sanitize: $MODE clean" >&2
