/* Calls into 32-bit legacy protected mode (EFER.LMA clear) from long mode, for
 * `keel.test=legacy32` (legacy32.rs). AT&T syntax.
 *
 * u32 guest_legacy32_call(u32 target, const u32 regs[6], u32 cr3, u32 pae): through the
 * flat 32-bit code segment (0x18) into compatibility mode, paging off (the processor
 * clears EFER.LMA), EFER.LME cleared; with a non-zero `cr3`, paging on that root: 32-bit
 * paging (4 MiB pages: CR4.PSE) if `pae` is 0, else PAE paging (CR4.PAE, `cr3` the
 * 32-byte-aligned table of four PDPTEs); then `call target` with EAX, EBX, ECX, EDX, ESI,
 * EDI from `regs`; then paging off, CR3 and CR4 as they were, and long mode again with
 * the 64-bit IDT it had, returning the callee's EAX. Interrupts are masked (a callee may
 * open them under a 32-bit IDT of its own: `guest_legacy32_upcall`). The code, the
 * stack, `regs` and `target` must be below 4 GiB, where the guest's map is the identity.
 * The upper halves of registers do not survive a change of mode: every callee-saved
 * register is on the stack, and RSP is reloaded from memory. */

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
        mov     %ecx, guest_legacy32_pae(%rip)
        sidt    guest_legacy32_saved_idt(%rip)
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
        cmpl    $0, guest_legacy32_pae
        je      4f
        or      $CR4_PAE, %eax
4:      mov     %eax, %cr4
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
        lidt    guest_legacy32_saved_idt(%rip)
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

/* An event taken as an interrupt by 32-bit code. EBX points at a block of u32 words:
 *   0: a 6-byte IDT pseudo-descriptor at offset 2 (limit at 2, base at 4) for a 32-bit
 *      IDT whose upcall vector gate leads to guest_legacy32_upcall_handler;
 *   2: a hypercall stub; 11, 12, 13: its EBX, ECX, EDX (the call that raises the event:
 *      a send, or a timer that will);
 *   4: the vcpu_info the handler acknowledges; 5: how many spins to wait at most, or 0
 *      to wait in HLT (the vCPU blocks until the interrupt);
 *   6..10: filled by the handler (below).
 * Loads that IDT, makes the call with interrupts masked, opens them and waits until the
 * handler ran (or the spins run out), masks them again; EAX = the call's result. The
 * trampoline puts the 64-bit IDT back. */
        .global guest_legacy32_upcall, guest_legacy32_upcall_wait, guest_legacy32_upcall_end
        .global guest_legacy32_upcall_handler
guest_legacy32_upcall:
        push    %esi
        push    %edi
        mov     %ebx, %esi
        mov     %esi, guest_legacy32_block
        lidt    2(%esi)
        push    %esi
        mov     44(%esi), %ebx
        mov     48(%esi), %ecx
        mov     52(%esi), %edx
        call    *8(%esi)
        pop     %esi
        mov     %eax, %edi
        mov     20(%esi), %ecx
        test    %ecx, %ecx
        jz      2f
        sti
guest_legacy32_upcall_wait:
        cmpl    $0, 24(%esi)
        jne     1f
        pause
        loop    guest_legacy32_upcall_wait
        jmp     1f
2:      sti
        hlt
1:      cli
        mov     %edi, %eax
        pop     %edi
        pop     %esi
        ret
guest_legacy32_upcall_end:

/* The 32-bit interrupt gate's handler, as a 32-bit Xen guest's upcall: records in the
 * block the interrupted EIP (word 10) and CS (word 9), the vcpu_info's
 * evtchn_upcall_pending byte (word 8), which it clears, and the 32-bit selector at 4 of
 * the vcpu_info (word 7), which it takes (exchanges with 0); counts itself (word 6). */
guest_legacy32_upcall_handler:
        push    %eax
        push    %ecx
        push    %edx
        mov     guest_legacy32_block, %ecx
        mov     12(%esp), %eax
        mov     %eax, 40(%ecx)
        mov     16(%esp), %eax
        mov     %eax, 36(%ecx)
        mov     16(%ecx), %edx
        movzbl  (%edx), %eax
        mov     %eax, 32(%ecx)
        movb    $0, (%edx)
        xor     %eax, %eax
        xchg    %eax, 4(%edx)
        mov     %eax, 28(%ecx)
        incl    24(%ecx)
        pop     %edx
        pop     %ecx
        pop     %eax
        iret
        .code64

        .section .data
        .balign 8
guest_legacy32_rsp:
        .quad   0
guest_legacy32_saved_cr3:
        .quad   0
guest_legacy32_saved_cr4:
        .quad   0
guest_legacy32_saved_idt:
        .quad   0, 0
guest_legacy32_target:
        .long   0
guest_legacy32_regs:
        .long   0
guest_legacy32_result:
        .long   0
guest_legacy32_paging:
        .long   0
guest_legacy32_pae:
        .long   0
guest_legacy32_block:
        .long   0
