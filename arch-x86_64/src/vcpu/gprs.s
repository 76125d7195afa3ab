/* The guest's general-purpose registers between GuestRegisters and the CPU, shared by
 * vmx/enter.s and svm/enter.s (AT&T syntax). The offsets are operands computed from the
 * Rust struct (vcpu/guest.rs, `world_switch_asm!`), so the layout has one definition.
 *
 * KEEL_GPRS_LOAD base / KEEL_GPRS_SAVE base move every register except RAX, RSP (both
 * vendors keep RSP in the VMCS/VMCB; SVM keeps RAX in the VMCB too) and the register
 * holding `base`, which the callers move themselves. Each enter.s purges the macros at
 * its end, so that both files can include this one. */

        .set GPR_RAX, {gpr_rax}
        .set GPR_RDI, {gpr_rdi}

        .macro KEEL_GPRS_LOAD base
        mov     {gpr_rcx}(\base), %rcx
        mov     {gpr_rdx}(\base), %rdx
        mov     {gpr_rbx}(\base), %rbx
        mov     {gpr_rbp}(\base), %rbp
        mov     {gpr_rsi}(\base), %rsi
        mov     {gpr_r8}(\base), %r8
        mov     {gpr_r9}(\base), %r9
        mov     {gpr_r10}(\base), %r10
        mov     {gpr_r11}(\base), %r11
        mov     {gpr_r12}(\base), %r12
        mov     {gpr_r13}(\base), %r13
        mov     {gpr_r14}(\base), %r14
        mov     {gpr_r15}(\base), %r15
        .endm

        .macro KEEL_GPRS_SAVE base
        mov     %rcx, {gpr_rcx}(\base)
        mov     %rdx, {gpr_rdx}(\base)
        mov     %rbx, {gpr_rbx}(\base)
        mov     %rbp, {gpr_rbp}(\base)
        mov     %rsi, {gpr_rsi}(\base)
        mov     %r8, {gpr_r8}(\base)
        mov     %r9, {gpr_r9}(\base)
        mov     %r10, {gpr_r10}(\base)
        mov     %r11, {gpr_r11}(\base)
        mov     %r12, {gpr_r12}(\base)
        mov     %r13, {gpr_r13}(\base)
        mov     %r14, {gpr_r14}(\base)
        mov     %r15, {gpr_r15}(\base)
        .endm
