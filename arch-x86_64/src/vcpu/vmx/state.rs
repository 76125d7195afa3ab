//! The VMX vCPU's architectural state for the common emulation ([`GuestCpu`]): registers
//! in the VMCS (or, for the SYSCALL MSRs and the kernel GS base, in the real registers
//! while the vCPU is loaded), exceptions queued in the VM-entry interruption field.

use super::instructions::vmwrite;
use super::vmcs::{self, Field, Natural};
use super::{field, VmxVcpu};
use crate::regs::{self, efer, msr};
use crate::vcpu::guest::GuestRegisters;
use crate::vcpu::guest_cpu::{GuestCpu, Segment};
use crate::vcpu::msr::StateMsr;
use crate::vcpu::walk::Paging;
use keel_kernel::mm::PhysAddr;

const INTERRUPTION_TYPE_HARDWARE_EXCEPTION: u32 = 3;
const DELIVER_ERROR_CODE: u32 = 1 << 11;
const INTERRUPTION_VALID: u32 = 1 << 31;
/// Blocking by STI and by MOV SS end with the instruction they follow.
const INTERRUPTIBILITY_STI_MOV_SS: u32 = 0b11;
const AR_LONG_MODE: u32 = 1 << 13;
const RFLAGS_IF: u64 = 1 << 9;

/// Writes a guest-state field. A failure would mean no current VMCS: a Keel bug.
pub(super) fn set<F: Field>(f: F, value: F::Value) {
    // SAFETY: guest-state and control fields Keel emulates; the guest stays confined
    // by EPT and the exit controls whatever these values are.
    if let Err(e) = unsafe { vmwrite(f, value) } {
        panic!("VMWRITE {f:?} failed: {e:?}");
    }
}

/// A control register as the guest sees it: host-owned bits from the read shadow.
pub(super) fn visible(real: Natural, mask: Natural, shadow: Natural) -> u64 {
    let m = field(mask);
    (field(real) & !m) | (field(shadow) & m)
}

/// Where the VMCS keeps a state MSR.
enum StateField {
    Wide(vmcs::Field64),
    Natural(Natural),
    /// SYSENTER_CS: 32 bits.
    Narrow(vmcs::Field32),
}

fn state_field(m: StateMsr) -> Option<StateField> {
    Some(match m {
        StateMsr::Efer => StateField::Wide(vmcs::GUEST_IA32_EFER),
        StateMsr::Pat => StateField::Wide(vmcs::GUEST_IA32_PAT),
        StateMsr::FsBase => StateField::Natural(vmcs::GUEST_FS_BASE),
        StateMsr::GsBase => StateField::Natural(vmcs::GUEST_GS_BASE),
        StateMsr::SysenterCs => StateField::Narrow(vmcs::GUEST_SYSENTER_CS),
        StateMsr::SysenterEsp => StateField::Natural(vmcs::GUEST_SYSENTER_ESP),
        StateMsr::SysenterEip => StateField::Natural(vmcs::GUEST_SYSENTER_EIP),
        _ => return None,
    })
}

fn real_msr(m: StateMsr) -> u32 {
    match m {
        StateMsr::KernelGsBase => msr::KERNEL_GS_BASE,
        StateMsr::Star => msr::STAR,
        StateMsr::Lstar => msr::LSTAR,
        StateMsr::Cstar => msr::CSTAR,
        _ => msr::SFMASK,
    }
}

impl GuestCpu for VmxVcpu {
    fn regs(&mut self) -> &mut GuestRegisters {
        &mut self.regs
    }

    fn rip(&self) -> u64 {
        let rip = self.cache.rip.get().unwrap_or_else(|| field(vmcs::GUEST_RIP));
        self.cache.rip.set(Some(rip));
        rip
    }

    fn set_rip(&mut self, rip: u64) {
        let rip = if self.in_64bit_code() { rip } else { rip & 0xffff_ffff };
        set(vmcs::GUEST_RIP, rip);
        self.cache.rip.set(Some(rip));
        let blocking = field(vmcs::GUEST_INTERRUPTIBILITY);
        if blocking & INTERRUPTIBILITY_STI_MOV_SS != 0 {
            set(vmcs::GUEST_INTERRUPTIBILITY, blocking & !INTERRUPTIBILITY_STI_MOV_SS);
        }
    }

