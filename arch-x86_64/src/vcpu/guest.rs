//! Guest state shared by VMX and SVM: the general-purpose registers the entry code saves
//! and the hypercall calling conventions.

use keel_abi::hypercall_registers::{X86_32, X86_64};
use keel_kernel::arch::HypercallArgs;

/// Register numbers in x86 encoding order (the index into [`GuestRegisters::gpr`]), as
/// `keel_abi::hypercall_registers` numbers them.
pub mod gpr {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
}

/// The byte offset of register `index` ([`gpr`]) in [`GuestRegisters`].
pub const fn gpr_offset(index: usize) -> usize {
    assert!(index < 16);
    core::mem::offset_of!(GuestRegisters, gpr) + index * core::mem::size_of::<u64>()
}

/// A vendor's world switch: `global_asm!` over `vcpu/gprs.s` (the register moves both
/// vendors share) and the vendor's entry code, with every register's offset in
/// [`GuestRegisters`] as an operand (`{gpr_rax}` ... `{gpr_r15}`), so the assembly has no
/// hand-counted offsets. After a `;`, the vendor's own `name = const value` operands.
macro_rules! world_switch_asm {
    ($($template:expr),+ $(; $($name:ident = const $value:expr),+)?) => {
        core::arch::global_asm!(
            $($template),+,
            gpr_rax = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RAX),
            gpr_rcx = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RCX),
            gpr_rdx = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RDX),
            gpr_rbx = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RBX),
            gpr_rbp = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RBP),
            gpr_rsi = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RSI),
            gpr_rdi = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::RDI),
            gpr_r8 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R8),
            gpr_r9 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R9),
            gpr_r10 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R10),
            gpr_r11 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R11),
            gpr_r12 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R12),
            gpr_r13 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R13),
            gpr_r14 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R14),
            gpr_r15 = const $crate::vcpu::guest::gpr_offset($crate::vcpu::guest::gpr::R15),
            $($($name = const $value,)+)?
            options(att_syntax)
        );
    };
}
pub(crate) use world_switch_asm;

/// The guest's general-purpose registers while Keel runs (the RSP slot is unused: RSP
/// lives in the VMCS/VMCB). The entry code (`gprs.s`, `vmx/enter.s`, `svm/enter.s`) takes
/// every offset into it from [`gpr_offset`] ([`world_switch_asm!`]).
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
    /// The hypercall in the registers (Xen's convention, `hypercall_registers`): 64-bit
    /// mode takes RAX and RDI, RSI, RDX, R10, R8; 32-bit mode EAX and EBX, ECX, EDX, ESI,
    /// EDI.
    pub fn hypercall_args(&self, long_mode: bool) -> HypercallArgs {
        if long_mode {
            let (number, args) = X86_64.gather(&self.gpr, |v| v);
            HypercallArgs { number, args, compat: false }
        } else {
            let (number, args) = X86_32.gather(&self.gpr, |v| v & 0xffff_ffff);
            HypercallArgs { number, args, compat: true }
        }
    }

    /// The hypercall number's low 32 bits, whichever mode made the call (both conventions
    /// keep the number in the same register): what the backend's checks after a call
    /// compare, since a number beyond 32 bits names no hypercall.
    pub fn hypercall_number_low(&self) -> u64 {
        const _: () = assert!(X86_64.number == X86_32.number);
        self.gpr[X86_64.number] & 0xffff_ffff
    }

    /// Sets the hypercall result register (RAX in both modes; a 32-bit guest sees EAX).
    pub fn set_hypercall_result(&mut self, value: u64) {
        self.gpr[X86_64.result] = value;
    }
}
