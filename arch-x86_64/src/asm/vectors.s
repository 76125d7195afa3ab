/* The 256 interrupt and exception entry stubs (AT&T syntax).
 *
 * Stub n sits at keel_vectors + 16 * n. It pushes a zero error code where the CPU pushes
 * none, then the vector number, and joins the common path, which saves every
 * general-purpose register into a TrapFrame (see exceptions.rs) and calls
 * keel_trap(frame). If that returns (an interrupt), the registers are restored and
 * IRETQ resumes the interrupted code. */

        .section .text.keel_vectors, "ax"
        .code64
        .balign 16
        .global keel_vectors
keel_vectors:
        .set vector, 0
        .rept 256
        .balign 16
        .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
        .else
        pushq   $0
        .endif
        pushq   $vector
        jmp     keel_trap_common
        .set vector, vector + 1
        .endr
        .balign 16
        .global keel_vectors_end
keel_vectors_end:

keel_trap_common:
        push    %r15
        push    %r14
        push    %r13
        push    %r12
        push    %r11
        push    %r10
        push    %r9
        push    %r8
        push    %rbp
        push    %rdi
        push    %rsi
        push    %rdx
        push    %rcx
        push    %rbx
        push    %rax
        mov     %rsp, %rdi
        cld
        call    keel_trap
        pop     %rax
        pop     %rbx
        pop     %rcx
        pop     %rdx
        pop     %rsi
        pop     %rdi
        pop     %rbp
        pop     %r8
        pop     %r9
        pop     %r10
        pop     %r11
        pop     %r12
        pop     %r13
        pop     %r14
        pop     %r15
        add     $16, %rsp                   /* vector and error code */
        iretq
