//! What this processor's VMX offers (the IA32_VMX_* capability MSRs, Intel SDM vol. 3,
//! appendix A) and entering VMX operation on a CPU.

use super::instructions;
use crate::cpu::PerCpu;
use crate::regs::{self, msr};
use crate::vcpu::{EnableError, Missing};
use keel_kernel::mm::FRAME_POOL;
use keel_kernel::mm::PAGE_SIZE;

const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;
const CR4_VMXE: u64 = 1 << 13;

/// EPT/VPID capability bits (IA32_VMX_EPT_VPID_CAP).
mod ept_cap {
    pub const WALK_LENGTH_4: u64 = 1 << 6;
    pub const WRITE_BACK: u64 = 1 << 14;
    pub const PAGE_2M: u64 = 1 << 16;
    pub const PAGE_1G: u64 = 1 << 17;
    pub const INVEPT: u64 = 1 << 20;
    pub const INVEPT_SINGLE: u64 = 1 << 25;
    pub const INVEPT_ALL: u64 = 1 << 26;
    pub const INVVPID: u64 = 1 << 32;
    pub const INVVPID_SINGLE: u64 = 1 << 41;
    pub const INVVPID_ALL: u64 = 1 << 42;
}

/// A control field's allowed settings: bits that must be 1, bits that may be 1.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    pub must: u32,
    pub may: u32,
}

impl Allowed {
    fn from_msr(index: u32) -> Allowed {
        // SAFETY: the VMX capability MSRs exist when CPUID reports VMX.
        let v = unsafe { regs::rdmsr(index) };
        Allowed { must: v as u32, may: (v >> 32) as u32 }
    }

    /// `want` adjusted to what the processor allows.
    pub fn adjust(self, want: u32) -> u32 {
        (want | self.must) & self.may
    }

    pub fn allows(self, bits: u32) -> bool {
        self.may & bits == bits
    }
}

/// The VMX features of this machine.
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    pub revision: u32,
    pub pin: Allowed,
    pub primary: Allowed,
    pub secondary: Allowed,
    pub exit: Allowed,
    pub entry: Allowed,
    pub ept_vpid: u64,
    cr0_fixed: (u64, u64),
    cr4_fixed: (u64, u64),
    /// The VMX preemption timer counts down once every 2^rate TSC ticks.
    pub preemption_timer_rate: Option<u8>,
}

