//! The SVM vCPU's architectural state for the common emulation ([`GuestCpu`]): all of it
//! in the VMCB (VMLOAD/VMSAVE switch the SYSCALL MSRs and the kernel GS base with it),
//! exceptions queued in its event-injection field.

use super::vmcb::{self, Vmcb};
use super::SvmVcpu;
use crate::regs::efer;
use crate::vcpu::guest::GuestRegisters;
use crate::vcpu::guest_cpu::{GuestCpu, Segment};
use crate::vcpu::msr::StateMsr;
use crate::vcpu::walk::Paging;
use keel_kernel::mm::PhysAddr;

const EVENT_TYPE_EXCEPTION: u64 = 3 << 8;
const EVENT_ERROR_VALID: u64 = 1 << 11;
const EVENT_VALID: u64 = 1 << 31;
const ATTR_LONG_MODE: u16 = 1 << 9;
const RFLAGS_IF: u64 = 1 << 9;
const CR0_PG: u64 = 1 << 31;
/// VIRTUAL_INTERRUPT: V_TPR (3:0), V_IRQ (8), V_INTR_PRIO (19:16), V_IGN_TPR (20).
const V_TPR: u64 = 0xf;
const V_IRQ: u64 = 1 << 8;
const V_INTR_PRIO_IGN_TPR: u64 = 0xf << 16 | 1 << 20;

fn state_offset(m: StateMsr) -> usize {
    match m {
        StateMsr::Efer => vmcb::EFER,
        StateMsr::Pat => vmcb::G_PAT,
        StateMsr::FsBase => vmcb::FS + 8,
        StateMsr::GsBase => vmcb::GS + 8,
        StateMsr::KernelGsBase => vmcb::KERNEL_GS_BASE,
        StateMsr::Star => vmcb::STAR,
        StateMsr::Lstar => vmcb::LSTAR,
        StateMsr::Cstar => vmcb::CSTAR,
        StateMsr::Sfmask => vmcb::SFMASK,
        StateMsr::SysenterCs => vmcb::SYSENTER_CS,
        StateMsr::SysenterEsp => vmcb::SYSENTER_ESP,
        StateMsr::SysenterEip => vmcb::SYSENTER_EIP,
    }
}

fn segment(seg: Segment) -> usize {
    vmcb::ES + 16 * seg as usize
}

impl SvmVcpu {
    pub(super) fn vmcb(&self) -> &Vmcb {
        &self.vmcb
    }

    /// The guest's EFER, with LMA as the processor has it: set whenever LME and CR0.PG
    /// are (Bochs 2.7 leaves it clear in the VMCB at a CR0-write intercept from
    /// compatibility mode).
    #[inline]
    pub(super) fn guest_efer(&self) -> u64 {
        let efer: u64 = self.vmcb.read(vmcb::EFER);
        let paging = self.vmcb.read::<u64>(vmcb::CR0) & CR0_PG != 0;
        if paging && efer & efer::LME != 0 {
            efer | efer::LMA
        } else {
            efer
        }
    }
}

impl GuestCpu for SvmVcpu {
    fn regs(&mut self) -> &mut GuestRegisters {
        &mut self.regs
    }

    fn rip(&self) -> u64 {
        self.vmcb.read(vmcb::RIP)
    }

    fn set_rip(&mut self, rip: u64) {
        let rip = if self.in_64bit_code() { rip } else { rip & 0xffff_ffff };
        self.vmcb.write(vmcb::RIP, rip);
        self.vmcb.write(vmcb::INTERRUPT_SHADOW, 0u64);
    }

    fn rflags(&self) -> u64 {
        self.vmcb.read(vmcb::RFLAGS)
    }

    fn set_rflags(&mut self, rflags: u64) {
        self.vmcb.write(vmcb::RFLAGS, rflags);
    }

    fn idtr(&self) -> (u64, u32) {
        (self.vmcb.segment_base(vmcb::IDTR), self.vmcb.read(vmcb::IDTR + 4))
    }

    fn paging(&self) -> Paging {
        let v = &self.vmcb;
        Paging { cr0: v.read(vmcb::CR0), cr3: v.read(vmcb::CR3), cr4: v.read(vmcb::CR4), efer: self.guest_efer() }
    }

    #[inline]
    fn in_64bit_code(&self) -> bool {
        let code64 = self.code64.get().unwrap_or_else(|| {
            self.guest_efer() & efer::LMA != 0 && self.vmcb.segment_attributes(vmcb::CS) & ATTR_LONG_MODE != 0
        });
        self.code64.set(Some(code64));
        code64
    }

    fn segment_base(&self, seg: Segment) -> u64 {
        self.vmcb.segment_base(segment(seg))
    }

    fn inject(&mut self, vector: u8, error: Option<u32>) {
        let mut event = vector as u64 | EVENT_TYPE_EXCEPTION | EVENT_VALID;
        if let Some(code) = error {
            event |= EVENT_ERROR_VALID | (code as u64) << 32;
        }
        self.vmcb.write(vmcb::EVENT_INJECTION, event);
    }

    fn read_state_msr(&mut self, m: StateMsr) -> u64 {
        if m == StateMsr::Efer {
            return self.guest_efer();
        }
        self.vmcb.read(state_offset(m))
    }

    fn write_state_msr(&mut self, m: StateMsr, value: u64) {
        // VMRUN requires EFER.SVME in the guest state; the guest never sees it.
        let value = if m == StateMsr::Efer { value | efer::SVME } else { value };
        self.code64.set(None);
        self.vmcb.write(state_offset(m), value);
    }

    fn stage2_root(&self) -> PhysAddr {
        self.root
    }

    fn interruptible(&self) -> bool {
        self.rflags() & RFLAGS_IF != 0 && self.vmcb.read::<u64>(vmcb::INTERRUPT_SHADOW) & 1 == 0 && !self.event_queued()
    }

    fn event_queued(&self) -> bool {
        self.vmcb.read::<u64>(vmcb::EVENT_INJECTION) & EVENT_VALID != 0
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.vmcb.write(vmcb::EVENT_INJECTION, vector as u64 | EVENT_VALID);
    }

    /// A virtual interrupt request (V_IRQ, ignoring V_TPR) with the VINTR intercept: the
    /// guest exits as soon as it could take it.
    fn interrupt_window(&mut self, on: bool) {
        let v = &self.vmcb;
        let virt: u64 = v.read(vmcb::VIRTUAL_INTERRUPT);
        let misc: u32 = v.read(vmcb::INTERCEPT_MISC1);
        if on {
            v.write(vmcb::VIRTUAL_INTERRUPT, virt | V_IRQ | V_INTR_PRIO_IGN_TPR);
            v.write(vmcb::INTERCEPT_MISC1, misc | vmcb::misc1::VINTR);
        } else if virt & V_IRQ != 0 {
            v.write(vmcb::VIRTUAL_INTERRUPT, virt & !(V_IRQ | V_INTR_PRIO_IGN_TPR));
            v.write(vmcb::INTERCEPT_MISC1, misc & !vmcb::misc1::VINTR);
        }
    }

    fn cr8(&self) -> Option<u8> {
        Some((self.vmcb.read::<u64>(vmcb::VIRTUAL_INTERRUPT) & V_TPR) as u8)
    }

    fn set_cr8(&mut self, cr8: u8) {
        let virt: u64 = self.vmcb.read(vmcb::VIRTUAL_INTERRUPT);
        self.vmcb.write(vmcb::VIRTUAL_INTERRUPT, (virt & !V_TPR) | (cr8 as u64 & V_TPR));
    }
}
