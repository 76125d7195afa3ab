//! Why Keel cannot use hardware virtualisation: on this machine ([`Missing`]) or on one
//! CPU ([`EnableError`]).

use super::vmx::instructions::VmxFail;
use crate::cpu;
use core::fmt;

/// What keeps Keel from using hardware virtualisation.
#[derive(Clone, Copy, Debug)]
pub enum Missing {
    NoExtension,
    VmxLockedOff,
    VmxNoEpt,
    VmxEptFormat,
    VmxNoInvept,
    SvmDisabled,
    SvmNoNpt,
    SvmNoAsids,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vendor = cpu::features().vendor_id();
        match self {
            Missing::NoExtension => {
                write!(f, "the {vendor} CPU has neither VMX (CPUID.1:ECX[5]) nor SVM (CPUID.80000001h:ECX[2])")
            }
            Missing::VmxLockedOff => {
                write!(f, "VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked without VMX outside SMX)")
            }
            Missing::VmxNoEpt => write!(f, "VMX without EPT (secondary control 'enable EPT' not allowed)"),
            Missing::VmxEptFormat => write!(f, "EPT without 4-level walks or write-back paging structures"),
            Missing::VmxNoInvept => write!(f, "EPT without INVEPT (single- or all-context)"),
            Missing::SvmDisabled => write!(f, "SVM is disabled by the firmware (VM_CR.SVMDIS=1)"),
            Missing::SvmNoNpt => write!(f, "SVM without nested paging (CPUID.8000000Ah:EDX.NP[0]=0)"),
            Missing::SvmNoAsids => write!(f, "SVM with no ASID for guests (CPUID.8000000Ah:EBX < 2)"),
        }
    }
}

/// Why a CPU could not enter its virtualisation mode.
#[derive(Clone, Copy, Debug)]
pub enum EnableError {
    /// The firmware locked the extension off on this CPU.
    Locked,
    /// No frame for the per-CPU control page.
    NoMemory,
    /// VMXON failed.
    Vmx(VmxFail),
}

impl fmt::Display for EnableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnableError::Locked => write!(f, "disabled by the firmware on this CPU"),
            EnableError::NoMemory => write!(f, "no memory for the per-CPU control page"),
            EnableError::Vmx(e) => write!(f, "VMXON failed: {e:?}"),
        }
    }
}
