//! Guest state shared by VMX and SVM: the general-purpose registers the entry code saves
//! and the hypercall calling conventions.

use keel_kernel::arch::HypercallArgs;

/// Register numbers in x86 encoding order (the index into [`GuestRegisters::gpr`]).
pub mod gpr {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R10: usize = 10;
}

/// The guest's general-purpose registers while Keel runs (the RSP slot is unused: RSP
/// lives in the VMCS/VMCB). The entry code (`vmx/enter.s`, `svm/enter.s`) relies on this
/// layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegisters {
    pub gpr: [u64; 16],
}

/// `vmcall` (Intel) and `vmmcall` (AMD); each vendor's CPU raises #UD for the other's.
pub const VMCALL: [u8; 3] = [0x0f, 0x01, 0xc1];
pub const VMMCALL: [u8; 3] = [0x0f, 0x01, 0xd9];

/// Flat 32-bit segments of the initial state (Xen PVH entry: selectors unspecified).
pub const CODE_SELECTOR: u16 = 0x08;
pub const DATA_SELECTOR: u16 = 0x10;
pub const TASK_SELECTOR: u16 = 0x18;

impl GuestRegisters {
    /// The hypercall in the registers: 64-bit mode takes RAX and RDI, RSI, RDX, R10, R8;
    /// 32-bit mode EAX and EBX, ECX, EDX, ESI, EDI (Xen's convention).
    pub fn hypercall_args(&self, long_mode: bool) -> HypercallArgs {
        let r = &self.gpr;
        if long_mode {
            HypercallArgs {
                number: r[gpr::RAX],
                args: [r[gpr::RDI], r[gpr::RSI], r[gpr::RDX], r[gpr::R10], r[gpr::R8]],
                compat: false,
            }
        } else {
            let low = |i: usize| r[i] & 0xffff_ffff;
            HypercallArgs {
                number: low(gpr::RAX),
                args: [low(gpr::RBX), low(gpr::RCX), low(gpr::RDX), low(gpr::RSI), low(gpr::RDI)],
                compat: true,
            }
        }
    }
}
