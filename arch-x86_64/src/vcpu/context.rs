//! Guest state the hardware does not switch on VM entry and exit, switched by Keel when a
//! vCPU is loaded on or put off a CPU: the x87/SSE registers (FXSAVE image), DR0–DR3
//! and DR6, and, on VMX, the SYSCALL MSRs and the kernel GS base (SVM keeps those in the
//! VMCB, switched by VMLOAD/VMSAVE). Keel itself never touches any of them (it is built
//! without SSE and never runs SYSCALL or SWAPGS), so they can stay the guest's while it
//! is loaded.

use crate::regs::{self, msr};
use alloc::boxed::Box;
use core::arch::asm;

/// The FXSAVE area (Intel SDM vol. 1, 10.5.1).
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// MSRs switched on VMX, in this order.
const SYSCALL_MSRS: [u32; 5] = [msr::STAR, msr::LSTAR, msr::CSTAR, msr::SFMASK, msr::KERNEL_GS_BASE];

/// A vCPU's switched state.
pub struct Context {
    fx: Box<FxArea>,
    debug: [u64; 5],
    syscall: [u64; 5],
    /// Whether the MSRs are switched here (VMX).
    switch_msrs: bool,
}

impl Context {
    /// The state after reset: x87 control word 0x37f, MXCSR 0x1f80, DR6 0xffff0ff0.
    pub fn new(switch_msrs: bool) -> Self {
        let mut fx = Box::new(FxArea([0; 512]));
        fx.0[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        fx.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        Context { fx, debug: [0, 0, 0, 0, 0xffff_0ff0], syscall: [0; 5], switch_msrs }
    }

    /// Puts this vCPU's state into the calling CPU's registers.
    pub fn restore(&self) {
        // SAFETY: the area is a valid FXSAVE image (reset values or saved by `save`),
        // 16-byte aligned; CR4.OSFXSR is set on every CPU that runs guests.
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.fx.0.as_ptr(), options(nostack, readonly)) };
        let d = &self.debug;
        // SAFETY: debug registers only take effect through DR7, which the VMCS/VMCB
        // switches; Keel sets no breakpoints.
        unsafe {
            asm!("mov dr0, {}", in(reg) d[0], options(nostack));
            asm!("mov dr1, {}", in(reg) d[1], options(nostack));
            asm!("mov dr2, {}", in(reg) d[2], options(nostack));
            asm!("mov dr3, {}", in(reg) d[3], options(nostack));
            asm!("mov dr6, {}", in(reg) d[4], options(nostack));
        }
        if self.switch_msrs {
            for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
                // SAFETY: these MSRs exist on every x86_64 CPU; the values were validated
                // (canonical) when the guest wrote them, and Keel does not use them.
                unsafe { regs::wrmsr(m, self.syscall[i]) };
            }
        }
    }

    /// Saves the calling CPU's registers as this vCPU's state.
    pub fn save(&mut self) {
        // SAFETY: as in `restore`; FXSAVE writes the 512-byte area.
        unsafe { asm!("fxsave64 [{}]", in(reg) self.fx.0.as_mut_ptr(), options(nostack)) };
        let d = &mut self.debug;
        // SAFETY: reading debug registers has no side effect at CPL 0.
        unsafe {
            asm!("mov {}, dr0", out(reg) d[0], options(nostack, nomem));
            asm!("mov {}, dr1", out(reg) d[1], options(nostack, nomem));
            asm!("mov {}, dr2", out(reg) d[2], options(nostack, nomem));
            asm!("mov {}, dr3", out(reg) d[3], options(nostack, nomem));
            asm!("mov {}, dr6", out(reg) d[4], options(nostack, nomem));
        }
        if self.switch_msrs {
            for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
                // SAFETY: these MSRs exist on every x86_64 CPU.
                self.syscall[i] = unsafe { regs::rdmsr(m) };
            }
        }
    }
}