impl Capabilities {
    /// Reads the capability MSRs; fails if VMX is unusable or lacks EPT.
    pub fn detect() -> Result<Capabilities, Missing> {
        // SAFETY: CPUID reported VMX, so IA32_FEATURE_CONTROL and the VMX MSRs exist.
        let (control, basic) = unsafe { (regs::rdmsr(msr::IA32_FEATURE_CONTROL), regs::rdmsr(msr::IA32_VMX_BASIC)) };
        if control & FEATURE_CONTROL_LOCK != 0 && control & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
            return Err(Missing::VmxLockedOff);
        }
        let true_controls = basic & BASIC_TRUE_CONTROLS != 0;
        let pick = |plain, truer| Allowed::from_msr(if true_controls { truer } else { plain });
        let primary = pick(msr::IA32_VMX_PROCBASED_CTLS, msr::IA32_VMX_TRUE_PROCBASED_CTLS);
        let secondary = if primary.allows(super::vmcs::primary::SECONDARY_CONTROLS) {
            Allowed::from_msr(msr::IA32_VMX_PROCBASED_CTLS2)
        } else {
            Allowed { must: 0, may: 0 }
        };
        // SAFETY: as above (the EPT/VPID MSR exists when secondary controls allow EPT or VPID).
        let ept_vpid = if secondary.may != 0 { unsafe { regs::rdmsr(msr::IA32_VMX_EPT_VPID_CAP) } } else { 0 };
        // SAFETY: as above.
        let fixed = |a, b| unsafe { (regs::rdmsr(a), regs::rdmsr(b)) };
        let mut caps = Capabilities {
            revision: basic as u32 & 0x7fff_ffff,
            pin: pick(msr::IA32_VMX_PINBASED_CTLS, msr::IA32_VMX_TRUE_PINBASED_CTLS),
            primary,
            secondary,
            exit: pick(msr::IA32_VMX_EXIT_CTLS, msr::IA32_VMX_TRUE_EXIT_CTLS),
            entry: pick(msr::IA32_VMX_ENTRY_CTLS, msr::IA32_VMX_TRUE_ENTRY_CTLS),
            ept_vpid,
            cr0_fixed: fixed(msr::IA32_VMX_CR0_FIXED0, msr::IA32_VMX_CR0_FIXED1),
            cr4_fixed: fixed(msr::IA32_VMX_CR4_FIXED0, msr::IA32_VMX_CR4_FIXED1),
            preemption_timer_rate: None,
        };
        if caps.pin.allows(super::vmcs::pin::PREEMPTION_TIMER) {
            // SAFETY: as above; IA32_VMX_MISC exists with VMX.
            let misc = unsafe { regs::rdmsr(msr::IA32_VMX_MISC) };
            caps.preemption_timer_rate = Some((misc & 0x1f) as u8);
        }
        if !caps.ept() {
            return Err(Missing::VmxNoEpt);
        }
        if ept_vpid & ept_cap::WALK_LENGTH_4 == 0 || ept_vpid & ept_cap::WRITE_BACK == 0 {
            return Err(Missing::VmxEptFormat);
        }
        if ept_vpid & ept_cap::INVEPT == 0 || ept_vpid & (ept_cap::INVEPT_SINGLE | ept_cap::INVEPT_ALL) == 0 {
            return Err(Missing::VmxNoInvept);
        }
        Ok(caps)
    }

    pub fn ept(&self) -> bool {
        self.primary.allows(super::vmcs::primary::SECONDARY_CONTROLS)
            && self.secondary.allows(super::vmcs::secondary::ENABLE_EPT)
    }

    /// VPID with an INVVPID that can flush one VPID or all.
    pub fn vpid(&self) -> bool {
        self.secondary.allows(super::vmcs::secondary::ENABLE_VPID)
            && self.ept_vpid & ept_cap::INVVPID != 0
            && self.ept_vpid & (ept_cap::INVVPID_SINGLE | ept_cap::INVVPID_ALL) != 0
    }

    /// PAUSE exits only for a loop of PAUSEs (PLE), not for every one.
    pub fn pause_loop_exiting(&self) -> bool {
        self.secondary.allows(super::vmcs::secondary::PAUSE_LOOP_EXITING)
    }

    pub fn unrestricted_guest(&self) -> bool {
        self.secondary.allows(super::vmcs::secondary::UNRESTRICTED_GUEST)
    }

    pub fn ept_2m(&self) -> bool {
        self.ept_vpid & ept_cap::PAGE_2M != 0
    }

    pub fn ept_1g(&self) -> bool {
        self.ept_vpid & ept_cap::PAGE_1G != 0
    }

    /// INVEPT type for flushing one EPT context: single context if supported, else all.
    pub fn invept_type(&self) -> u64 {
        if self.ept_vpid & ept_cap::INVEPT_SINGLE != 0 {
            1
        } else {
            2
        }
    }

    /// INVVPID type for flushing one VPID: single context if supported, else all.
    pub fn invvpid_type(&self) -> u64 {
        if self.ept_vpid & ept_cap::INVVPID_SINGLE != 0 {
            1
        } else {
            2
        }
    }

    /// CR0 as VMX operation requires it; `unrestricted` relaxes PE and PG.
    pub fn fixed_cr0(&self, value: u64, unrestricted: bool) -> u64 {
        let mut must = self.cr0_fixed.0;
        if unrestricted {
            must &= !(1 | 1 << 31);
        }
        (value | must) & self.cr0_fixed.1
    }

    pub fn fixed_cr4(&self, value: u64) -> u64 {
        (value | self.cr4_fixed.0) & self.cr4_fixed.1
    }

    /// Enters VMX operation on the calling CPU (once; later calls return at once).
    pub fn enable_cpu(&self, cpu: &PerCpu) -> Result<(), EnableError> {
        if cpu.virt.is_enabled() {
            return Ok(());
        }
        // SAFETY: IA32_FEATURE_CONTROL exists (CPUID VMX). Locking it with VMX enabled is
        // what firmware normally does; once locked it cannot change until reset.
        unsafe {
            let control = regs::rdmsr(msr::IA32_FEATURE_CONTROL);
            if control & FEATURE_CONTROL_LOCK == 0 {
                let enable = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
                regs::wrmsr(msr::IA32_FEATURE_CONTROL, control | enable);
            } else if control & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
                return Err(EnableError::Locked);
            }
        }
        // SAFETY: the fixed bits only add what VMX requires (NE, VMXE) to Keel's values
        // (PE, PG, PAE already set); nothing Keel relies on is cleared.
        unsafe {
            regs::write_cr0(self.fixed_cr0(regs::read_cr0(), false));
            regs::write_cr4(self.fixed_cr4(regs::read_cr4() | CR4_VMXE));
        }
        let region = FRAME_POOL.alloc(1).ok_or(EnableError::NoMemory)?;
        // SAFETY: a fresh frame from the pool, identity-mapped, owned by this CPU forever.
        unsafe {
            core::ptr::write_bytes(region.0 as usize as *mut u8, 0, PAGE_SIZE as usize);
            core::ptr::write_volatile(region.0 as usize as *mut u32, self.revision);
        }
        // SAFETY: CR0/CR4 satisfy the fixed bits, FEATURE_CONTROL allows VMXON and the
        // region holds the revision id and stays reserved.
        unsafe { instructions::vmxon(region.0) }.map_err(EnableError::Vmx)?;
        cpu.virt.set_enabled(region.0, 0);
        if self.ept_vpid & ept_cap::INVEPT_ALL != 0 {
            // Drop whatever EPT translations earlier VMX software left cached.
            let _ = instructions::invept(2, 0);
        }
        Ok(())
    }
}
