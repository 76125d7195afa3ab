// The hypercall probe guest (see kernel/src/selftest.rs), run at EL1 with its MMU off and
// x0 = the boot argument. Keel copies these bytes into the probe's guest page; they are
// data to Keel and never executed at EL2. Operands in braces come from keel-abi.

    .section .rodata.keel_probe_guest, "a"
    .balign 4
    .global keel_probe_guest_start
keel_probe_guest_start:
    mov     x1, x0                      // xen_version(XENVER_version, boot argument)
    mov     x0, #{XENVER_VERSION}
    mov     x16, #{XEN_VERSION}
    hvc     #{HVC_IMM}
    mov     x1, x0                      // xen_version(XENVER_version, first answer)
    mov     x0, #{XENVER_VERSION}
    mov     x16, #{XEN_VERSION}
    hvc     #{HVC_IMM}
1:  wfi                                 // halt forever
    b       1b
    .global keel_probe_guest_end
keel_probe_guest_end:
