/* VM entry and exit for VMX (AT&T syntax).
 *
 * u64 keel_vmx_enter(GuestRegisters *regs, u64 resume, u64 *host_rsp)
 *   Loads the guest's general-purpose registers from *regs (RSP, RIP and RFLAGS live in
 *   the VMCS) and executes VMLAUNCH (resume == 0) or VMRESUME. HOST_RSP points at the
 *   saved *regs pointer; it is written only when it differs from *host_rsp, the value
 *   the VMCS holds (updated here). HOST_RIP (keel_vmx_exit, written by Keel with the
 *   rest of the host state) stores the guest's registers back and returns 0. If the
 *   instruction fails, it returns 1 (VMfailInvalid) or 2 (VMfailValid: see the
 *   VM-instruction error field).
 * GuestRegisters (vcpu/guest.rs): every offset into it (GPR_RAX, GPR_RDI, gprs.s's
 * macros) comes from the Rust struct; the rsp slot is unused. */

        .section .text.keel_vmx, "ax"
        .code64
        .global keel_vmx_enter
        .global keel_vmx_exit
keel_vmx_enter:
        push    %rbp
        push    %rbx
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        push    %rdi                        /* regs, found again at the exit */
        cmp     %rsp, (%rdx)
        je      5f
        mov     %rsp, (%rdx)
        mov     ${vmcs_host_rsp}, %eax         /* the HOST_RSP field (vmcs.rs) */
        vmwrite %rsp, %rax
5:      test    %rsi, %rsi                  /* MOVs below keep the flags */
        mov     GPR_RAX(%rdi), %rax
        KEEL_GPRS_LOAD %rdi
        mov     GPR_RDI(%rdi), %rdi
        jnz     1f
        vmlaunch
        jmp     2f
1:      vmresume
2:      /* Only reached if the entry failed: CF=1 VMfailInvalid, ZF=1 VMfailValid. */
        mov     $1, %eax
        jc      3f
        mov     $2, %eax
3:      pop     %rdi
        jmp     4f

keel_vmx_exit:
        push    %rdi                        /* guest rdi; regs pointer is above it */
        mov     8(%rsp), %rdi
        mov     %rax, GPR_RAX(%rdi)
        KEEL_GPRS_SAVE %rdi
        pop     %rax
        mov     %rax, GPR_RDI(%rdi)
        pop     %rdi
        xor     %eax, %eax
4:      pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        ret

        .purgem KEEL_GPRS_LOAD
        .purgem KEEL_GPRS_SAVE
