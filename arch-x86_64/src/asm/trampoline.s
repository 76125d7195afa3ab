/* Application-processor start-up (AT&T syntax).
 *
 * smp.rs copies keel_trampoline_start..keel_trampoline_end to a free page below 1 MiB and
 * fills the data block at its end (struct TrampolineData in smp.rs, whose field offsets
 * are the t_* operands of its global_asm!). A start-up
 * IPI starts the AP in real mode at CS = page >> 4, IP = 0. It loads the block's GDT,
 * enters 32-bit protected mode, loads Keel's page tables, enables long mode and far-jumps
 * to keel_ap_entry64 in the image, which takes the AP's own stack and calls
 * keel_ap_main(arg). EBX holds the page's physical address throughout. */

        .set T_GDTR, {t_gdtr}
        .set T_FAR32, {t_far32}
        .set T_FAR64, {t_far64}
        .set T_CR3, {t_cr3}
        .set T_EFER, {t_efer}
        .set T_STACK, {t_stack}
        .set T_ARG, {t_arg}
        .set T_DATA_SIZE, {t_data_size}
        .set DATA, keel_trampoline_data - keel_trampoline_start

        .section .rodata.keel_trampoline, "a"
        .balign 16
        .global keel_trampoline_start
keel_trampoline_start:
        .code16
        cli
        cld
        mov     %cs, %ax
        mov     %ax, %ds
        movzwl  %ax, %ebx
        shl     $4, %ebx
        lgdtl   DATA + T_GDTR
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   *(DATA + T_FAR32)

        .code32
        .global keel_trampoline_32
keel_trampoline_32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x20, %eax                 /* CR4.PAE */
        mov     %eax, %cr4
        mov     DATA + T_CR3(%ebx), %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx           /* EFER: LME (and NXE as on the boot CPU) */
        mov     DATA + T_EFER(%ebx), %eax
        mov     DATA + T_EFER + 4(%ebx), %edx
        wrmsr
        mov     $0x80010033, %eax           /* PG | WP | NE | ET | MP | PE */
        mov     %eax, %cr0
        ljmpl   *DATA + T_FAR64(%ebx)

        .balign 8
        .global keel_trampoline_data
keel_trampoline_data:
        .skip   T_DATA_SIZE
        .global keel_trampoline_end
keel_trampoline_end:

        .section .text.keel_ap_entry, "ax"
        .code64
        .global keel_ap_entry64
keel_ap_entry64:
        KEEL_LOAD_FLAT_SEGMENTS
        mov     %ebx, %ebx                  /* the upper half is undefined after the switch */
        mov     DATA + T_STACK(%rbx), %rsp
        mov     DATA + T_ARG(%rbx), %rdi
        xor     %ebp, %ebp
        call    keel_ap_main
        ud2

        .purgem KEEL_LOAD_FLAT_SEGMENTS
