//! Building a VMCS: the execution controls that confine the guest, this CPU's host
//! state, and the vCPU's first state ([`StartState`]).

use super::instructions::{vmwrite, VmxFail};
use super::vmcs::{self, *};
use super::{field, tss_base, VmxVcpu, CR0_ET, CR0_PE, CR0_PG, DR7_INIT};
use crate::regs::{self, efer, msr};
use crate::vcpu::cpuid::cr4_allowed;
use crate::vcpu::guest;
use crate::vcpu::start::StartState;

/// Pause-loop exiting (KVM's defaults): PAUSEs at most this many cycles apart form a
/// loop, and a loop that lasts the window exits.
const PLE_GAP_CYCLES: u32 = 128;
const PLE_WINDOW_CYCLES: u32 = 4096;

impl VmxVcpu {
    pub(super) fn write_controls(&self) -> Result<(), VmxFail> {
        let c = self.caps;
        // The preemption timer ends the guest's run at this CPU's timer deadline even if
        // the emulator never turns the timer's interrupt into an exit (Bochs).
        let preempt = if c.preemption_timer_rate.is_some() { pin::PREEMPTION_TIMER } else { 0 };
        let pin = c.pin.adjust(pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING | preempt);
        // No MSR bitmaps: every RDMSR/WRMSR exits. No CR3 or INVLPG exiting (EPT).
        let primary = c.primary.adjust(
            primary::HLT_EXITING
                | primary::MWAIT_EXITING
                | primary::RDPMC_EXITING
                | primary::CR8_LOAD_EXITING
                | primary::CR8_STORE_EXITING
                | primary::UNCONDITIONAL_IO_EXITING
                | primary::MONITOR_EXITING
                | primary::SECONDARY_CONTROLS,
        );
        let vpid = if self.vpid != 0 { secondary::ENABLE_VPID } else { 0 };
        // PAUSE exits only for spin loops (PLE), as on SVM's pause filter; never for each.
        let ple = if c.pause_loop_exiting() { secondary::PAUSE_LOOP_EXITING } else { 0 };
        let secondary = c.secondary.adjust(secondary::ENABLE_EPT | secondary::UNRESTRICTED_GUEST | vpid | ple);
        let exit = c.exit.adjust(
            vmcs::exit::HOST_ADDRESS_SPACE_SIZE
                | vmcs::exit::SAVE_IA32_EFER
                | vmcs::exit::LOAD_IA32_EFER
                | vmcs::exit::SAVE_IA32_PAT
                | vmcs::exit::LOAD_IA32_PAT,
        );
        let entry = c.entry.adjust(entry::LOAD_IA32_EFER | entry::LOAD_IA32_PAT) & !entry::IA32E_MODE_GUEST;
        let needed = [
            (pin & pin::EXTERNAL_INTERRUPT_EXITING != 0, "external-interrupt exiting"),
            (primary & primary::HLT_EXITING != 0, "HLT exiting"),
            (primary & primary::UNCONDITIONAL_IO_EXITING != 0, "unconditional I/O exiting"),
            (c.primary.allows(primary::INTERRUPT_WINDOW_EXITING), "interrupt-window exiting"),
            (
                primary & (primary::CR8_LOAD_EXITING | primary::CR8_STORE_EXITING)
                    == primary::CR8_LOAD_EXITING | primary::CR8_STORE_EXITING,
                "CR8 exiting (the guest's CR8 must not reach the host's TPR)",
            ),
            (
                exit & vmcs::exit::LOAD_IA32_EFER != 0 && entry & entry::LOAD_IA32_EFER != 0,
                "EFER load on entry and exit",
            ),
            (exit & vmcs::exit::HOST_ADDRESS_SPACE_SIZE != 0, "64-bit host on exit"),
        ];
        if let Some((_, what)) = needed.iter().find(|(ok, _)| !ok) {
            log::error!("VMX lacks a control Keel needs: {what}");
            return Err(VmxFail::Invalid);
        }
        // SAFETY: controls that confine the guest (every I/O, MSR, HLT and interrupt exits;
        // memory through EPT); all values adjusted to what the processor allows.
        unsafe {
            vmwrite(PIN_BASED_CONTROLS, pin)?;
            vmwrite(PRIMARY_CONTROLS, primary)?;
            vmwrite(SECONDARY_CONTROLS, secondary)?;
            vmwrite(EXIT_CONTROLS, exit)?;
            vmwrite(ENTRY_CONTROLS, entry)?;
            vmwrite(EXCEPTION_BITMAP, 1 << super::exit::UD_VECTOR)?;
            vmwrite(CR3_TARGET_COUNT, 0)?;
            vmwrite(EXIT_MSR_STORE_COUNT, 0)?;
            vmwrite(EXIT_MSR_LOAD_COUNT, 0)?;
            vmwrite(ENTRY_MSR_LOAD_COUNT, 0)?;
            vmwrite(ENTRY_INTERRUPTION_INFO, 0)?;
            vmwrite(EPT_POINTER, self.eptp)?;
            if self.vpid != 0 {
                vmwrite(VPID, self.vpid)?;
            }
            if secondary & secondary::PAUSE_LOOP_EXITING != 0 {
                vmwrite(PLE_GAP, PLE_GAP_CYCLES)?;
                vmwrite(PLE_WINDOW, PLE_WINDOW_CYCLES)?;
            }
        }
        Ok(())
    }

