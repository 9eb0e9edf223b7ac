#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# check-insns.sh OBJDUMP ELF
#
# Fails if the kernel (CPL0) code of ELF contains an instruction that this
# platform's KVM emulator cannot run at CPL0 (docs/platform.md): any
# xmm/ymm/zmm/mmx/x87/mask register, x87, SSE/AVX mnemonics, int3 and
# int $n, rdtscp, popcnt, crc32, lzcnt, the BMI1/BMI2 group, cmpxchg16b,
# movbe, xsave/xrstor/xgetbv/xsetbv, fxsave/fxrstor, ldmxcsr/stmxcsr,
# movnti, and undecodable bytes. The .user.* sections (CPL3 code, native)
# are exempt. tzcnt is allowed: it runs at CPL0 here (kvm-probe g_tzcnt),
# and gcc emits it for __builtin_ctz as `rep bsf`.
set -eu

objdump=$1
elf=$2

"$objdump" -d --no-show-raw-insn -M att "$elf" | awk -v elf="$elf" '
/^Disassembly of section / {
	sec = $4; sub(/:$/, "", sec)
	skip = (sec ~ /^\.user/)
	next
}
skip { next }
/^ *[0-9a-f]+:\t/ {
	line = $0
	insn = line; sub(/^ *[0-9a-f]+:\t/, "", insn)
	n = split(insn, w, /[ \t,]+/)
	m = 1
	while (m < n && w[m] ~ /^(lock|rep|repz|repe|repnz|repne|data16|addr32|notrack|bnd|cs|ds|es|ss|fs|gs|rex(\.[WRXB]+)?)$/)
		m++
	op = w[m]
	bad = ""
	if (insn ~ /%(x|y|z)mm[0-9]/ || insn ~ /%mm[0-7]/ || insn ~ /%st(\([0-7]\))?/ || insn ~ /%k[0-7]/)
		bad = "SIMD/x87 register"
	else if (op ~ /^(int3|int|int1|icebp|into|rdtscp|popcnt|crc32|lzcnt|andn|bextr|blsi|blsmsk|blsr|bzhi|pdep|pext|mulx|rorx|sarx|shlx|shrx|movbe|cmpxchg16b|xgetbv|xsetbv|ldmxcsr|stmxcsr|movnti|emms|femms|wait)$/)
		bad = "not runnable at CPL0 here"
	else if (op ~ /^(\(bad\)|\.byte)$/)
		bad = "undecodable bytes"
	else if (op ~ /^(xsave|xrstor|fxsave|fxrstor)/)
		bad = "extended state save/restore"
	else if (op ~ /^f/ && op != "fs")
		bad = "x87"
	else if (op ~ /^v/ && op !~ /^(verr|verw)$/)
		bad = "AVX"
	if (bad != "") {
		printf "%s: section %s: %s: %s\n", elf, sec, bad, line > "/dev/stderr"
		errors++
	}
}
END {
	if (errors) {
		printf "%s: %d instruction(s) this platform cannot run at CPL0 (docs/platform.md)\n", elf, errors > "/dev/stderr"
		exit 1
	}
}'
