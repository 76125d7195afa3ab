//! The hypercall probe guest (see `keel_kernel::selftest`) in 32-bit x86 code, for the
//! state `Vcpu::new` creates (protected mode, paging off, EBX = boot argument): twice
//! `xen_version(XENVER_version, ecx)`, first with the boot argument, then with the first
//! answer, then HLT forever with interrupts enabled (none can arrive: its local APIC is
//! disabled and no upcall is set up; a HLT with interrupts masked would take the vCPU
//! offline). One copy per vendor's hypercall instruction.

use crate::vcpu::{self, Extension};

core::arch::global_asm!(
    r#"
    .macro KEEL_PROBE name, insn
        .section .rodata.keel_probe, "a"
        .global keel_probe_\name\()_start, keel_probe_\name\()_end
    keel_probe_\name\()_start:
        .code32
        mov     %ebx, %ecx
        mov     ${xen_version}, %eax
        xor     %ebx, %ebx
        \insn
        mov     %eax, %ecx
        mov     ${xen_version}, %eax
        xor     %ebx, %ebx
        \insn
    1:  sti
        hlt
        jmp     1b
        .code64
    keel_probe_\name\()_end:
    .endm
    KEEL_PROBE vmcall, vmcall
    KEEL_PROBE vmmcall, vmmcall
    "#,
    xen_version = const keel_abi::hypercall::XEN_VERSION,
    options(att_syntax)
);

extern "C" {
    static keel_probe_vmcall_start: u8;
    static keel_probe_vmcall_end: u8;
    static keel_probe_vmmcall_start: u8;
    static keel_probe_vmmcall_end: u8;
}

/// The probe for the running vendor: `vmcall` on VMX, `vmmcall` on SVM.
pub fn code() -> &'static [u8] {
    let (start, end) = match vcpu::extension() {
        Extension::Vmx(_) => (&raw const keel_probe_vmcall_start, &raw const keel_probe_vmcall_end),
        Extension::Svm(_) => (&raw const keel_probe_vmmcall_start, &raw const keel_probe_vmmcall_end),
    };
    // SAFETY: both symbols delimit one block of read-only bytes in the image.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}