    /// The state the CPU returns to on a VM exit: this CPU's, right now.
    pub(super) fn write_host_state(&self) -> Result<(), VmxFail> {
        let gdt = x86_64::instructions::tables::sgdt();
        let idt = x86_64::instructions::tables::sidt();
        let tss_base = tss_base(gdt.base.as_u64());
        // SAFETY: all values describe this CPU's actual execution environment (the vCPU
        // only runs here); HOST_RSP/RIP are written by the entry code.
        unsafe {
            vmwrite(HOST_CR0, regs::read_cr0())?;
            vmwrite(HOST_CR3, regs::read_cr3())?;
            vmwrite(HOST_CR4, regs::read_cr4())?;
            vmwrite(HOST_CS_SELECTOR, crate::gdt::CODE_SELECTOR)?;
            for f in [HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_ES_SELECTOR] {
                vmwrite(f, crate::gdt::DATA_SELECTOR)?;
            }
            vmwrite(HOST_FS_SELECTOR, 0)?;
            vmwrite(HOST_GS_SELECTOR, 0)?;
            vmwrite(HOST_TR_SELECTOR, crate::gdt::TSS_SELECTOR)?;
            vmwrite(HOST_FS_BASE, 0)?;
            vmwrite(HOST_GS_BASE, regs::rdmsr(msr::IA32_GS_BASE))?;
            vmwrite(HOST_TR_BASE, tss_base)?;
            vmwrite(HOST_GDTR_BASE, gdt.base.as_u64())?;
            vmwrite(HOST_IDTR_BASE, idt.base.as_u64())?;
            vmwrite(HOST_SYSENTER_CS, 0)?;
            vmwrite(HOST_SYSENTER_ESP, 0)?;
            vmwrite(HOST_SYSENTER_EIP, 0)?;
            vmwrite(HOST_IA32_PAT, regs::rdmsr(msr::IA32_PAT))?;
            vmwrite(HOST_IA32_EFER, regs::read_efer())?;
            vmwrite(HOST_RIP, super::instructions::exit_address())?;
        }
        Ok(())
    }

    /// The vCPU's first state (`StartState`: PVH entry, SIPI, or `VCPUOP_initialise`).
    pub(super) fn write_guest_state(&self, s: &StartState) -> Result<(), VmxFail> {
        let c = self.caps;
        // The host owns the CR0 bits VMX fixes (NE), and CR4's fixed bits and those of
        // features the guest is not shown.
        let cr0_mask = c.fixed_cr0(0, true) & !(CR0_PE | CR0_ET | CR0_PG);
        let cr4_mask = c.fixed_cr4(0) | !cr4_allowed(&crate::regs::cpuid);
        let mut entry = field(ENTRY_CONTROLS) & !entry::IA32E_MODE_GUEST;
        if s.efer & efer::LMA != 0 {
            entry |= entry::IA32E_MODE_GUEST;
        }
        // SAFETY: guest state only; the guest is confined by EPT and the exit controls.
        unsafe {
            vmwrite(ENTRY_CONTROLS, entry)?;
            vmwrite(GUEST_CR0, c.fixed_cr0(s.cr0, true))?;
            vmwrite(CR0_GUEST_HOST_MASK, cr0_mask)?;
            vmwrite(CR0_READ_SHADOW, s.cr0)?;
            vmwrite(GUEST_CR3, s.cr3)?;
            vmwrite(GUEST_CR4, c.fixed_cr4(s.cr4))?;
            vmwrite(CR4_GUEST_HOST_MASK, cr4_mask)?;
            vmwrite(CR4_READ_SHADOW, s.cr4)?;
            let all = s.segments.iter().chain([&s.ldtr, &s.tr]);
            for (i, seg) in all.enumerate() {
                let f = vmcs::guest_segment(i).ok_or(VmxFail::Invalid)?;
                vmwrite(f.selector, seg.selector)?;
                vmwrite(f.base, seg.base)?;
                vmwrite(f.limit, seg.limit)?;
                vmwrite(f.access_rights, seg.vmx_access_rights())?;
            }
            vmwrite(GUEST_GDTR_BASE, s.gdtr.0)?;
            vmwrite(GUEST_GDTR_LIMIT, s.gdtr.1)?;
            vmwrite(GUEST_IDTR_BASE, s.idtr.0)?;
            vmwrite(GUEST_IDTR_LIMIT, s.idtr.1)?;
            vmwrite(GUEST_DR7, DR7_INIT)?;
            vmwrite(GUEST_RSP, s.gpr[guest::gpr::RSP])?;
            vmwrite(GUEST_RIP, s.rip)?;
            vmwrite(GUEST_RFLAGS, s.rflags)?;
            vmwrite(GUEST_PENDING_DEBUG, 0)?;
            vmwrite(GUEST_INTERRUPTIBILITY, 0)?;
            vmwrite(GUEST_ACTIVITY_STATE, 0)?;
            vmwrite(GUEST_SYSENTER_CS, 0)?;
            vmwrite(GUEST_SYSENTER_ESP, 0)?;
            vmwrite(GUEST_SYSENTER_EIP, 0)?;
            vmwrite(GUEST_IA32_DEBUGCTL, 0)?;
            vmwrite(GUEST_IA32_PAT, regs::PAT_DEFAULT)?;
            vmwrite(GUEST_IA32_EFER, s.efer)?;
            vmwrite(VMCS_LINK_POINTER, u64::MAX)?;
        }
        Ok(())
    }
}
