/* Calls into 32-bit legacy protected mode (EFER.LMA clear) from long mode, for
 * `keel.test=legacy32` (legacy32.rs). AT&T syntax.
 *
 * u32 guest_legacy32_call(u32 target, const u32 regs[6], u32 cr3): through the flat
 * 32-bit code segment (0x18) into compatibility mode, paging off (the processor clears
 * EFER.LMA), EFER.LME cleared; with a non-zero `cr3`, 32-bit paging (no PAE, 4 MiB
 * pages: CR4.PSE) on that page directory; then `call target` with EAX, EBX, ECX, EDX,
 * ESI, EDI from `regs`; then paging off, CR3 and CR4 as they were, and long mode again,
 * returning the callee's EAX. Interrupts
 * are masked meanwhile (the IDT is a 64-bit one). The code, the stack, `regs` and
 * `target` must be below 4 GiB, where the guest's map is the identity. The upper halves
 * of registers do not survive a change of mode: every callee-saved register is on the
 * stack, and RSP is reloaded from memory. */

        .set EFER, 0xc0000080
        .set EFER_LME, 0x100
        .set CR0_PG, 0x80000000
        .set CR4_PSE, 0x10
        .set CR4_PAE, 0x20

        .section .text
        .code64
        .global guest_legacy32_call
guest_legacy32_call:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        pushfq
        cli
        mov     %rsp, guest_legacy32_rsp(%rip)
        mov     %edi, guest_legacy32_target(%rip)
        mov     %esi, guest_legacy32_regs(%rip)
        mov     %edx, guest_legacy32_paging(%rip)
        mov     %cr3, %rax
        mov     %rax, guest_legacy32_saved_cr3(%rip)
        mov     %cr4, %rax
        mov     %rax, guest_legacy32_saved_cr4(%rip)
        lea     1f(%rip), %rax
        pushq   $0x18
        push    %rax
        lretq
        .code32
1:      mov     %cr0, %eax
        and     $~CR0_PG, %eax
        mov     %eax, %cr0
        mov     $EFER, %ecx
        rdmsr
        and     $~EFER_LME, %eax
        wrmsr
        mov     guest_legacy32_paging, %eax
        test    %eax, %eax
        jz      3f
        mov     %eax, %cr3
        mov     %cr4, %eax
        and     $~CR4_PAE, %eax
        or      $CR4_PSE, %eax
        mov     %eax, %cr4
        mov     %cr0, %eax
        or      $CR0_PG, %eax
        mov     %eax, %cr0
3:      mov     guest_legacy32_regs, %ebp
        mov     0(%ebp), %eax
        mov     4(%ebp), %ebx
        mov     8(%ebp), %ecx
        mov     12(%ebp), %edx
        mov     16(%ebp), %esi
        mov     20(%ebp), %edi
        call    *guest_legacy32_target
        mov     %eax, guest_legacy32_result
        mov     %cr0, %eax
        and     $~CR0_PG, %eax
        mov     %eax, %cr0
        mov     guest_legacy32_saved_cr4, %eax
        mov     %eax, %cr4
        mov     guest_legacy32_saved_cr3, %eax
        mov     %eax, %cr3
        mov     $EFER, %ecx
        rdmsr
        or      $EFER_LME, %eax
        wrmsr
        mov     %cr0, %eax
        or      $CR0_PG, %eax
        mov     %eax, %cr0
        ljmp    $0x08, $2f
        .code64
2:      mov     guest_legacy32_rsp(%rip), %rsp
        mov     guest_legacy32_result(%rip), %eax
        popfq
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        ret

/* 32-bit callees for guest_legacy32_call. */
        .code32
        .global guest_legacy32_rdmsr, guest_legacy32_wrmsr, guest_legacy32_cr0, guest_legacy32_cr4
/* EAX = the low half of MSR ECX. */
guest_legacy32_rdmsr:
        rdmsr
        ret
/* MSR ECX = EDX:EAX; EAX = 0. */
guest_legacy32_wrmsr:
        wrmsr
        xor     %eax, %eax
        ret
/* EAX = CR0. */
guest_legacy32_cr0:
        mov     %cr0, %eax
        ret
/* EAX = CR4. */
guest_legacy32_cr4:
        mov     %cr4, %eax
        ret
        .code64

        .section .data
        .balign 8
guest_legacy32_rsp:
        .quad   0
guest_legacy32_saved_cr3:
        .quad   0
guest_legacy32_saved_cr4:
        .quad   0
guest_legacy32_target:
        .long   0
guest_legacy32_regs:
        .long   0
guest_legacy32_result:
        .long   0
guest_legacy32_paging:
        .long   0
