//! The SVM world switch (VMSAVE/VMLOAD/VMRUN in `enter.s`), wrapped once. The SVM MSRs
//! (VM_CR, VM_HSAVE_PA, EFER) go through [`crate::regs`].

use super::super::GuestRegisters;

super::super::guest::world_switch_asm!(include_str!("../gprs.s"), include_str!("enter.s"));

extern "sysv64" {
    fn keel_svm_enter(regs: *mut GuestRegisters, vmcb: u64, host_save: u64);
}

/// Saves the calling CPU's FS, GS, TR, LDTR and SYSCALL/SYSENTER state to `area`
/// (VMSAVE), which every #VMEXIT on this CPU loads again.
///
/// # Safety
/// EFER.SVME must be set on this CPU and `area` a page it owns.
pub unsafe fn vmsave(area: u64) {
    // SAFETY: the caller guarantees SVM is on and the page is this CPU's; VMSAVE only
    // writes that page.
    unsafe { core::arch::asm!("vmsave rax", in("rax") area, options(nostack)) };
}

/// Runs the guest of the VMCB at `vmcb` until the next #VMEXIT.
///
/// # Safety
/// EFER.SVME and VM_HSAVE_PA must be set on this CPU, `vmcb` must be a complete VMCB
/// whose guest is confined by nested paging and intercepts, and `host_save` the page
/// this CPU's own state was saved to by [`vmsave`].
pub unsafe fn run(regs: &mut GuestRegisters, vmcb: u64, host_save: u64) {
    // SAFETY: the caller guarantees the preconditions; the routine preserves callee-saved
    // registers and returns on the same stack with Keel's segment state restored.
    unsafe { keel_svm_enter(regs, vmcb, host_save) }
}
