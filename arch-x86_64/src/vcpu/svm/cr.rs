//! Control-register writes SVM intercepts: every write of CR0 (MOV, CLTS, LMSW) and of
//! CR4 (MOV), so that they follow Xen 4.17's rules and the domain's CPUID policy: the
//! processor would take a CR4 bit it has itself (UMIP, say) although Keel hides it,
//! and an emulator may take what a processor refuses (QEMU's TCG accepts CR0 bits
//! 63:32). EFER goes through the MSR intercept. Without decode assists (QEMU) the
//! instruction, its source register and its length come from its bytes.

use super::vmcb;
use super::{SvmVcpu, TLB_FLUSH_ALL, TLB_FLUSH_ASID};
use crate::regs::efer;
use crate::vcpu::control::{decode_cr_write, Cr0Write, Cr4Write, CrWriteInsn, CR0_TS};
use crate::vcpu::cpuid::cr4_allowed;
use crate::vcpu::guest::gpr;
use crate::vcpu::guest_cpu::{read_virt, GuestCpu, Segment, GP, UD};
use crate::vcpu::walk::Access;
use keel_kernel::arch::VmExit;

/// [`vmcb::INTERCEPT_CR`]: writes of CR0 and CR4.
pub const INTERCEPT_CR_WRITES: u32 = 1 << 16 | 1 << (16 + 4);
/// EXITINFO1 of a CR intercept with decode assists: the instruction was a MOV, its
/// register in bits 3:0.
const INFO_MOV: u64 = 1 << 63;

impl SvmVcpu {
    fn gpr_value(&self, n: usize, in_64bit_code: bool) -> u64 {
        let raw = if n == gpr::RSP { self.vmcb().read(vmcb::RSP) } else { self.regs.gpr[n & 15] };
        if in_64bit_code {
            raw
        } else {
            raw & 0xffff_ffff
        }
    }

    /// Emulates the write of CR`cr` (0 or 4) that exited (`info1`: its EXITINFO1):
    /// checks it (#GP if refused), stores it, flushes the guest's TLB and moves past it.
    /// An instruction that no longer decodes as the write (its bytes changed) runs
    /// again, after the core had its say (`Yield`), so that no loop of exits can keep
    /// the CPU from the core.
    pub(super) fn cr_write(&mut self, cr: u8, info1: u64) -> Option<VmExit> {
        let in_64bit_code = self.in_64bit_code();
        let mut linear = self.segment_base(Segment::Cs).wrapping_add(self.rip());
        if !in_64bit_code {
            linear &= 0xffff_ffff;
        }
        let mut bytes = [0u8; 15];
        let decoded = read_virt(self, linear, Access::Fetch, &mut bytes)
            .then(|| decode_cr_write(&bytes, in_64bit_code))
            .flatten();
        let assisted = self.caps.decode_assists && self.caps.nrips && info1 & INFO_MOV != 0;
        let (insn, length) = match decoded {
            // The register field is 4 bits wide.
            _ if assisted => (CrWriteInsn::Mov { cr, gpr: (info1 & 0xf) as usize }, 0),
            Some(d) => (d.insn, u64::from(d.len)),
            // The bytes changed under the processor (another vCPU): run it again.
            None => return Some(VmExit::Yield),
        };
        let v = self.vmcb();
        let (old0, cr4, guest_efer) = (v.read::<u64>(vmcb::CR0), v.read::<u64>(vmcb::CR4), self.guest_efer());
        let done = match (cr, insn) {
            (4, CrWriteInsn::Mov { cr: 4, gpr }) => {
                let write = Cr4Write {
                    value: self.gpr_value(gpr, in_64bit_code),
                    old: cr4,
                    allowed: cr4_allowed(&crate::regs::cpuid),
                    long_mode: guest_efer & efer::LMA != 0,
                    cr3: self.vmcb().read(vmcb::CR3),
                };
                write.valid().then(|| self.vmcb().write(vmcb::CR4, write.value))
            }
            (0, CrWriteInsn::Mov { cr: 0, gpr }) => self.write_cr0(self.gpr_value(gpr, in_64bit_code), in_64bit_code),
            (0, CrWriteInsn::Clts) => self.write_cr0(old0 & !CR0_TS, in_64bit_code),
            // LMSW writes PE (which it cannot clear), MP, EM and TS.
            (0, CrWriteInsn::LmswRegister { gpr }) => {
                let source = self.gpr_value(gpr, in_64bit_code) & 0xf;
                self.write_cr0((old0 & !0xe) | source, in_64bit_code)
            }
            (0, CrWriteInsn::LmswMemory) => {
                log::warn!("LMSW from memory at RIP {:#x}: not emulated, #UD", self.rip());
                self.inject(UD, None);
                return None;
            }
            // Not the instruction that exited: the bytes changed; run it again.
            _ => return Some(VmExit::Yield),
        };
        if done.is_none() {
            self.inject(GP, Some(0));
            return None;
        }
        let flush = if self.caps.flush_by_asid { TLB_FLUSH_ASID } else { TLB_FLUSH_ALL };
        self.vmcb().write(vmcb::TLB_CONTROL, flush);
        let next = self.next_rip(length);
        self.set_rip(next);
        None
    }

    /// Stores a CR0 value [`Cr0Write`] accepts, with the EFER.LMA it implies.
    fn write_cr0(&mut self, value: u64, in_64bit_code: bool) -> Option<()> {
        let v = self.vmcb();
        let write =
            Cr0Write { value, old: v.read(vmcb::CR0), cr4: v.read(vmcb::CR4), efer: v.read(vmcb::EFER), in_64bit_code };
        let (cr0, new_efer) = write.apply()?;
        v.write(vmcb::CR0, cr0);
        v.write(vmcb::EFER, new_efer | efer::SVME);
        self.code64.set(None);
        Some(())
    }
}
