//! Decoding #VMEXIT codes into the portable [`VmExit`] (AMD APM vol. 2, 15.6 and
//! appendix C). Without NRIP save (QEMU), the next RIP is the intercepted instruction's
//! address plus its length, which Keel knows for every instruction it intercepts.

use super::vmcb::{self, exit_code};
use super::SvmVcpu;
use crate::regs::efer;
use crate::vcpu::guest;
use keel_kernel::arch::{MemoryAccess, VmExit};
use keel_kernel::mm::GuestPhysAddr;

/// #UD: intercepted so that `vmcall` (Intel's hypercall) works on AMD too.
pub const UD_VECTOR: u32 = 6;
const LEN_HLT: u64 = 1;
const LEN_PAUSE: u64 = 2;
const LEN_HYPERCALL: u64 = 3;
const EVENT_TYPE_EXCEPTION: u64 = 3 << 8;
const EVENT_VALID: u64 = 1 << 31;
const ATTR_LONG_MODE: u16 = 1 << 9;
const CR0_PG: u64 = 1 << 31;
/// NPF EXITINFO1: the access was a write, an instruction fetch.
const NPF_WRITE: u64 = 1 << 1;
const NPF_FETCH: u64 = 1 << 4;

impl SvmVcpu {
    /// Handles the #VMEXIT that just happened: `Some` for the core, `None` to re-enter.
    pub(super) fn handle_exit(&mut self) -> Option<VmExit> {
        let v = &self.vmcb;
        let code: u64 = v.read(vmcb::EXIT_CODE);
        let info1: u64 = v.read(vmcb::EXIT_INFO1);
        match code {
            exit_code::VMMCALL => {
                self.long_mode = self.in_long_mode();
                self.skip_instruction(LEN_HYPERCALL, true);
                Some(VmExit::Hypercall)
            }
            exit_code::HLT => {
                self.skip_instruction(LEN_HLT, true);
                Some(VmExit::Halt)
            }
            exit_code::PAUSE => {
                self.skip_instruction(LEN_PAUSE, true);
                Some(VmExit::Yield)
            }
            exit_code::NPF => {
                let access = if info1 & NPF_FETCH != 0 {
                    MemoryAccess::Execute
                } else if info1 & NPF_WRITE != 0 {
                    MemoryAccess::Write
                } else {
                    MemoryAccess::Read
                };
                Some(VmExit::MemoryFault { gpa: GuestPhysAddr(v.read(vmcb::EXIT_INFO2)), access })
            }
            exit_code::INTR | exit_code::NMI => Some(VmExit::Interrupt),
            exit_code::SHUTDOWN => Some(VmExit::GuestCrash),
            exit_code::EXCEPTION_UD => {
                if let Some(gpa) = self.instruction_gpa() {
                    if guest::is_hypercall_instruction(self.root, gpa) {
                        self.long_mode = self.in_long_mode();
                        self.skip_instruction(LEN_HYPERCALL, false);
                        return Some(VmExit::Hypercall);
                    }
                }
                v.write(vmcb::EVENT_INJECTION, UD_VECTOR as u64 | EVENT_TYPE_EXCEPTION | EVENT_VALID);
                None
            }
            exit_code::INVALID => {
                log::error!("VMRUN refused the guest state (#VMEXIT invalid), RIP {:#x}", v.read::<u64>(vmcb::RIP));
                Some(VmExit::GuestCrash)
            }
            other => {
                log::warn!(
                    "unhandled #VMEXIT {other:#x} (info {info1:#x}, {:#x}) at RIP {:#x}",
                    v.read::<u64>(vmcb::EXIT_INFO2),
                    v.read::<u64>(vmcb::RIP)
                );
                Some(VmExit::GuestCrash)
            }
        }
    }

    /// The guest-physical address of the current instruction, if paging is off (the
    /// guest's own page tables are not walked yet).
    fn instruction_gpa(&self) -> Option<u64> {
        let v = &self.vmcb;
        if v.read::<u64>(vmcb::CR0) & CR0_PG != 0 {
            return None;
        }
        Some((v.segment_base(vmcb::CS) + v.read::<u64>(vmcb::RIP)) & 0xffff_ffff)
    }

    fn in_long_mode(&self) -> bool {
        let v = &self.vmcb;
        v.read::<u64>(vmcb::EFER) & efer::LMA != 0 && v.segment_attributes(vmcb::CS) & ATTR_LONG_MODE != 0
    }

    /// Moves RIP past the intercepted instruction: NRIP when the processor saved it for
    /// this intercept (`nrip_valid`), else RIP plus the known `length`.
    fn skip_instruction(&self, length: u64, nrip_valid: bool) {
        let v = &self.vmcb;
        let next: u64 = if nrip_valid && self.caps.nrips { v.read(vmcb::NEXT_RIP) } else { 0 };
        let rip = if next != 0 { next } else { v.read::<u64>(vmcb::RIP).wrapping_add(length) };
        v.write(vmcb::RIP, if self.in_long_mode() { rip } else { rip & 0xffff_ffff });
        v.write(vmcb::INTERRUPT_SHADOW, 0u64);
    }
}
