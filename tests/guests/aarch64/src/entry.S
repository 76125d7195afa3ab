// The arm64 test guest's entry: the Linux Image header, self-relocation, stacks, the
// EL1 exception vectors, and the few instructions Rust cannot express. Entered at EL1
// with the MMU off (Linux arm64 boot protocol): PC-relative addressing only until Rust
// turns the MMU on. Operands in braces come from Rust (global_asm! const).

    .section .text.head, "ax"
    .global _head
_head:
    b       primary_entry               // code0
    .long   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size, .bss and stacks included
    .quad   0xa                         // flags: little-endian, 4 KiB pages, anywhere
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                     // the device tree
    adr     x20, _head                  // load address (linked at 0)
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  adrp    x2, __rela_start
    add     x2, x2, :lo12:__rela_start
    adrp    x3, __rela_end
    add     x3, x3, :lo12:__rela_end
3:  cmp     x2, x3
    b.hs    4f
    ldp     x4, x5, [x2], #16           // r_offset, r_info
    ldr     x6, [x2], #8                // r_addend
    cmp     x5, #{R_AARCH64_RELATIVE}
    b.ne    3b                          // (the link has no other kind)
    add     x6, x6, x20
    str     x6, [x20, x4]
    b       3b
4:  mov     x0, #0
    bl      set_stack_and_vectors
    mov     x0, x19
    bl      guest_primary               // never returns
5:  wfi
    b       5b

// PSCI CPU_ON entry: x0 = context id = the CPU index.
    .global guest_secondary_entry
guest_secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0
    bl      set_stack_and_vectors
    mov     x0, x19
    bl      guest_secondary             // never returns
1:  wfi
    b       1b

// SP = top of CPU x0's stack; VBAR_EL1 = the vectors. Clobbers x1, x2.
set_stack_and_vectors:
    adrp    x1, guest_stacks
    add     x1, x1, :lo12:guest_stacks
    add     x2, x0, #1
    mov     x0, #{STACK_SIZE}
    madd    x1, x2, x0, x1
    mov     sp, x1
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    ret

// void guest_fp_fill(u64 seed): q_i = (seed + i, seed + i) for every FP/SIMD register.
// u64 guest_fp_check(u64 seed): 0 if they still hold that, else 1 + the first that
// differs.
    .arch_extension fp
    .arch_extension simd
    .global guest_fp_fill
guest_fp_fill:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    add     x1, x0, #\n
    dup     v\n\().2d, x1
    .endr
    ret

    .global guest_fp_check
guest_fp_check:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    add     x1, x0, #\n
    mov     x4, #(\n + 1)
    umov    x2, v\n\().d[0]
    umov    x3, v\n\().d[1]
    cmp     x2, x1
    b.ne    1f
    cmp     x3, x1
    b.ne    1f
    .endr
    mov     x0, #0
    ret
1:  mov     x0, x4
    ret

// u64 guest_probe_hvc1(void): hvc #1; Keel makes it an undefined-instruction exception,
// which the handler turns into a return here with x0 = its syndrome.
    .global guest_probe_hvc1
    .global guest_probe_hvc1_insn
guest_probe_hvc1:
    mov     x0, #0
guest_probe_hvc1_insn:
    hvc     #1
    ret

// u64 guest_refuse_<n>(void): instruction n of those Keel must refuse; each made an
// undefined-instruction exception, which the handler turns into a return with x0 = its
// syndrome (x0 = 0 if it completed instead).
.macro REFUSE n, insn:vararg
    .global guest_refuse_\n
    .global guest_refuse_\n\()_insn
guest_refuse_\n:
    mov     x0, #0
guest_refuse_\n\()_insn:
    \insn
    ret
.endm
    REFUSE 0, hvc #0x1234
    REFUSE 1, smc #1
    REFUSE 2, msr cntp_ctl_el0, xzr
    REFUSE 3, mrs x1, cntp_cval_el0
    REFUSE 4, dc isw, xzr
    REFUSE 5, mrs x1, actlr_el1

// ! guest_wreck(u64 vbar): points the vectors at `vbar` (mapped, but not memory) and
// takes an exception.
    .global guest_wreck
guest_wreck:
    msr     vbar_el1, x0
    isb
    udf     #0
1:  b       1b

// u64 guest_smc_version(void): PSCI_VERSION over smc #0.
    .global guest_smc_version
guest_smc_version:
    mov     x0, #0x84000000
    smc     #0
    ret

// void guest_probe_write(u64 addr, u64 value): stores value at [addr]; a fault there
// resumes at probe_resume, the syndrome stored by the exception handler.
    .global guest_probe_write
    .global guest_probe_write_insn
guest_probe_write:
guest_probe_write_insn:
    str     x1, [x0]
    mov     x0, #0
    ret

// u64 guest_probe_read(u64 addr, u64 *syndrome): loads [addr]; a fault there resumes at
// probe_resume with x0 = 0 and the syndrome stored by the exception handler.
    .global guest_probe_read
    .global guest_probe_insn
    .global guest_probe_resume
guest_probe_read:
guest_probe_insn:
    ldr     x0, [x0]
guest_probe_resume:
    ret

// u32 guest_probe_read32(u64 addr): a 32-bit load of [addr] (device registers), with the
// same fault handling as guest_probe_read.
    .global guest_probe_read32
    .global guest_probe_read32_insn
guest_probe_read32:
guest_probe_read32_insn:
    ldr     w0, [x0]
    ret

.macro VECTOR kind
    .balign 128
    sub     sp, sp, #{FRAME_SIZE}
    stp     x0, x1, [sp]
    mov     x1, #\kind
    b       exception_common
.endm

    .section .text.vectors, "ax"
    .balign 2048
    .global guest_vectors
guest_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

exception_common:
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
    str     x30, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #{FRAME_ELR}]
    mov     x0, sp
    bl      guest_exception
    ldp     x2, x3, [sp, #{FRAME_ELR}]
    msr     elr_el1, x2
    msr     spsr_el1, x3
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
    add     sp, sp, #{FRAME_SIZE}
    eret

    .section .bss.stacks, "aw", %nobits
    .balign 16
    .global guest_stacks
guest_stacks:
    .space  {STACK_SIZE} * {MAX_CPUS}
