/* VM entry and exit for AMD SVM (AT&T syntax).
 *
 * void keel_svm_enter(GuestRegisters *regs, u64 vmcb, u64 host_save)
 *   With GIF clear throughout (no interrupt or NMI can see a half-switched CPU), loads
 *   the guest's FS/GS/TR/LDTR and syscall MSRs from the VMCB (VMLOAD), loads the guest's
 *   general-purpose registers (RAX and RSP live in the VMCB) and runs the guest (VMRUN).
 *   After #VMEXIT it stores them back, VMSAVEs the guest's state and VMLOADs Keel's
 *   from host_save (GS base = the per-CPU block, TR = the TSS with Keel's IST stacks),
 *   which the CPU saved there once when it enabled SVM (Keel never changes that state). RFLAGS.IF is
 *   set across VMRUN so physical interrupts cause #VMEXIT(INTR) with V_INTR_MASKING;
 *   after the exit IF is cleared before GIF is set, so they stay pending for Keel.
 * GuestRegisters (vcpu/guest.rs): the offsets come from the Rust struct through gprs.s;
 * the rax and rsp slots are unused. */

        .section .text.keel_svm, "ax"
        .code64
        .global keel_svm_enter
keel_svm_enter:
        push    %rbp
        push    %rbx
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        clgi
        push    %rdi                        /* regs */
        push    %rdx                        /* host save area */
        mov     %rsi, %rax                  /* the VMCB, for VMLOAD, VMRUN and VMSAVE */
        vmload  %rax
        KEEL_GPRS_LOAD %rdi
        mov     GPR_RDI(%rdi), %rdi
        sti
        vmrun   %rax
        /* #VMEXIT: GIF=0; RAX, RSP and RFLAGS are Keel's again.
         * The two NOPs keep VMSAVE from being the first instruction after VMRUN; they
         * are harmless and stay, but they do not cure the QEMU 10 TCG defect seen under
         * OVMF (docs/x86-guests.md, "Known gaps"): now and then the first fetch after
         * #VMEXIT is walked with the guest's EFER through its nested page tables. */
        nop
        nop
        vmsave  %rax
        push    %rdi                        /* guest rdi; then host save, then regs */
        mov     16(%rsp), %rdi
        KEEL_GPRS_SAVE %rdi
        pop     %rcx
        mov     %rcx, GPR_RDI(%rdi)
        pop     %rax                        /* host save area */
        vmload  %rax
        pop     %rdi
        cli
        stgi
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        ret

        .purgem KEEL_GPRS_LOAD
        .purgem KEEL_GPRS_SAVE
