//! Decoding VMX exits into the portable [`VmExit`] (Intel SDM vol. 3, chapter 28 and
//! appendix C).

use super::instructions::vmwrite;
use super::vmcs::{self, reason};
use super::{field, VmxVcpu};
use crate::regs::efer;
use crate::vcpu::guest;
use keel_kernel::arch::{MemoryAccess, VmExit};
use keel_kernel::mm::GuestPhysAddr;

/// #UD: intercepted so that `vmmcall` (AMD's hypercall) works on Intel too.
pub const UD_VECTOR: u32 = 6;
const INTERRUPTION_TYPE_NMI: u64 = 2;
const INTERRUPTION_TYPE_HARDWARE_EXCEPTION: u64 = 3;
const INTERRUPTION_VALID: u64 = 1 << 31;
/// Blocking by STI and by MOV SS end with the instruction they follow.
const INTERRUPTIBILITY_STI_MOV_SS: u64 = 0b11;
const AR_LONG_MODE: u64 = 1 << 13;
const CR0_PG: u64 = 1 << 31;
/// EPT-violation qualification: the access was a read, a write, an instruction fetch.
const EPT_WRITE: u64 = 1 << 1;
const EPT_FETCH: u64 = 1 << 2;

impl VmxVcpu {
    /// Handles the exit that just happened: `Some` for the core, `None` to re-enter.
    pub(super) fn handle_exit(&mut self) -> Option<VmExit> {
        let exit_reason = field(vmcs::EXIT_REASON) as u32;
        let qualification = field(vmcs::EXIT_QUALIFICATION);
        if exit_reason & reason::ENTRY_FAILURE != 0 {
            log::error!(
                "VM entry failed: exit reason {} (qualification {qualification:#x}), guest RIP {:#x}",
                exit_reason & 0xffff,
                field(vmcs::GUEST_RIP)
            );
            return Some(VmExit::GuestCrash);
        }
        match exit_reason & 0xffff {
            reason::VMCALL => {
                self.long_mode = self.in_long_mode();
                self.skip_instruction(field(vmcs::EXIT_INSTRUCTION_LENGTH));
                Some(VmExit::Hypercall)
            }
            reason::HLT => {
                self.skip_instruction(field(vmcs::EXIT_INSTRUCTION_LENGTH));
                Some(VmExit::Halt)
            }
            reason::PAUSE => {
                self.skip_instruction(field(vmcs::EXIT_INSTRUCTION_LENGTH));
                Some(VmExit::Yield)
            }
            reason::EPT_VIOLATION => {
                let access = if qualification & EPT_FETCH != 0 {
                    MemoryAccess::Execute
                } else if qualification & EPT_WRITE != 0 {
                    MemoryAccess::Write
                } else {
                    MemoryAccess::Read
                };
                Some(VmExit::MemoryFault { gpa: GuestPhysAddr(field(vmcs::GUEST_PHYSICAL_ADDRESS)), access })
            }
            reason::EXTERNAL_INTERRUPT => Some(VmExit::Interrupt),
            reason::TRIPLE_FAULT => Some(VmExit::GuestCrash),
            reason::EXCEPTION_OR_NMI => self.exception(),
            reason::EPT_MISCONFIGURATION => {
                log::error!("EPT misconfiguration at GPA {:#x}", field(vmcs::GUEST_PHYSICAL_ADDRESS));
                Some(VmExit::GuestCrash)
            }
            other => {
                log::warn!(
                    "unhandled VMX exit reason {other} (qualification {qualification:#x}) at RIP {:#x}",
                    field(vmcs::GUEST_RIP)
                );
                Some(VmExit::GuestCrash)
            }
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
        if vector as u32 == UD_VECTOR && kind == INTERRUPTION_TYPE_HARDWARE_EXCEPTION {
            if let Some(gpa) = self.instruction_gpa() {
                if guest::is_hypercall_instruction(self.root, gpa) {
                    self.long_mode = self.in_long_mode();
                    self.skip_instruction(guest::VMMCALL.len() as u64);
                    return Some(VmExit::Hypercall);
                }
            }
            self.inject_hardware_exception(UD_VECTOR);
            return None;
        }
        log::warn!("unexpected guest exception vector {vector} (type {kind})");
        Some(VmExit::GuestCrash)
    }

    /// The guest-physical address of the current instruction, if paging is off (the
    /// guest's own page tables are not walked yet).
    fn instruction_gpa(&self) -> Option<u64> {
        if field(vmcs::GUEST_CR0) & CR0_PG != 0 {
            return None;
        }
        Some((field(vmcs::GUEST_CS_BASE) + field(vmcs::GUEST_RIP)) & 0xffff_ffff)
    }

    fn in_long_mode(&self) -> bool {
        field(vmcs::GUEST_IA32_EFER) & efer::LMA != 0 && field(vmcs::GUEST_CS_ACCESS_RIGHTS) & AR_LONG_MODE != 0
    }

    fn skip_instruction(&self, length: u64) {
        let rip = field(vmcs::GUEST_RIP).wrapping_add(length);
        let rip = if self.in_long_mode() { rip } else { rip & 0xffff_ffff };
        let interruptibility = field(vmcs::GUEST_INTERRUPTIBILITY) & !INTERRUPTIBILITY_STI_MOV_SS;
        // SAFETY: moves the guest past an instruction Keel emulated; guest state only.
        unsafe {
            let _ = vmwrite(vmcs::GUEST_RIP, rip);
            let _ = vmwrite(vmcs::GUEST_INTERRUPTIBILITY, interruptibility);
        }
    }

    fn inject_hardware_exception(&self, vector: u32) {
        let info = vector as u64 | INTERRUPTION_TYPE_HARDWARE_EXCEPTION << 8 | INTERRUPTION_VALID;
        // SAFETY: queues an exception without error code for the guest at the next entry.
        unsafe {
            let _ = vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, info);
        }
    }
}
