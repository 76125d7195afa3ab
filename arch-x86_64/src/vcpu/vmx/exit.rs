//! Decoding VMX exits (Intel SDM vol. 3, chapter 28 and appendix C): what the core must
//! see becomes a portable [`VmExit`]; CPUID, MSR and port accesses go to the common
//! emulation; control-register accesses to [`super::cr`]; instructions the guest is not
//! offered get #UD (or #GP) as on a processor without them.

use super::cr::CrAccess;
use super::state::set;
use super::vmcs::{self, reason};
use super::{field, VmxVcpu};
use crate::vcpu::emulate::{self, Intercept, Io};
use crate::vcpu::guest_cpu::{GuestCpu, Segment, GP, UD};
use crate::vcpu::task_switch::Delivering;
use crate::vcpu::{interrupts, Common};
use keel_kernel::arch::{MemoryAccess, VmExit};

/// #UD: intercepted so that `vmmcall` (AMD's hypercall) works on Intel too.
pub const UD_VECTOR: u32 = 6;
const INTERRUPTION_TYPE_NMI: u32 = 2;
const INTERRUPTION_TYPE_HARDWARE_EXCEPTION: u32 = 3;
/// EPT-violation qualification: the access was a write, an instruction fetch.
const EPT_WRITE: u64 = 1 << 1;
const EPT_FETCH: u64 = 1 << 2;

impl VmxVcpu {
    /// Handles the exit that just happened: `Some` for the core, `None` to re-enter.
    pub(super) fn handle_exit(&mut self, common: &mut Common) -> Option<VmExit> {
        let exit_reason = field(vmcs::EXIT_REASON);
        let qualification = || field(vmcs::EXIT_QUALIFICATION);
        if exit_reason & reason::ENTRY_FAILURE != 0 {
            let qualification = qualification();
            log::error!(
                "VM entry failed: exit reason {} (qualification {qualification:#x}), guest RIP {:#x}",
                exit_reason & 0xffff,
                field(vmcs::GUEST_RIP)
            );
            return Some(VmExit::GuestCrash);
        }
        self.reinject_vectored_event();
        let next_rip = |v: &Self| v.rip().wrapping_add(u64::from(field(vmcs::EXIT_INSTRUCTION_LENGTH)));
        let emulate = |v: &mut Self, common: &mut Common, what| {
            let next = next_rip(v);
            emulate::handle(v, common, what, next);
            None
        };
        match exit_reason & 0xffff {
            reason::VMCALL => {
                self.long_mode = self.in_64bit_code();
                let next = next_rip(self);
                self.set_rip(next);
                Some(VmExit::Hypercall)
            }
            reason::HLT => {
                let next = next_rip(self);
                self.set_rip(next);
                interrupts::halt(self, common)
            }
            reason::INTERRUPT_WINDOW => {
                self.interrupt_window(false);
                None
            }
            reason::PAUSE => {
                let next = next_rip(self);
                self.set_rip(next);
                Some(VmExit::Yield)
            }
            reason::CPUID => emulate(self, common, Intercept::Cpuid),
            reason::RDMSR => emulate(self, common, Intercept::Rdmsr),
            reason::WRMSR => emulate(self, common, Intercept::Wrmsr),
            reason::IO => {
                let io = self.io(qualification());
                emulate(self, common, Intercept::Io(io))
            }
            reason::CR_ACCESS => {
                if self.cr_access(&CrAccess::decode(qualification()), common) {
                    let next = next_rip(self);
                    self.set_rip(next);
                } else {
                    self.inject(GP, Some(0));
                }
                None
            }
            reason::INVD | reason::WBINVD => {
                let next = next_rip(self);
                self.set_rip(next); // the guest's memory is always coherent
                None
            }
            reason::RDPMC => {
                self.inject(GP, Some(0)); // no performance counters are offered
                None
            }
            reason::GETSEC
            | reason::VMCLEAR..=reason::VMXON
            | reason::MWAIT
            | reason::MONITOR
            | reason::INVEPT
            | reason::RDTSCP
            | reason::INVVPID
            | reason::XSETBV
            | reason::INVPCID
            | reason::VMFUNC => {
                self.inject(UD, None); // features the guest is not shown
                None
            }
            reason::EPT_VIOLATION => {
                let qualification = qualification();
                let access = if qualification & EPT_FETCH != 0 {
                    MemoryAccess::Execute
                } else if qualification & EPT_WRITE != 0 {
                    MemoryAccess::Write
                } else {
                    MemoryAccess::Read
                };
                let delivering = field(vmcs::IDT_VECTORING_INFO) & (1 << 31) != 0;
                emulate::stage_fault(self, common, field(vmcs::GUEST_PHYSICAL_ADDRESS), access, delivering)
            }
            // The core looks at its clock after either: the slice or a deadline ended.
            reason::EXTERNAL_INTERRUPT | reason::PREEMPTION_TIMER => Some(VmExit::Interrupt),
            reason::TRIPLE_FAULT => {
                emulate::report_triple_fault(self);
                Some(VmExit::GuestCrash)
            }
            reason::EXCEPTION_OR_NMI => self.exception(),
            reason::TASK_SWITCH => {
                let info = field(vmcs::IDT_VECTORING_INFO);
                let delivering =
                    (info & (1 << 31) != 0).then_some(Delivering { vector: info as u8, kind: ((info >> 8) & 7) as u8 });
                emulate::refuse_task_switch(self, qualification() as u16, delivering)
            }
            reason::EPT_MISCONFIGURATION => {
                log::error!("EPT misconfiguration at GPA {:#x}", field(vmcs::GUEST_PHYSICAL_ADDRESS));
                Some(VmExit::GuestCrash)
            }
            other => {
                let qualification = qualification();
                log::warn!(
                    "unhandled VMX exit reason {other} (qualification {qualification:#x}) at RIP {:#x}",
                    field(vmcs::GUEST_RIP)
                );
                Some(VmExit::GuestCrash)
            }
        }
    }

