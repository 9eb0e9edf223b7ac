/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Constants shared by the ISR stubs (isr.S), the static IDT (idt_table.S)
 * and the C side (trap.c). The linker script pins the stubs at ISR_BASE,
 * which lets the assembler build all 256 IDT gates as constants: the IDT
 * costs one lidt per CPU at boot, no instruction per vector.
 */
#ifndef DMALAB_ISR_H
#define DMALAB_ISR_H

#define ISR_BASE 0x100000
#define ISR_STUB_SIZE 16

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS 0x1b /* GDT entry 3, RPL 3 */
#define USER_CS 0x23 /* GDT entry 4, RPL 3 */
#define TSS_SEL0 0x28 /* GDT entries 5-6: TSS of CPU 0; CPU i at +16*i */

#define MAX_CPUS 16
#define KSTACK_SHIFT 14 /* 16 KiB kernel stack per CPU */

/* Vectors. 0-31 are exceptions. */
#define VEC_DE 0
#define VEC_UD 6
#define VEC_DF 8
#define VEC_PF 14
/* #BP through a DPL-3 gate is the system-call gate: on this platform
 * `syscall` does not reach CPL0 and `int n` at CPL3 gives #UD, while int3
 * from CPL3 enters the kernel (8.4 us round trip, docs/platform.md). */
#define VEC_SYSCALL 3
#define VEC_TIMER 0x20
#define VEC_DEVICE_FIRST 0x30 /* MSI/MSI-X vectors for drivers */
#define VEC_DEVICE_LAST 0xef
#define VEC_DPC_IPI 0xf0 /* the WDM layer: a DPC was queued for this CPU */
#define VEC_SPURIOUS 0xff

#endif
