//! The VMX instructions (Intel SDM vol. 3, chapter 31), each wrapped once. VMX
//! instructions report failure in RFLAGS: CF=1 is VMfailInvalid, ZF=1 VMfailValid (the
//! error number is then in the VM-instruction error field of the current VMCS).

use super::super::GuestRegisters;
use super::vmcs::{self, Field};
use core::arch::asm;

super::super::guest::world_switch_asm!(
    include_str!("../gprs.s"),
    include_str!("enter.s");
    vmcs_host_rsp = const vmcs::HOST_RSP.encoding_const()
);

extern "sysv64" {
    fn keel_vmx_enter(regs: *mut GuestRegisters, resume: u64, host_rsp: *mut u64) -> u64;
    fn keel_vmx_exit();
}

/// A VMX instruction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxFail {
    /// VMfailInvalid: no current VMCS (or a bad operand).
    Invalid,
    /// VMfailValid with the VM-instruction error number.
    Valid(u32),
}

fn outcome(ok: u8, cf: u8) -> Result<(), VmxFail> {
    match (ok, cf) {
        (1, _) => Ok(()),
        (_, 1) => Err(VmxFail::Invalid),
        _ => Err(VmxFail::Valid(vmread(vmcs::VM_INSTRUCTION_ERROR).unwrap_or(0))),
    }
}

/// Enters VMX operation with the VMXON region at `pa`.
///
/// # Safety
/// CR0/CR4 must satisfy the VMX fixed bits with CR4.VMXE set, IA32_FEATURE_CONTROL must
/// allow VMXON, and `pa` must be a 4 KiB region holding the VMCS revision id that stays
/// reserved while this CPU is in VMX operation.
pub unsafe fn vmxon(pa: u64) -> Result<(), VmxFail> {
    let (ok, cf): (u8, u8);
    // SAFETY: the caller guarantees the preconditions above.
    unsafe {
        asm!("vmxon [{}]", "seta {}", "setc {}", in(reg) &pa, out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// Makes the VMCS at `pa` inactive and not current, flushing its state to memory.
///
/// # Safety
/// The CPU must be in VMX operation and `pa` a VMCS region Keel owns.
pub unsafe fn vmclear(pa: u64) -> Result<(), VmxFail> {
    let (ok, cf): (u8, u8);
    // SAFETY: the caller guarantees VMX operation and ownership of the region.
    unsafe {
        asm!("vmclear [{}]", "seta {}", "setc {}", in(reg) &pa, out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// Makes the VMCS at `pa` current.
///
/// # Safety
/// As for [`vmclear`]; the region must hold the right revision id.
pub unsafe fn vmptrld(pa: u64) -> Result<(), VmxFail> {
    let (ok, cf): (u8, u8);
    // SAFETY: the caller guarantees VMX operation and a valid VMCS region.
    unsafe {
        asm!("vmptrld [{}]", "seta {}", "setc {}", in(reg) &pa, out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// The current VMCS's address (`u64::MAX` if none). Only valid in VMX operation.
pub fn vmptrst() -> u64 {
    let mut pa = u64::MAX;
    // SAFETY: VMPTRST only stores the current-VMCS pointer; callers are in VMX operation.
    unsafe { asm!("vmptrst [{}]", in(reg) &mut pa, options(nostack)) };
    pa
}

/// Reads `field` of the current VMCS.
pub fn vmread<F: Field>(field: F) -> Result<F::Value, VmxFail> {
    let (value, ok, cf): (u64, u8, u8);
    // SAFETY: VMREAD only reads the current VMCS; without one it fails cleanly (CF=1).
    unsafe {
        asm!("vmread {}, {}", "seta {}", "setc {}", out(reg) value, in(reg) u64::from(field.encoding()),
             out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    match (ok, cf) {
        (1, _) => Ok(F::from_raw(value)),
        (_, 1) => Err(VmxFail::Invalid),
        _ => Err(VmxFail::Valid(0)),
    }
}

/// Writes `field` of the current VMCS.
///
/// # Safety
/// The value takes effect at the next VM entry or exit: host-state fields must describe
/// Keel's real state, and guest/control fields must not give the guest access to memory
/// or hardware it must not have.
pub unsafe fn vmwrite<F: Field>(field: F, value: F::Value) -> Result<(), VmxFail> {
    let (ok, cf): (u8, u8);
    // SAFETY: the caller guarantees the value is safe to use at the next entry/exit.
    unsafe {
        asm!("vmwrite {}, {}", "seta {}", "setc {}", in(reg) u64::from(field.encoding()), in(reg) F::to_raw(value),
             out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// INVEPT: type 1 = single context (`eptp`), 2 = all contexts.
pub fn invept(kind: u64, eptp: u64) -> Result<(), VmxFail> {
    let descriptor = [eptp, 0u64];
    let (ok, cf): (u8, u8);
    // SAFETY: INVEPT only drops cached translations; callers are in VMX operation.
    unsafe {
        asm!("invept {}, [{}]", "seta {}", "setc {}", in(reg) kind, in(reg) &descriptor,
             out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// INVVPID: type 1 = single context (`vpid`), 2 = all contexts.
pub fn invvpid(kind: u64, vpid: u16) -> Result<(), VmxFail> {
    let descriptor = [vpid as u64, 0u64];
    let (ok, cf): (u8, u8);
    // SAFETY: INVVPID only drops cached translations; callers are in VMX operation.
    unsafe {
        asm!("invvpid {}, [{}]", "seta {}", "setc {}", in(reg) kind, in(reg) &descriptor,
             out(reg_byte) ok, out(reg_byte) cf, options(nostack))
    };
    outcome(ok, cf)
}

/// Where a VM exit lands (the VMCS's HOST_RIP): the second half of [`enter`].
pub fn exit_address() -> u64 {
    keel_vmx_exit as *const () as u64
}

/// How [`enter`] came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The guest ran and a VM exit happened.
    Exited,
    /// VMLAUNCH/VMRESUME failed.
    Failed(VmxFail),
}

/// Runs the guest of the current VMCS until the next VM exit.
///
/// # Safety
/// The current VMCS must be fully set up, with host state describing this CPU
/// (HOST_RIP = [`exit_address`]) and guest state confined by EPT; `host_rsp` must be
/// what its HOST_RSP holds (0 if unknown), which is written here when the stack moved.
pub unsafe fn enter(regs: &mut GuestRegisters, launched: bool, host_rsp: &mut u64) -> Entry {
    // SAFETY: the caller guarantees a complete VMCS; the routine preserves the callee-saved
    // registers and returns on the same stack.
    match unsafe { keel_vmx_enter(regs, launched as u64, host_rsp) } {
        0 => Entry::Exited,
        1 => Entry::Failed(VmxFail::Invalid),
        _ => Entry::Failed(VmxFail::Valid(vmread(vmcs::VM_INSTRUCTION_ERROR).unwrap_or(0))),
    }
}
