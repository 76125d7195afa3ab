//! The machine's hardware-virtualisation extension: VMX or SVM, picked once at boot from
//! CPUID, and each CPU's entry into it.

use super::missing::{EnableError, Missing};
use super::svm::capabilities::Capabilities as SvmCapabilities;
use super::vmx::capabilities::Capabilities as VmxCapabilities;
use crate::{cpu, regs};
use spin::Once;

/// The hardware-virtualisation extension of this machine.
#[derive(Clone, Copy, Debug)]
pub enum Extension {
    Vmx(VmxCapabilities),
    Svm(SvmCapabilities),
}

static EXTENSION: Once<Extension> = Once::new();

/// Picks VMX or SVM from CPUID and checks what Keel needs (EPT or NPT) is there.
pub fn detect() -> Result<&'static Extension, Missing> {
    let f = cpu::features();
    let ext = if f.vmx {
        Extension::Vmx(VmxCapabilities::detect()?)
    } else if f.svm {
        Extension::Svm(SvmCapabilities::detect()?)
    } else {
        return Err(Missing::NoExtension);
    };
    Ok(EXTENSION.call_once(|| ext))
}

/// The extension chosen at boot.
pub fn extension() -> &'static Extension {
    EXTENSION.get().expect("virtualisation used before detection")
}

/// CR4.OSFXSR and OSXMMEXCPT: FXSAVE/FXRSTOR switch the guests' SSE registers.
const CR4_OSFXSR_OSXMMEXCPT: u64 = 1 << 9 | 1 << 10;

/// Enters VMX operation or enables SVM on the calling CPU (idempotent).
pub fn enable_this_cpu() -> Result<(), EnableError> {
    let this = cpu::this_cpu();
    if regs::read_cr4() & CR4_OSFXSR_OSXMMEXCPT != CR4_OSFXSR_OSXMMEXCPT {
        // SAFETY: enables FXSAVE of SSE state; Keel itself is built without SSE.
        unsafe { regs::write_cr4(regs::read_cr4() | CR4_OSFXSR_OSXMMEXCPT) };
    }
    match extension() {
        Extension::Vmx(c) => c.enable_cpu(this),
        Extension::Svm(c) => c.enable_cpu(this),
    }
}
