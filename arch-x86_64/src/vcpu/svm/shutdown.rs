//! What Keel reports beside a guest's triple fault on SVM (the SHUTDOWN intercept), so
//! that one occurrence of a rare failure says which event the processor was delivering,
//! which exit Keel handled before the entry that failed, and whether that entry was the
//! first after the vCPU was loaded on (or moved to) its CPU (`docs/x86-guests.md`,
//! "Known gaps": the Linux SMP bring-up failure on QEMU SVM).

use super::vmcb;
use super::SvmVcpu;
use core::fmt;

/// An event in the VMCB's EVENTINJ / EXITINTINFO format (AMD APM vol. 2, 15.20): vector
/// in bits 7:0, type in 10:8, error code valid in 11, valid in 31, error code in 63:32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event(pub u64);

impl Event {
    const VALID: u64 = 1 << 31;
    const ERROR_VALID: u64 = 1 << 11;

    pub fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    pub fn vector(self) -> u8 {
        self.0 as u8
    }

    /// The event type's name (types 1, 5, 6 and 7 are reserved).
    pub fn kind(self) -> &'static str {
        match (self.0 >> 8) & 7 {
            0 => "external interrupt",
            2 => "NMI",
            3 => "exception",
            4 => "software interrupt",
            _ => "reserved type",
        }
    }

    pub fn error_code(self) -> Option<u32> {
        (self.0 & Self::ERROR_VALID != 0).then_some((self.0 >> 32) as u32)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.valid() {
            return f.write_str("none");
        }
        write!(f, "vector {:#x} ({})", self.vector(), self.kind())?;
        if let Some(code) = self.error_code() {
            write!(f, ", error code {code:#x}")?;
        }
        Ok(())
    }
}

/// A #VMEXIT code with the name of the intercepts Keel takes (appendix C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(pub u64);

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use vmcb::exit_code as c;
        let name = match self.0 {
            c::CR0_WRITE => "CR0 write",
            c::CR4_WRITE => "CR4 write",
            c::EXCEPTION_UD => "#UD",
            c::INTR => "INTR",
            c::NMI => "NMI",
            c::VINTR => "VINTR",
            c::CPUID => "CPUID",
            c::PAUSE => "PAUSE",
            c::HLT => "HLT",
            c::IOIO => "IOIO",
            c::MSR => "MSR",
            c::SHUTDOWN => "SHUTDOWN",
            c::VMMCALL => "VMMCALL",
            c::NPF => "NPF",
            u64::MAX => "none yet",
            _ => "other",
        };
        write!(f, "{:#x} ({name})", self.0)
    }
}

/// Where a vCPU ran before its last load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// Nowhere: the load was its first.
    Nowhere,
    /// On the CPU it was loaded on again.
    SameCpu,
    /// On another CPU.
    Cpu(u32),
}

/// Where the entry that shut down stood since the vCPU was loaded on its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinceLoad {
    /// The CPU it was loaded on.
    pub cpu: u32,
    pub before: Before,
    /// Entries (VMRUNs) since the load, the failed one included.
    pub entries: u32,
}

impl fmt::Display for SinceLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {} since loaded on cpu{}", self.entries, self.cpu)?;
        match self.before {
            Before::Nowhere => f.write_str(" (its first load)"),
            Before::SameCpu => f.write_str(" (same CPU as before)"),
            Before::Cpu(from) => write!(f, " (moved from cpu{from})"),
        }
    }
}

impl SvmVcpu {
    /// Logs the SVM state of a SHUTDOWN intercept beside the common report:
    /// `previous` is the exit Keel handled before the entry that failed.
    pub(super) fn report_shutdown(&self, domain: u16, vcpu: u32, previous: ExitCode) {
        let v = self.vmcb();
        // EXITINTINFO's 32 bits, then its error code's.
        let delivering = Event(v.read(vmcb::EXIT_INT_INFO));
        let since = SinceLoad { cpu: self.loaded_on.unwrap_or(u32::MAX), before: self.before, entries: self.entries };
        let (cs, ss) = (v.read::<u16>(vmcb::CS), v.read::<u16>(vmcb::SS));
        log::warn!(
            "d{domain}v{vcpu} SVM state at the shutdown: delivering {delivering}; {since}, after exit {previous}; \
             CS {cs:#x} attr {:#x}, SS {ss:#x} attr {:#x}, CPL {}, RFLAGS {:#x}, RSP {:#x}, GDT at {:#x} limit {:#x}, \
             TR base {:#x}, ASID {}, VMCB {:#x}",
            v.segment_attributes(vmcb::CS),
            v.segment_attributes(vmcb::SS),
            v.read::<u8>(vmcb::CPL),
            v.read::<u64>(vmcb::RFLAGS),
            v.read::<u64>(vmcb::RSP),
            v.segment_base(vmcb::GDTR),
            v.read::<u32>(vmcb::GDTR + 4),
            v.segment_base(vmcb::TR),
            v.read::<u32>(vmcb::GUEST_ASID),
            v.0 .0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_the_apm_lays_them_out() {
        assert_eq!(Event(0).to_string(), "none");
        // Valid bit clear: what QEMU leaves after delivering an injected event.
        assert_eq!(Event(0xfb).to_string(), "none");
        assert_eq!(Event(0x8000_00fb).to_string(), "vector 0xfb (external interrupt)");
        assert_eq!(Event(0x8000_0403).to_string(), "vector 0x3 (software interrupt)");
        assert_eq!(Event(0x8000_0202).to_string(), "vector 0x2 (NMI)");
        let pf = Event(0x2u64 << 32 | 0x8000_0b0e);
        assert_eq!(pf.error_code(), Some(2));
        assert_eq!(pf.to_string(), "vector 0xe (exception), error code 0x2");
        assert_eq!(Event(0x8000_0500).kind(), "reserved type");
    }

    #[test]
    fn exits_and_loads_say_what_they_were() {
        assert_eq!(ExitCode(0x78).to_string(), "0x78 (HLT)");
        assert_eq!(ExitCode(0x7c).to_string(), "0x7c (MSR)");
        assert_eq!(ExitCode(0x400).to_string(), "0x400 (NPF)");
        assert_eq!(ExitCode(0x99).to_string(), "0x99 (other)");
        assert_eq!(ExitCode(u64::MAX).to_string(), "0xffffffffffffffff (none yet)");
        let moved = SinceLoad { cpu: 1, before: Before::Cpu(0), entries: 1 };
        assert_eq!(moved.to_string(), "entry 1 since loaded on cpu1 (moved from cpu0)");
        let stayed = SinceLoad { cpu: 0, before: Before::SameCpu, entries: 7 };
        assert_eq!(stayed.to_string(), "entry 7 since loaded on cpu0 (same CPU as before)");
        let first = SinceLoad { cpu: 0, before: Before::Nowhere, entries: 2 };
        assert_eq!(first.to_string(), "entry 2 since loaded on cpu0 (its first load)");
    }
}
