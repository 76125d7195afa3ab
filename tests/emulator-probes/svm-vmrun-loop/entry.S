/*
 * svm-vmrun-loop: entry, long mode, the AP trampoline, interrupt stubs and the guest.
 * GRUB (multiboot2) enters _start in 32-bit protected mode with paging off.
 */

#define EFER_MSR 0xc0000080
/* LME | NXE, as Keel's host EFER (SVME is set later, per CPU, by the C code). */
#define EFER_BOOT 0x900
#define TRAMPOLINE 0x8000

	.section .multiboot, "a"
	.balign 8
mb2_header:
	.long 0xe85250d6
	.long 0
	.long mb2_end - mb2_header
	.long -(0xe85250d6 + 0 + (mb2_end - mb2_header))
	.word 0, 0
	.long 8
mb2_end:

	.section .text
	.code32
	.globl _start
_start:
	cli
	mov $bsp_stack_top, %esp
	lgdt gdt_desc
	ljmp $0x18, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	/* PML4[0] -> PDPT; PDPT[0..3]: 1 GiB pages of the first 4 GiB (LAPIC included). */
	mov $pdpt, %eax
	or $3, %eax
	mov %eax, pml4
	xor %ecx, %ecx
2:	mov %ecx, %eax
	shl $30, %eax
	or $0x83, %eax
	mov %eax, pdpt(, %ecx, 8)
	inc %ecx
	cmp $4, %ecx
	jne 2b
	call enter_long_mode
	ljmp $0x08, $bsp_long

/* PAE, CR3, EFER.LME|NXE, paging: shared by the BSP and the AP. */
enter_long_mode:
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $EFER_MSR, %ecx
	rdmsr
	or $EFER_BOOT, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax
	mov %eax, %cr0
	ret

	.code64
bsp_long:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ax, %ax
	mov %ax, %fs
	mov %ax, %gs
	mov $bsp_stack_top, %rsp
	call bsp_main
3:	hlt
	jmp 3b

ap_long:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ax, %ax
	mov %ax, %fs
	mov %ax, %gs
	mov $ap_stack_top, %rsp
	call ap_main
4:	hlt
	jmp 4b

/* Copied to TRAMPOLINE (0x8000) by the BSP; the AP starts here in real mode. */
	.code16
	.globl ap_tramp, ap_tramp_end
ap_tramp:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl (ap_gdt_desc - ap_tramp + TRAMPOLINE)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $(ap_prot - ap_tramp + TRAMPOLINE)
	.code32
ap_prot:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $ap_stack_top, %esp
	/* Absolute: this code runs at a copy, where a relative call would miss. */
	mov $enter_long_mode, %eax
	call *%eax
	ljmp $0x08, $ap_long
	.balign 8
ap_gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:

	.code64
/* The guest: PAUSE in a loop (each one intercepted), a VMMCALL every 256. Copied into
 * the guest's world; its counter lives in memory (the host does not keep the guest's
 * general-purpose registers). */
	.globl guest_code
guest_code:
5:	pause
	incl guest_counter(%rip)
	testl $0xff, guest_counter(%rip)
	jnz 5b
	vmmcall
	jmp 5b
	.balign 8
guest_counter:
	.long 0
	.globl guest_code_end
guest_code_end:

/* Interrupt and exception stubs: push an error code if the CPU did not, the vector,
 * the general registers, then isr_handler(frame). */
.macro stub n, err
isr_\n:
	.if \err == 0
	push $0
	.endif
	push $\n
	jmp isr_common
.endm
	stub 0, 0
	stub 1, 0
	stub 2, 0
	stub 3, 0
	stub 4, 0
	stub 5, 0
	stub 6, 0
	stub 7, 0
	stub 8, 1
	stub 9, 0
	stub 10, 1
	stub 11, 1
	stub 12, 1
	stub 13, 1
	stub 14, 1
	stub 15, 0
	stub 16, 0
	stub 17, 1
	stub 18, 0
	stub 19, 0
	stub 20, 0
	stub 21, 1
	stub 64, 0
	stub 255, 0
isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	cld
	call isr_handler
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl isr_table
/* (vector, stub) pairs, ended by vector 0xffff. */
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,64,255
	.quad \n, isr_\n
	.endr
	.quad 0xffff, 0

	.section .data
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.section .bss
	.balign 4096
	.globl pml4
pml4:	.space 4096
pdpt:	.space 4096
	.space 16384
bsp_stack_top:
	.space 16384
ap_stack_top:
	.section .note.GNU-stack, "", @progbits
