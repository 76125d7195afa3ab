// EL2 exception vectors and the guest world switch.
//
// Keel runs on SP_EL2 with interrupts masked. An exception from EL2 itself saves a
// `TrapFrame` and calls `keel_el2_trap`, which either fixes it up and returns (the frame is
// restored, then ERET) or reports it and powers off. An exception from a guest (EL1/EL0)
// ends `keel_guest_enter`: the guest's registers go back into its `GuestRegs` and the
// vector slot (8-15) is returned to the caller of `keel_guest_enter`, except Xen's
// hypercall (`hvc #0xEA1`), a trapped system register and a data abort, which first go
// to the fast paths (`guest_hypercall`, `guest_trap`; `vcpu/fast.rs`).
// Operands in braces come from Rust (global_asm! const).

// The guest's general registers in its GuestRegs (x[n] at 8 * n): `op` is stp or ldp,
// `base` the register holding the GuestRegs pointer.
.macro PAIRS_X2_X17 op, base
    \op     x2, x3, [\base, #16]
    \op     x4, x5, [\base, #32]
    \op     x6, x7, [\base, #48]
    \op     x8, x9, [\base, #64]
    \op     x10, x11, [\base, #80]
    \op     x12, x13, [\base, #96]
    \op     x14, x15, [\base, #112]
    \op     x16, x17, [\base, #128]
.endm

.macro PAIRS_X20_X29 op, base
    \op     x20, x21, [\base, #160]
    \op     x22, x23, [\base, #176]
    \op     x24, x25, [\base, #192]
    \op     x26, x27, [\base, #208]
    \op     x28, x29, [\base, #224]
.endm

.macro VECTOR_TRAP slot
    .balign 128
    sub     sp, sp, #{TRAP_FRAME_SIZE}
    stp     x0, x1, [sp]
    mov     x1, #\slot
    b       el2_trap_common
.endm

.macro VECTOR_GUEST slot
    .balign 128
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\slot
    b       guest_exit_common
.endm

    .section .text.vectors, "ax"
    .balign 2048
    .global keel_el2_vectors
keel_el2_vectors:
    VECTOR_TRAP 0                       // current EL, SP_EL0: sync
    VECTOR_TRAP 1                       //   IRQ
    VECTOR_TRAP 2                       //   FIQ
    VECTOR_TRAP 3                       //   SError
    VECTOR_TRAP 4                       // current EL, SP_EL2: sync
    VECTOR_TRAP 5                       //   IRQ
    VECTOR_TRAP 6                       //   FIQ
    VECTOR_TRAP 7                       //   SError
    // Lower EL, AArch64: sync. Xen's hypercall (ESR_EL2 exactly EC HVC64, IL, imm16
    // 0xEA1) goes to the fast path.
    .balign 128
    stp     x0, x1, [sp, #-16]!
    mrs     x0, esr_el2
    movz    x1, #{ESR_HYPERCALL_LO}
    movk    x1, #{ESR_HYPERCALL_HI}, lsl #16
    cmp     x0, x1
    b.eq    guest_hypercall
    lsr     x0, x0, #26                 // EC
    cmp     x0, #{EC_SYSREG}
    b.eq    guest_trap
    cmp     x0, #{EC_DABT_LOW}
    b.eq    guest_trap
    mov     x1, #8
    b       guest_exit_common
    VECTOR_GUEST 9                      //   IRQ
    VECTOR_GUEST 10                     //   FIQ
    VECTOR_GUEST 11                     //   SError
    VECTOR_GUEST 12                     // lower EL, AArch32: sync
    VECTOR_GUEST 13                     //   IRQ
    VECTOR_GUEST 14                     //   FIQ
    VECTOR_GUEST 15                     //   SError

// x0/x1 of the interrupted code are at [sp], x1 = vector slot.
el2_trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    add     x2, sp, #{TRAP_FRAME_SIZE}
    stp     x30, x2, [sp, #240]         // x30, the interrupted SP
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #{TF_ELR}]
    mov     x0, sp
    bl      keel_el2_trap               // returns only if the exception was fixed up
    ldp     x2, x3, [sp, #{TF_ELR}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x0, x1, [sp]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #{TRAP_FRAME_SIZE}
    eret
    dsb     nsh
    isb

// u64 keel_guest_enter(GuestRegs *regs, FastCtx *fast): runs the guest until an
// exception reaches EL2 that the fast path does not answer; returns the vector slot. The
// caller has loaded the guest's EL1 state and HCR_EL2.
    .global keel_guest_enter
keel_guest_enter:
    sub     sp, sp, #{HOST_FRAME_SIZE}
    stp     x0, x1, [sp]                // found again by the exit paths
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     x29, x30, [sp, #96]
    ldp     x1, x2, [x0, #{GR_PC}]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    PAIRS_X2_X17 ldp, x0
    ldp     x18, x19, [x0, #144]
    PAIRS_X20_X29 ldp, x0
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0]
    eret
    dsb     nsh
    isb

// Xen's hypercall. The guest's x0/x1 are at [sp], its GuestRegs pointer at [sp + 16],
// the FastCtx pointer at [sp + 24]. Saves only what a call may change (x0-x18 and x30,
// AAPCS64's caller-saved registers: x19-x29 stay the guest's through the call), and asks
// keel_fast_hypercall(regs, fast): 0, the call is answered and the guest goes on (ELR_EL2
// and SPSR_EL2 are still its own); else the exit goes on as guest_exit_common's.
guest_hypercall:
    ldr     x0, [sp, #16]
    PAIRS_X2_X17 stp, x0
    str     x18, [x0, #144]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp]
    stp     x2, x3, [x0]
    ldr     x1, [sp, #24]
    bl      keel_fast_hypercall
    cbnz    x0, 1f
    ldr     x0, [sp, #16]
    PAIRS_X2_X17 ldp, x0
    ldr     x18, [x0, #144]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0]
    add     sp, sp, #16
    eret
    dsb     nsh
    isb
1:  ldr     x0, [sp, #16]
    str     x19, [x0, #152]
    PAIRS_X20_X29 stp, x0
    add     sp, sp, #16
    mov     x1, #8
    b       guest_exit_tail

// A trapped system register or a data abort, with the frame as for guest_hypercall.
// Saves every general register (the access may name any of them) and asks
// keel_fast_trap(regs, fast): 0, emulated (ELR_EL2 past the instruction), the guest goes
// on with its registers reloaded from GuestRegs; else the exit goes on as
// guest_exit_common's.
guest_trap:
    ldr     x0, [sp, #16]
    PAIRS_X2_X17 stp, x0
    stp     x18, x19, [x0, #144]
    PAIRS_X20_X29 stp, x0
    str     x30, [x0, #240]
    ldp     x2, x3, [sp]
    stp     x2, x3, [x0]
    ldr     x1, [sp, #24]
    bl      keel_fast_trap
    ldr     x1, [sp, #16]
    add     sp, sp, #16
    cbnz    x0, 1f
    PAIRS_X2_X17 ldp, x1
    ldp     x18, x19, [x1, #144]
    PAIRS_X20_X29 ldp, x1
    ldr     x30, [x1, #240]
    ldp     x0, x1, [x1]
    eret
    dsb     nsh
    isb
1:  mov     x0, x1
    mov     x1, #8
    b       guest_exit_tail

// The guest's x0/x1 are at [sp], its GuestRegs pointer at [sp + 16], x1 = vector slot.
guest_exit_common:
    ldr     x0, [sp, #16]
    PAIRS_X2_X17 stp, x0
    stp     x18, x19, [x0, #144]
    PAIRS_X20_X29 stp, x0
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
// x0 = GuestRegs with x0-x30 saved, sp = the host frame, x1 = vector slot.
guest_exit_tail:
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #{GR_PC}]
    mov     x0, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp, #96]
    add     sp, sp, #{HOST_FRAME_SIZE}
    ret