    /// An event whose delivery the exit interrupted (an injected interrupt or exception
    /// that hit an EPT violation, say) is queued again for the next entry (SDM 28.2.4).
    fn reinject_vectored_event(&mut self) {
        let info = field(vmcs::IDT_VECTORING_INFO);
        if info & (1 << 31) == 0 {
            return;
        }
        set(vmcs::ENTRY_INTERRUPTION_INFO, info & !(1 << 12));
        self.cache.queued = true;
        if info & (1 << 11) != 0 {
            set(vmcs::ENTRY_EXCEPTION_ERROR_CODE, field(vmcs::IDT_VECTORING_ERROR_CODE));
        }
        set(vmcs::ENTRY_INSTRUCTION_LENGTH, field(vmcs::EXIT_INSTRUCTION_LENGTH));
    }

    /// An I/O-instruction exit (table 28-5; instruction information, table 28-8).
    fn io(&self, q: u64) -> Io {
        let string = q & (1 << 4) != 0;
        let info = if string { field(vmcs::EXIT_INSTRUCTION_INFO) } else { 0 };
        Io {
            port: (q >> 16) as u16,
            size: (q & 7) as u8 + 1,
            input: q & (1 << 3) != 0,
            string,
            rep: q & (1 << 5) != 0,
            address_size: 2 << ((info >> 7) & 3),
            segment: Segment::from_encoding(u64::from((info >> 15) & 7)),
        }
    }

    fn exception(&mut self) -> Option<VmExit> {
        let info = field(vmcs::EXIT_INTERRUPTION_INFO);
        let (vector, kind) = (info & 0xff, (info >> 8) & 7);
        if kind == INTERRUPTION_TYPE_NMI {
            // The exit consumed a host NMI; deliver it to Keel's own handler.
            // SAFETY: vector 2 is Keel's NMI handler, which reports and powers off.
            unsafe { core::arch::asm!("int 2") };
            return None;
        }
        if vector == UD_VECTOR && kind == INTERRUPTION_TYPE_HARDWARE_EXCEPTION {
            if emulate::at_hypercall(self) {
                self.long_mode = self.in_64bit_code();
                let rip = self.rip().wrapping_add(crate::vcpu::guest::VMMCALL.len() as u64);
                self.set_rip(rip);
                return Some(VmExit::Hypercall);
            }
            self.inject(UD, None);
            return None;
        }
        log::warn!("unexpected guest exception vector {vector} (type {kind})");
        Some(VmExit::GuestCrash)
    }
}
