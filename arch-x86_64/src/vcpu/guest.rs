//! Guest state shared by VMX and SVM: the general-purpose registers the entry code saves,
//! the hypercall calling conventions, and reading the guest's instruction bytes.

use crate::memory::X86Memory;
use crate::X86_64;
use keel_kernel::arch::{HostMemory, HypercallArgs};
use keel_kernel::mm::{translate, GuestPhysAddr, PhysAddr};

/// Register numbers in x86 encoding order (the index into [`GuestRegisters::gpr`]).
pub mod gpr {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
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
            }
        } else {
            let low = |i: usize| r[i] & 0xffff_ffff;
            HypercallArgs {
                number: low(gpr::RAX),
                args: [low(gpr::RBX), low(gpr::RCX), low(gpr::RDX), low(gpr::RSI), low(gpr::RDI)],
            }
        }
    }
}

/// Reads guest-physical bytes at `gpa` through the guest's translation tables; `false` if
/// any byte is unmapped or not executable.
pub fn fetch(root: PhysAddr, gpa: u64, buf: &mut [u8]) -> bool {
    for (i, b) in buf.iter_mut().enumerate() {
        match translate::<X86_64>(root, GuestPhysAddr(gpa.wrapping_add(i as u64))) {
            Some((pa, perms, _)) if perms.execute => {
                let mut one = [0u8];
                X86Memory::read(pa, &mut one);
                *b = one[0];
            }
            _ => return false,
        }
    }
    true
}

/// Whether the guest's instruction at `gpa` is `vmcall` or `vmmcall`.
pub fn is_hypercall_instruction(root: PhysAddr, gpa: u64) -> bool {
    let mut bytes = [0u8; 3];
    fetch(root, gpa, &mut bytes) && (bytes == VMCALL || bytes == VMMCALL)
}
