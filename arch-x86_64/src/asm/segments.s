/* The segment reload both 64-bit entries make (AT&T syntax), shared by head.s (the boot
 * CPU) and trampoline.s (application processors): DS, ES and SS get the flat data
 * descriptor at 0x10, which the boot GDT and the trampoline's GDT both hold; FS and GS
 * get the null selector (their bases are MSRs; GS's becomes the per-CPU block later).
 * Clobbers EAX. Each includer purges the macro at its end, so that both can include it. */

        .macro KEEL_LOAD_FLAT_SEGMENTS
        mov     $0x10, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        xor     %eax, %eax
        mov     %eax, %fs
        mov     %eax, %gs
        .endm