    fn rflags(&self) -> u64 {
        field(vmcs::GUEST_RFLAGS)
    }

    fn set_rflags(&mut self, rflags: u64) {
        set(vmcs::GUEST_RFLAGS, rflags);
    }

    fn idtr(&self) -> (u64, u32) {
        (field(vmcs::GUEST_IDTR_BASE), field(vmcs::GUEST_IDTR_LIMIT))
    }

    fn paging(&self) -> Paging {
        Paging {
            cr0: visible(vmcs::GUEST_CR0, vmcs::CR0_GUEST_HOST_MASK, vmcs::CR0_READ_SHADOW),
            cr3: field(vmcs::GUEST_CR3),
            cr4: visible(vmcs::GUEST_CR4, vmcs::CR4_GUEST_HOST_MASK, vmcs::CR4_READ_SHADOW),
            efer: field(vmcs::GUEST_IA32_EFER),
        }
    }

    fn in_64bit_code(&self) -> bool {
        let code64 = self.cache.code64.get().unwrap_or_else(|| {
            field(vmcs::GUEST_IA32_EFER) & efer::LMA != 0 && field(vmcs::GUEST_CS_ACCESS_RIGHTS) & AR_LONG_MODE != 0
        });
        self.cache.code64.set(Some(code64));
        code64
    }

    fn segment_base(&self, seg: Segment) -> u64 {
        vmcs::guest_segment(seg as usize).map_or(0, |s| field(s.base))
    }

    fn inject(&mut self, vector: u8, error: Option<u32>) {
        let mut info = u32::from(vector) | INTERRUPTION_TYPE_HARDWARE_EXCEPTION << 8 | INTERRUPTION_VALID;
        if let Some(code) = error {
            info |= DELIVER_ERROR_CODE;
            set(vmcs::ENTRY_EXCEPTION_ERROR_CODE, code);
        }
        set(vmcs::ENTRY_INTERRUPTION_INFO, info);
        self.cache.queued = true;
    }

    fn read_state_msr(&mut self, m: StateMsr) -> u64 {
        match state_field(m) {
            Some(StateField::Wide(f)) => field(f),
            Some(StateField::Natural(f)) => field(f),
            Some(StateField::Narrow(f)) => u64::from(field(f)),
            // SAFETY: the SYSCALL MSRs exist on every x86_64 CPU; while the vCPU is
            // loaded they hold its values (vcpu::context).
            None => unsafe { regs::rdmsr(real_msr(m)) },
        }
    }

    fn write_state_msr(&mut self, m: StateMsr, value: u64) {
        // EFER.LMA may change what `in_64bit_code` found.
        self.cache.code64.set(None);
        match state_field(m) {
            Some(StateField::Wide(f)) => set(f, value),
            Some(StateField::Natural(f)) => set(f, value),
            // SYSENTER_CS: the MSR's upper half is reserved; the VMCS keeps 32 bits.
            Some(StateField::Narrow(f)) => set(f, (value & 0xffff_ffff) as u32),
            // SAFETY: as in `read_state_msr`; the value was checked (canonical, reserved
            // bits clear) and Keel does not use these MSRs.
            None => unsafe { regs::wrmsr(real_msr(m), value) },
        }
    }

    fn stage2_root(&self) -> PhysAddr {
        self.root
    }

    fn interruptible(&self) -> bool {
        self.rflags() & RFLAGS_IF != 0
            && field(vmcs::GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_STI_MOV_SS == 0
            && !self.event_queued()
    }

    fn event_queued(&self) -> bool {
        self.cache.queued
    }

    fn inject_interrupt(&mut self, vector: u8) {
        set(vmcs::ENTRY_INTERRUPTION_INFO, u32::from(vector) | INTERRUPTION_VALID);
        self.cache.queued = true;
    }

    fn interrupt_window(&mut self, on: bool) {
        if self.window == on {
            return;
        }
        self.window = on;
        let bit = vmcs::primary::INTERRUPT_WINDOW_EXITING;
        let controls = field(vmcs::PRIMARY_CONTROLS);
        set(vmcs::PRIMARY_CONTROLS, if on { controls | bit } else { controls & !bit });
    }

    fn cr8(&self) -> Option<u8> {
        None
    }

    fn set_cr8(&mut self, _cr8: u8) {}
}
