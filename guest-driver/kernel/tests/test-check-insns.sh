#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# test-check-insns.sh CC OBJDUMP SRCDIR OUTDIR
#
# Tests the CPL0 instruction check itself, so that it cannot silently stop
# catching anything: every instruction of insns-bad.S must be reported
# (and the object rejected), and insns-good.S must pass.
set -eu

cc=$1
objdump=$2
src=$3
out=$4/check-insns-test
mkdir -p "$out"

"$cc" -c -o "$out/bad.o" "$src/tests/insns-bad.S"
"$cc" -c -o "$out/good.o" "$src/tests/insns-good.S"

# One report per instruction line (and per .byte line: one undecodable
# byte each).
want=$(sed -n '/^bad_begin:/,/^bad_end:/p' "$src/tests/insns-bad.S" |
	grep -c '^	[a-z.]')

if sh "$src/check-insns.sh" "$objdump" "$out/bad.o" 2>"$out/bad.log"; then
	echo "test-check-insns: insns-bad.S was accepted" >&2
	exit 1
fi
got=$(grep -c ': section ' "$out/bad.log" || true)
if [ "$got" -ne "$want" ]; then
	echo "test-check-insns: $got of $want bad instructions reported:" >&2
	cat "$out/bad.log" >&2
	exit 1
fi
if ! sh "$src/check-insns.sh" "$objdump" "$out/good.o"; then
	echo "test-check-insns: insns-good.S was rejected" >&2
	exit 1
fi
echo "test-check-insns: ok ($got bad instructions caught, good code accepted)"
