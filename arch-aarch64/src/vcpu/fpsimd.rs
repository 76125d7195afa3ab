//! The guest's floating-point and SIMD registers: q0-q31, FPSR, FPCR. Keel itself never
//! uses them (its target is soft-float), so they are switched only when the vCPU on a
//! CPU changes: loaded in `Vcpu::load`, saved in `Vcpu::put`.

use core::mem::{offset_of, size_of};

/// A vCPU's FP/SIMD state.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct FpState {
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

const _: () = assert!(offset_of!(FpState, fpsr) == 512 && size_of::<FpState>() == 528);

core::arch::global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .section .text.keel_fpsimd, "ax"
    .global keel_fpsimd_save
keel_fpsimd_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x3, x0, #512
    stp     x1, x2, [x3]
    ret

    .global keel_fpsimd_load
keel_fpsimd_load:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x3, x0, #512
    ldp     x1, x2, [x3]
    msr     fpsr, x1
    msr     fpcr, x2
    isb
    ret
"#
);

extern "C" {
    fn keel_fpsimd_save(state: *mut FpState);
    fn keel_fpsimd_load(state: *const FpState);
}

impl FpState {
    /// Saves this CPU's FP/SIMD registers into `self`.
    pub fn save(&mut self) {
        // SAFETY: writes exactly the 528 bytes of `self`; FP/SIMD is not trapped at EL2
        // (CPTR_EL2) and holds only guest state.
        unsafe { keel_fpsimd_save(self) }
    }

    /// Loads `self` into this CPU's FP/SIMD registers.
    pub fn load(&self) {
        // SAFETY: reads exactly `self`; Keel's own code never uses these registers.
        unsafe { keel_fpsimd_load(self) }
    }
}
