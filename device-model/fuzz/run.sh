#!/usr/bin/env bash
# Runs the device model's fuzz targets with cargo-fuzz (libFuzzer + ASan) on
# the stable toolchain (RUSTC_BOOTSTRAP=1 lets it use -Zsanitizer), each for
# SECONDS (default 60) from its seed corpus in corpus/<target>/. Exits
# non-zero on the first crash; the crashing input is in artifacts/<target>/.
#
#   device-model/fuzz/run.sh              # every target, 60 s each
#   device-model/fuzz/run.sh 600 system   # one target, 10 minutes
#
# Installs cargo-fuzz (pinned) into ~/.cargo/bin when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(registers system)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install)" >&2
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  # The seed corpus stays as committed: new inputs go to a scratch dir.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "== fuzz $t: $SECONDS_EACH s" >&2
  cargo fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1
  rm -rf "$work"
done
