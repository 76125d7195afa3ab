//! The hypercall fast path: `hvc #0xEA1` answered from the exception vector
//! (`guest_hypercall` in `asm/vectors.S`) without leaving `keel_guest_enter`. The vector
//! saves the caller-saved general registers only, this module asks the core
//! ([`FastPath`]), and the guest goes on with its EL1 state, the virtual CPU interface
//! and `HCR_EL2` as they were: nothing of the full exit (`run.rs`) is done. Declined
//! calls, and answered ones after which the core has work, leave as full exits.

use super::{translate, GuestRegs};
use crate::vgic::CpuInterface;
use core::ffi::c_void;
use keel_kernel::arch::{FastAnswer, FastPath, HypercallArgs};
use keel_kernel::guest_memory::GuestTranslate;
use keel_kernel::mm::GuestPhysAddr;

/// What became of the last hypercall the vector saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fast {
    /// None was made: the exit is something else.
    Nothing,
    /// A hypercall that takes the full exit (`VmExit::Hypercall`).
    Declined,
    /// Answered, and the core has work before the next entry (`VmExit::Answered`).
    Answered,
    /// Answered: the guest went on.
    Resumed,
}

/// What `keel_guest_enter` hands the vector for one entry (the second argument).
pub(super) struct FastCtx<'a> {
    /// The core's answers; `None`: every hypercall takes the full exit.
    pub fast: Option<&'a dyn FastPath>,
    /// The vCPU's virtual CPU interface, loaded.
    pub gic: &'a CpuInterface,
    pub vttbr: u64,
    pub hcr: u64,
    pub last: Fast,
}

/// The hypercall in `regs`: Xen's arm64 convention, the number in x16, arguments in x0-x4.
pub(super) fn args(regs: &GuestRegs) -> HypercallArgs {
    let x = &regs.x;
    HypercallArgs { number: x[16], args: [x[0], x[1], x[2], x[3], x[4]], compat: false }
}

/// The guest's virtual addresses as the loaded vCPU translates them.
struct LiveTranslation {
    vttbr: u64,
    hcr: u64,
}

impl GuestTranslate for LiveTranslation {
    fn gva_to_gpa(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        translate::gva(self.vttbr, self.hcr, gva, write)
    }
}

/// Called by `guest_hypercall` with the pointers `keel_guest_enter` got; returns 0 if
/// the guest goes on.
#[no_mangle]
extern "C" fn keel_fast_hypercall(regs: *mut GuestRegs, ctx: *mut c_void) -> u64 {
    // SAFETY: both come from `run_guest`'s call of `keel_guest_enter` (a live
    // `&mut GuestRegs` and `&mut FastCtx`), which has not returned yet and touches
    // neither meanwhile; the vector saved the registers read here (x0-x4, x16).
    let (regs, ctx) = unsafe { (&mut *regs, &mut *ctx.cast::<FastCtx<'_>>()) };
    ctx.last = answer(regs, ctx);
    u64::from(ctx.last != Fast::Resumed)
}

fn answer(regs: &mut GuestRegs, ctx: &FastCtx<'_>) -> Fast {
    let Some(fast) = ctx.fast else { return Fast::Declined };
    // The guest completed an interrupt the model must learn of: the full exit saves the
    // interface.
    if !ctx.gic.may_stay_loaded() {
        return Fast::Declined;
    }
    let translate = LiveTranslation { vttbr: ctx.vttbr, hcr: ctx.hcr };
    match fast.hypercall(&args(regs), &translate) {
        FastAnswer::Declined => Fast::Declined,
        FastAnswer::Resume(value) => {
            regs.x[0] = value;
            Fast::Resumed
        }
        FastAnswer::Exit(value) => {
            regs.x[0] = value;
            Fast::Answered
        }
    }
}
