//! Decoding #VMEXIT codes (AMD APM vol. 2, 15.6 and appendix C): what the core must see
//! becomes a portable [`VmExit`]; CPUID, MSR and port accesses go to the common
//! emulation; instructions the guest is not offered get #UD (or #GP). Without NRIP save
//! (QEMU), the next RIP is the intercepted instruction's address plus its length, which
//! Keel knows for every instruction it completes (IN/OUT report it in EXITINFO2).

use super::shutdown::ExitCode;
use super::vmcb::{self, exit_code};
use super::SvmVcpu;
use crate::vcpu::emulate::{self, Intercept, Io};
use crate::vcpu::guest_cpu::{GuestCpu, Segment, GP, UD};
use crate::vcpu::task_switch::Delivering;
use crate::vcpu::{interrupts, Common};
use keel_kernel::arch::{MemoryAccess, VmExit};

/// #UD: intercepted so that `vmcall` (Intel's hypercall) works on AMD too.
pub const UD_VECTOR: u32 = 6;
const LEN_HLT: u64 = 1;
const LEN_PAUSE: u64 = 2;
const LEN_HYPERCALL: u64 = 3;
/// CPUID, RDMSR, WRMSR, INVD, WBINVD.
const LEN_TWO_BYTE: u64 = 2;
/// NPF EXITINFO1: the access was a write, an instruction fetch.
const NPF_WRITE: u64 = 1 << 1;
const NPF_FETCH: u64 = 1 << 4;

impl SvmVcpu {
    /// The RIP after the intercepted instruction: NRIP when the processor saved it,
    /// else RIP plus the known `length`.
    pub(super) fn next_rip(&self, length: u64) -> u64 {
        let v = self.vmcb();
        let next: u64 = if self.caps.nrips { v.read(vmcb::NEXT_RIP) } else { 0 };
        if next != 0 {
            next
        } else {
            v.read::<u64>(vmcb::RIP).wrapping_add(length)
        }
    }

    /// Handles the #VMEXIT that just happened: `Some` for the core, `None` to re-enter.
    pub(super) fn handle_exit(&mut self, common: &mut Common) -> Option<VmExit> {
        // Nothing stays queued from the last entry, except an event whose delivery the
        // exit interrupted, which is queued again (APM 15.7.2).
        let interrupted: u64 = self.vmcb().read(vmcb::EXIT_INT_INFO);
        let again = if interrupted & (1 << 31) != 0 { interrupted } else { 0 };
        self.vmcb().write(vmcb::EVENT_INJECTION, again);
        let code: u64 = self.vmcb().read(vmcb::EXIT_CODE);
        let previous = core::mem::replace(&mut self.last_exit, code);
        let info1: u64 = self.vmcb().read(vmcb::EXIT_INFO1);
        let info2: u64 = self.vmcb().read(vmcb::EXIT_INFO2);
        let mut emulate = |v: &mut Self, what, next| {
            emulate::handle(v, common, what, next);
            None
        };
        match code {
            exit_code::VMMCALL => {
                self.long_mode = self.in_64bit_code();
                let next = self.next_rip(LEN_HYPERCALL);
                self.set_rip(next);
                Some(VmExit::Hypercall)
            }
            exit_code::HLT => {
                let next = self.next_rip(LEN_HLT);
                self.set_rip(next);
                interrupts::halt(self, common)
            }
            exit_code::VINTR => {
                self.interrupt_window(false);
                None
            }
            exit_code::PAUSE => {
                let next = self.next_rip(LEN_PAUSE);
                self.set_rip(next);
                Some(VmExit::Yield)
            }
            exit_code::CPUID => {
                let next = self.next_rip(LEN_TWO_BYTE);
                emulate(self, Intercept::Cpuid, next)
            }
            exit_code::MSR => {
                let next = self.next_rip(LEN_TWO_BYTE);
                let what = if info1 & 1 != 0 { Intercept::Wrmsr } else { Intercept::Rdmsr };
                emulate(self, what, next)
            }
            // EXITINFO2 holds the next RIP for IN/OUT, with or without NRIP save.
            exit_code::IOIO => emulate(self, Intercept::Io(io(info1)), info2),
            exit_code::INVD | exit_code::WBINVD => {
                let next = self.next_rip(LEN_TWO_BYTE); // the guest's memory is always coherent
                self.set_rip(next);
                None
            }
            exit_code::RDPMC => {
                self.inject(GP, Some(0)); // no performance counters are offered
                None
            }
            exit_code::VMRUN
            | exit_code::VMLOAD..=exit_code::RDTSCP
            | exit_code::INVLPGA
            | exit_code::MONITOR..=exit_code::XSETBV => {
                self.inject(UD, None); // features the guest is not shown
                None
            }
            exit_code::NPF => {
                let access = if info1 & NPF_FETCH != 0 {
                    MemoryAccess::Execute
                } else if info1 & NPF_WRITE != 0 {
                    MemoryAccess::Write
                } else {
                    MemoryAccess::Read
                };
                emulate::stage_fault(self, common, info2, access, again != 0)
            }
            exit_code::INTR | exit_code::NMI => Some(VmExit::Interrupt),
            exit_code::CR0_WRITE => self.cr_write(0, info1),
            exit_code::CR4_WRITE => self.cr_write(4, info1),
            exit_code::TASK_SWITCH => {
                let delivering =
                    (again != 0).then_some(Delivering { vector: again as u8, kind: ((again >> 8) & 7) as u8 });
                emulate::refuse_task_switch(self, info1 as u16, delivering)
            }
            exit_code::SHUTDOWN => {
                emulate::report_triple_fault(self);
                self.report_shutdown(common.domain.init().id, common.vcpu_id, ExitCode(previous));
                Some(VmExit::GuestCrash)
            }
            exit_code::EXCEPTION_UD => {
                if emulate::at_hypercall(self) {
                    self.long_mode = self.in_64bit_code();
                    let rip = self.rip().wrapping_add(LEN_HYPERCALL);
                    self.set_rip(rip);
                    return Some(VmExit::Hypercall);
                }
                self.inject(UD, None);
                None
            }
            exit_code::INVALID => {
                log::error!("VMRUN refused the guest state (#VMEXIT invalid), RIP {:#x}", self.rip());
                Some(VmExit::GuestCrash)
            }
            other => {
                log::warn!("unhandled #VMEXIT {other:#x} (info {info1:#x}, {info2:#x}) at RIP {:#x}", self.rip());
                Some(VmExit::GuestCrash)
            }
        }
    }
}

/// An IOIO exit's EXITINFO1 (APM vol. 2, figure 15-2). The segment of OUTS is taken as
/// DS (the field naming an override needs decode assists, which QEMU lacks).
fn io(info: u64) -> Io {
    let size = if info & (1 << 4) != 0 {
        1
    } else if info & (1 << 5) != 0 {
        2
    } else {
        4
    };
    let address_size = if info & (1 << 7) != 0 {
        2
    } else if info & (1 << 8) != 0 {
        4
    } else {
        8
    };
    Io {
        port: (info >> 16) as u16,
        size,
        input: info & 1 != 0,
        string: info & (1 << 2) != 0,
        rep: info & (1 << 3) != 0,
        address_size,
        segment: Segment::Ds,
    }
}
