// Keel's arm64 entry: the Linux Image header, self-relocation, the exception-level check,
// the boot and secondary CPU entries and the MMU switch-on.
//
// Position-independent: everything runs at the address the loader chose, with the MMU and
// the data cache off (Linux arm64 boot protocol), so it uses only PC-relative addressing
// and aligned accesses until the MMU is on. Operands in braces come from Rust (global_asm! const).

    .section .text.head, "ax"
    .global _head
_head:
    b       primary_entry               // code0
    .long   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size, .bss included
    .quad   {IMAGE_FLAGS}               // little-endian, 4 KiB pages, anywhere in RAM
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5

primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                     // the device tree, from the loader
    adr     x20, _head                  // load address (the image is linked at 0)

    // Zero .bss: plain stores, the MMU is off.
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b

    // Apply the R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    // Any other kind is counted in x21 and reported once a console exists.
2:  adrp    x2, __rela_start
    add     x2, x2, :lo12:__rela_start
    adrp    x3, __rela_end
    add     x3, x3, :lo12:__rela_end
    mov     x21, #0
3:  cmp     x2, x3
    b.hs    5f
    ldp     x4, x5, [x2], #16           // r_offset, r_info
    ldr     x6, [x2], #8                // r_addend
    cmp     x5, #{R_AARCH64_RELATIVE}
    b.ne    4f
    add     x6, x6, x20
    str     x6, [x20, x4]
    b       3b
4:  add     x21, x21, #1
    b       3b

5:  adrp    x0, keel_boot_stack_top
    add     x0, x0, :lo12:keel_boot_stack_top
    mov     sp, x0
    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    wrong_el

    // EL2: a known SCTLR_EL2 (MMU and caches off, little-endian), CPU index 0, vectors.
    movz    x0, #{SCTLR_BOOT_LO}
    movk    x0, #{SCTLR_BOOT_HI}, lsl #16
    msr     sctlr_el2, x0
    isb
    msr     tpidr_el2, xzr
    adrp    x0, keel_el2_vectors
    add     x0, x0, :lo12:keel_el2_vectors
    msr     vbar_el2, x0
    isb
    mov     x0, x19
    mov     x1, x21
    bl      keel_primary_el2            // never returns
    b       keel_park

    // Not EL2: catch exceptions at this level (so probing semihosting or PSCI cannot
    // wedge the CPU), then let Rust explain on the console why Keel cannot run.
wrong_el:
    cbz     x1, keel_park               // EL0: nothing can be done
    cmp     x1, #3
    b.eq    6f
    adrp    x0, wrong_el_vectors_el1
    add     x0, x0, :lo12:wrong_el_vectors_el1
    msr     vbar_el1, x0
    b       7f
6:  adrp    x0, wrong_el_vectors_el3
    add     x0, x0, :lo12:wrong_el_vectors_el3
    msr     vbar_el3, x0
7:  isb
    mov     x0, x19
    bl      keel_wrong_el               // never returns

    .global keel_park
keel_park:
    wfi
    b       keel_park

// A secondary CPU, started by PSCI CPU_ON at EL2 with x0 = its `SecondaryBoot` (identity
// mapped, cleaned to the point of coherency by the boot CPU). The MMU goes on before the
// stack is used, so nothing here depends on the state of other CPUs' caches.
    .global keel_secondary_entry
keel_secondary_entry:
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #2
    b.ne    keel_park
    mov     x19, x0
    movz    x0, #{SCTLR_BOOT_LO}
    movk    x0, #{SCTLR_BOOT_HI}, lsl #16
    msr     sctlr_el2, x0
    isb
    ldr     x1, [x19, #{BOOT_HCR}]
    msr     hcr_el2, x1                 // E2H first: it selects register layouts
    isb
    ldr     x1, [x19, #{BOOT_VBAR}]
    msr     vbar_el2, x1
    ldr     x1, [x19, #{BOOT_CPU}]
    msr     tpidr_el2, x1
    ldr     x1, [x19, #{BOOT_STACK}]
    mov     sp, x1
    add     x0, x19, #{BOOT_MMU}
    bl      keel_enable_mmu
    mov     x0, x19
    bl      keel_secondary_main         // never returns
    b       keel_park

// Switches the EL2 MMU on with the configuration at x0 (`MmuConfig`). The caller runs
// identity mapped, so execution continues at the next instruction. Clobbers x1-x4.
    .global keel_enable_mmu
keel_enable_mmu:
    ldr     x1, [x0, #{MMU_MAIR}]
    ldr     x2, [x0, #{MMU_TCR}]
    ldr     x3, [x0, #{MMU_TTBR}]
    ldr     x4, [x0, #{MMU_SCTLR}]
    msr     mair_el2, x1
    msr     tcr_el2, x2
    msr     ttbr0_el2, x3
    isb
    tlbi    alle2
    dsb     nsh
    isb
    ic      iallu
    dsb     nsh
    isb
    msr     sctlr_el2, x4
    isb
    ret

// Minimal vectors for EL1 and EL3, used only to report that Keel cannot run there: an
// undefined instruction (semihosting without -semihosting, a missing conduit) is skipped,
// an HVC or SMC taken to this level returns; either way x0 = -1 (PSCI NOT_SUPPORTED).
// Anything else parks the CPU.
.macro WRONG_EL_VECTORS el
    .balign 2048
wrong_el_vectors_el\el:
    .rept 16
    .balign 128
    b       wrong_el_trap_el\el
    .endr
wrong_el_trap_el\el:
    mrs     x9, esr_el\el
    ubfx    x9, x9, #26, #6
    cbz     x9, 1f
    cmp     x9, #{EC_HVC64}
    b.eq    2f
    cmp     x9, #{EC_SMC64}
    b.eq    2f
    b       keel_park
1:  mrs     x9, elr_el\el
    add     x9, x9, #4
    msr     elr_el\el, x9
2:  mov     x0, #-1
    eret
.endm

    WRONG_EL_VECTORS 1
    WRONG_EL_VECTORS 3

    .section .bss.keel_boot_stack, "aw", %nobits
    .balign 16
keel_boot_stack:
    .space  {BOOT_STACK_SIZE}
    .global keel_boot_stack_top
keel_boot_stack_top:
