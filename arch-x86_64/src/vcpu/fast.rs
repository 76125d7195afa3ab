//! The exit fast path both vendors share (`docs/fast-path.md`, `docs/x86-guests.md`,
//! "The exit fast path"): a hypercall the core answers through its [`FastPath`] without
//! leaving the vendor's run loop, and the test that lets an exit the backend settled by
//! itself (CPUID, MSRs, port I/O, emulated MMIO, an interrupt window) go straight back
//! into the guest.

use super::guest::GuestRegisters;
use super::guest_cpu::{gva_to_gpa_cached, GuestCpu, VcpuWalks};
use super::walk::Access;
use super::Common;
use keel_kernel::arch::{FastAnswer, FastPath, VmExit};
use keel_kernel::guest_memory::GuestTranslate;
use keel_kernel::mm::GuestPhysAddr;

/// The guest's virtual addresses as the running vCPU translates them: its paging
/// registers are read only when a call translates an address, through the vCPU's
/// remembered walks.
struct LiveTranslation<'a>(&'a dyn GuestCpu, &'a VcpuWalks);

impl GuestTranslate for LiveTranslation<'_> {
    fn gva_to_gpa(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        let access = if write { Access::Write } else { Access::Read };
        gva_to_gpa_cached(self.1, self.0.stage2_root(), &self.0.paging(), gva, access).map(GuestPhysAddr)
    }
}

/// Asks the core to answer the hypercall the guest just made (the vendor's exit moved
/// RIP past it; `long_mode`: Xen's 64-bit convention): `None` when the guest goes on at
/// once (the result is in RAX); else the exit for the core, [`VmExit::Hypercall`] with
/// nothing done or [`VmExit::Answered`] with the result in RAX.
pub fn hypercall<V: GuestCpu>(
    vcpu: &mut V,
    common: &mut Common,
    long_mode: bool,
    fast: &dyn FastPath,
) -> Option<VmExit> {
    let regs: &GuestRegisters = vcpu.regs();
    let args = regs.hypercall_args(long_mode);
    // As `X86Vcpu::run` takes it for the loop's calls.
    let number = regs.hypercall_number_low();
    let answer = fast.hypercall(&args, &LiveTranslation(vcpu, &common.walks));
    let value = match answer {
        FastAnswer::Declined => return Some(VmExit::Hypercall),
        FastAnswer::Resume(value) | FastAnswer::Exit(value) => value,
    };
    common.pvclock.after_hypercall(number);
    vcpu.regs().set_hypercall_result(value);
    match answer {
        FastAnswer::Exit(_) => Some(VmExit::Answered),
        _ => None,
    }
}

/// Whether the deadline this CPU's timer is armed for has passed: then an exit the
/// backend settled by itself goes to the core ([`VmExit::Interrupt`], whose handling
/// finds the timer due) instead of back into the guest. A processor that ends the
/// guest's run at the timer's interrupt makes this rarely true; one that does not take
/// it while a guest runs with interrupts masked (Bochs's SVM model) needs it. SVM only:
/// on VT-x the preemption timer ends the run at the deadline.
#[inline(always)]
pub fn deadline_passed() -> bool {
    let at = crate::timer::armed_deadline();
    at != 0 && crate::regs::rdtsc() >= at
}
