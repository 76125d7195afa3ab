//! The fast paths: exits answered from the exception vector without leaving
//! `keel_guest_enter`, the guest going on with its EL1 state, the virtual CPU interface
//! and `HCR_EL2` as they were: nothing of the full exit (`run.rs`) is done.
//!
//! - `hvc #0xEA1` (`guest_hypercall` in `asm/vectors.S`): the vector saves the
//!   caller-saved general registers only and this module asks the core ([`FastPath`]).
//!   Declined calls, and answered ones after which the core has work, leave as full exits.
//! - A trapped system register that is not a GIC one, and an access to the virtual PL011
//!   (`guest_trap`): what `run.rs` does for them without the interrupt model, here. An
//!   access that makes the PL011 raise its line or print leaves as a full exit after it.
//!
//! Either takes the full exit untouched when the guest completed an interrupt the model
//! must learn of (`may_stay_loaded`).

use super::exit::{self, Outcome, Syndrome, ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1};
use super::mmio::{self, Done};
use super::{translate, GuestRegs};
use crate::domain::Aarch64Domain;
use crate::syndrome::{EC_SYSREG, SLOT_SYNC_A64};
use crate::vgic::CpuInterface;
use keel_abi::hypercall_registers::AARCH64;
use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, FAR_EL2, HPFAR_EL2};
use tock_registers::interfaces::{Readable, Writeable};
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
    /// A vPL011 access was emulated (the PC moved past it) and has effects (in
    /// `FastCtx::done`) for `run.rs` to finish.
    Emulated,
}

/// What `keel_guest_enter` hands the vector for one entry (the second argument).
pub(super) struct FastCtx<'a> {
    /// The core's answers; `None`: every hypercall takes the full exit.
    pub fast: Option<&'a dyn FastPath>,
    /// The vCPU's virtual CPU interface, loaded.
    pub gic: &'a CpuInterface,
    pub domain: &'a Aarch64Domain,
    pub vcpu_id: u32,
    pub vttbr: u64,
    pub hcr: u64,
    pub last: Fast,
    /// What the access `Fast::Emulated` stands for did.
    pub done: Done,
}

/// The hypercall in `regs`: Xen's arm64 convention (`hypercall_registers::AARCH64`).
pub(super) fn args(regs: &GuestRegs) -> HypercallArgs {
    let (number, args) = AARCH64.gather(&regs.x, |v| v);
    HypercallArgs { number, args, compat: false }
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
            regs.x[AARCH64.result] = value;
            Fast::Resumed
        }
        FastAnswer::Exit(value) => {
            regs.x[AARCH64.result] = value;
            Fast::Answered
        }
    }
}

/// Called by `guest_trap` (a trapped system register or a data abort from AArch64) with
/// the pointers `keel_guest_enter` got, every general register saved; returns 0 if the
/// guest goes on.
#[no_mangle]
extern "C" fn keel_fast_trap(regs: *mut GuestRegs, ctx: *mut c_void) -> u64 {
    // SAFETY: as for `keel_fast_hypercall`.
    let (regs, ctx) = unsafe { (&mut *regs, &mut *ctx.cast::<FastCtx<'_>>()) };
    ctx.last = trap(regs, ctx);
    u64::from(ctx.last != Fast::Resumed)
}

fn trap(regs: &mut GuestRegs, ctx: &mut FastCtx<'_>) -> Fast {
    if !ctx.gic.may_stay_loaded() {
        return Fast::Nothing;
    }
    let esr = ESR_EL2.get();
    // The vector sends a trapped system register or a data abort from AArch64 here: the
    // general decoding (`exit::decode`) is not needed.
    let outcome = if ESR_EL2::EC.read(esr) == EC_SYSREG {
        Outcome::Sysreg(exit::sysreg(ESR_EL2::ISS.read(esr)))
    } else {
        let syndrome = Syndrome { slot: SLOT_SYNC_A64, esr, far: FAR_EL2.get(), hpfar: HPFAR_EL2.get() };
        match exit::mmio(&syndrome) {
            Some(m) => Outcome::Mmio(m),
            None => return Fast::Nothing,
        }
    };
    let done = match outcome {
        Outcome::Sysreg(s) if !matches!(s.encoding, ICC_SGI1R_EL1 | ICC_ASGI1R_EL1 | ICC_SGI0R_EL1) => {
            // Not a register Keel emulates: the full exit injects the exception.
            let Some(value) = mmio::plain_sysreg(s.encoding, ctx.gic.version()) else { return Fast::Nothing };
            if s.read {
                mmio::set_reg(regs, s.reg, value);
            }
            Done::default()
        }
        Outcome::Mmio(m) if mmio::is_vpl011(&m) => {
            // No vPL011 in this domain: the full exit injects the abort.
            let Some(done) = mmio::emulate_mmio(ctx.domain, ctx.vcpu_id, regs, &m) else { return Fast::Nothing };
            done
        }
        _ => return Fast::Nothing,
    };
    // Both are 32-bit A64 instructions.
    ELR_EL2.set(ELR_EL2.get().wrapping_add(4));
    if done == Done::default() {
        Fast::Resumed
    } else {
        ctx.done = done;
        Fast::Emulated
    }
}
