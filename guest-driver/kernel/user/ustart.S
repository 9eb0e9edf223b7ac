/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * u_start(main, arg): where every user program begins (user_run irets
 * here at CPL3). Calls main(arg) on the user stack and passes its return
 * value to SYS_EXIT. The user stack lives here too, in the user image's
 * .bss (zero at entry, never cleared).
 */
#include "abi.h"

	.text
	.globl u_start
u_start:
	mov	%rdi, %rax
	mov	%rsi, %rdi
	call	*%rax
	mov	%rax, %rdi
	mov	$SYS_EXIT, %eax
	int3
	ud2				/* SYS_EXIT does not return */

	.bss
	.balign 16
u_stack:
	.skip	16384
	.globl u_stack_top
u_stack_top:

	.section .note.GNU-stack, "", @progbits
