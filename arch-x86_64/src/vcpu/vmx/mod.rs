//! Intel VT-x: a virtual CPU is a VMCS with EPT, VPID and unrestricted guest, started in
//! 32-bit protected mode with paging off (the Xen PVH entry state).
//!
//! A VMCS may be active on one CPU only. [`VmxVcpu::new`] leaves it clear (inactive);
//! [`VmxVcpu::load`] makes it current on the calling CPU (`VMPTRLD`, and this CPU's host
//! state if it last ran elsewhere) and [`VmxVcpu::put`] clears it again (`VMCLEAR`,
//! after which the next entry is a `VMLAUNCH`), so the vCPU can move between CPUs.

pub mod capabilities;
mod exit;
pub mod instructions;
pub mod vmcs;

use super::guest::{self, GuestRegisters};
use crate::cpu;
use crate::regs::{self, msr};
use capabilities::Capabilities;
use instructions::{vmread, vmwrite, VmxFail};
use keel_kernel::arch::{HypercallArgs, VcpuError, VcpuInit, VmExit};
use keel_kernel::mm::{PhysAddr, PAGE_SIZE};
use keel_kernel::start::FRAME_POOL;
use vmcs::*;

/// EPTP: write-back paging structures, 4-level walk (SDM 25.6.11).
const EPTP_WB_4_LEVEL: u64 = 6 | (3 << 3);
const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const RFLAGS_RESERVED: u64 = 1 << 1;
const DR7_INIT: u64 = 0x400;
/// Access rights: 32-bit code (execute/read, accessed), data (read/write, accessed),
/// busy 32-bit TSS, and "unusable" for the LDTR.
const AR_CODE32: u64 = 0xc09b;
const AR_DATA32: u64 = 0xc093;
const AR_TSS32_BUSY: u64 = 0x008b;
const AR_UNUSABLE: u64 = 1 << 16;

/// A virtual CPU on VMX.
pub struct VmxVcpu {
    caps: &'static Capabilities,
    vmcs: PhysAddr,
    regs: GuestRegisters,
    root: PhysAddr,
    eptp: u64,
    /// 0 when VPID is off for this vCPU.
    vpid: u16,
    /// The CPU the VMCS is active (current) on.
    loaded_on: Option<u32>,
    /// The CPU whose host state the VMCS holds.
    host_cpu: Option<u32>,
    /// `load` failed: the next `run` reports a crash.
    load_failed: bool,
    launched: bool,
    long_mode: bool,
    stage2_generation: u64,
}

impl VmxVcpu {
    pub fn new(caps: &'static Capabilities, init: &VcpuInit) -> Result<VmxVcpu, VcpuError> {
        if !caps.unrestricted_guest() {
            log::error!("VMX without unrestricted guest cannot run the 32-bit paging-off entry state");
            return Err(VcpuError::NoVirtualization);
        }
        let vmcs = FRAME_POOL.alloc(1).ok_or(VcpuError::NoMemory)?;
        // SAFETY: a fresh frame from the pool, identity-mapped, owned by this vCPU.
        unsafe {
            core::ptr::write_bytes(vmcs.0 as usize as *mut u8, 0, PAGE_SIZE as usize);
            core::ptr::write_volatile(vmcs.0 as usize as *mut u32, caps.revision);
        }
        let mut regs = GuestRegisters::default();
        regs.gpr[guest::gpr::RBX] = init.arg;
        let vcpu = VmxVcpu {
            caps,
            vmcs,
            regs,
            root: init.stage2_root,
            eptp: init.stage2_root.0 | EPTP_WB_4_LEVEL,
            vpid: if caps.vpid() { init.space.0 } else { 0 },
            loaded_on: None,
            host_cpu: None,
            load_failed: false,
            launched: false,
            long_mode: false,
            stage2_generation: u64::MAX,
        };
        // SAFETY: the VMCS region is ours and carries the revision id; this CPU is in VMX
        // operation (the caller enabled it).
        let loaded = unsafe { instructions::vmclear(vmcs.0).and_then(|()| instructions::vmptrld(vmcs.0)) };
        let built = loaded
            .and_then(|()| vcpu.write_controls())
            .map_err(|e| log::error!("VMCS set-up failed: {e:?}"))
            .and_then(|()| vcpu.write_guest_state(init).map_err(|e| log::error!("VMCS guest state: {e:?}")));
        // SAFETY: our VMCS on this CPU; clearing it writes its state back to memory and
        // leaves it inactive, so that any CPU may load it.
        let cleared = unsafe { instructions::vmclear(vmcs.0) };
        match (built, cleared) {
            (Ok(()), Ok(())) => Ok(vcpu),
            (_, Err(e)) => {
                log::error!("VMCLEAR of a new VMCS failed ({e:?}): VMCS leaked");
                core::mem::forget(vcpu);
                Err(VcpuError::NoVirtualization)
            }
            (Err(()), Ok(())) => Err(VcpuError::NoVirtualization),
        }
    }

    /// Makes the VMCS current on the calling CPU, with this CPU's host state.
    pub fn load(&mut self) {
        let here = cpu::current_index();
        debug_assert_eq!(self.loaded_on, None, "VMCS loaded twice");
        // SAFETY: our VMCS, clear (inactive) since `new` or the last `put`; this CPU is in
        // VMX operation (the caller enabled it).
        if let Err(e) = unsafe { instructions::vmptrld(self.vmcs.0) } {
            log::error!("VMPTRLD failed: {e:?}");
            self.load_failed = true;
            return;
        }
        self.loaded_on = Some(here);
        if self.host_cpu != Some(here) {
            if let Err(e) = self.write_host_state() {
                log::error!("VMCS host state: {e:?}");
                self.load_failed = true;
                return;
            }
            self.host_cpu = Some(here);
            // This CPU may cache translations of this EPTP/VPID from an earlier stay.
            self.stage2_generation = u64::MAX;
        }
        self.load_failed = false;
    }

    /// Clears the VMCS from the calling CPU, so that another CPU may load it.
    pub fn put(&mut self) {
        if self.loaded_on.take().is_none() {
            return;
        }
        // SAFETY: our VMCS, current on this CPU; afterwards the CPU no longer references it.
        if let Err(e) = unsafe { instructions::vmclear(self.vmcs.0) } {
            log::error!("VMCLEAR failed: {e:?}");
        }
        self.launched = false;
    }

    fn write_controls(&self) -> Result<(), VmxFail> {
        let c = self.caps;
        let pin = c.pin.adjust(pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING);
        // No MSR bitmaps: every RDMSR/WRMSR exits. No CR3 or INVLPG exiting (EPT).
        let primary = c.primary.adjust(
            primary::HLT_EXITING
                | primary::UNCONDITIONAL_IO_EXITING
                | primary::PAUSE_EXITING
                | primary::SECONDARY_CONTROLS,
        );
        let vpid = if self.vpid != 0 { secondary::ENABLE_VPID } else { 0 };
        let secondary = c.secondary.adjust(secondary::ENABLE_EPT | secondary::UNRESTRICTED_GUEST | vpid);
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
            vmwrite(PIN_BASED_CONTROLS, pin as u64)?;
            vmwrite(PRIMARY_CONTROLS, primary as u64)?;
            vmwrite(SECONDARY_CONTROLS, secondary as u64)?;
            vmwrite(EXIT_CONTROLS, exit as u64)?;
            vmwrite(ENTRY_CONTROLS, entry as u64)?;
            vmwrite(EXCEPTION_BITMAP, 1 << exit::UD_VECTOR)?;
            vmwrite(CR3_TARGET_COUNT, 0)?;
            vmwrite(EXIT_MSR_STORE_COUNT, 0)?;
            vmwrite(EXIT_MSR_LOAD_COUNT, 0)?;
            vmwrite(ENTRY_MSR_LOAD_COUNT, 0)?;
            vmwrite(ENTRY_INTERRUPTION_INFO, 0)?;
            vmwrite(EPT_POINTER, self.eptp)?;
            if self.vpid != 0 {
                vmwrite(VPID, self.vpid as u64)?;
            }
        }
        Ok(())
    }

    /// The state the CPU returns to on a VM exit: this CPU's, right now.
    fn write_host_state(&self) -> Result<(), VmxFail> {
        let gdt = x86_64::instructions::tables::sgdt();
        let idt = x86_64::instructions::tables::sidt();
        let tss_base = tss_base(gdt.base.as_u64());
        // SAFETY: all values describe this CPU's actual execution environment (the vCPU
        // only runs here); HOST_RSP/RIP are written by the entry code.
        unsafe {
            vmwrite(HOST_CR0, regs::read_cr0())?;
            vmwrite(HOST_CR3, regs::read_cr3())?;
            vmwrite(HOST_CR4, regs::read_cr4())?;
            vmwrite(HOST_CS_SELECTOR, crate::gdt::CODE_SELECTOR as u64)?;
            for f in [HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_ES_SELECTOR] {
                vmwrite(f, crate::gdt::DATA_SELECTOR as u64)?;
            }
            vmwrite(HOST_FS_SELECTOR, 0)?;
            vmwrite(HOST_GS_SELECTOR, 0)?;
            vmwrite(HOST_TR_SELECTOR, crate::gdt::TSS_SELECTOR as u64)?;
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
        }
        Ok(())
    }

    /// 32-bit protected mode, paging off, flat 4 GiB segments, RIP = entry (PVH).
    fn write_guest_state(&self, init: &VcpuInit) -> Result<(), VmxFail> {
        let c = self.caps;
        let cr0 = c.fixed_cr0(CR0_PE | CR0_ET, true);
        let cr4 = c.fixed_cr4(0);
        let segments: [(u16, u64); 8] = [
            (guest::DATA_SELECTOR, AR_DATA32), // ES
            (guest::CODE_SELECTOR, AR_CODE32), // CS
            (guest::DATA_SELECTOR, AR_DATA32), // SS
            (guest::DATA_SELECTOR, AR_DATA32), // DS
            (guest::DATA_SELECTOR, AR_DATA32), // FS
            (guest::DATA_SELECTOR, AR_DATA32), // GS
            (0, AR_UNUSABLE),                  // LDTR
            (guest::TASK_SELECTOR, AR_TSS32_BUSY),
        ];
        // SAFETY: guest state only; the guest is confined by EPT and the exit controls.
        unsafe {
            vmwrite(GUEST_CR0, cr0)?;
            vmwrite(CR0_GUEST_HOST_MASK, cr0 & !(CR0_PE | CR0_ET | CR0_PG))?;
            vmwrite(CR0_READ_SHADOW, CR0_PE | CR0_ET)?;
            vmwrite(GUEST_CR3, 0)?;
            vmwrite(GUEST_CR4, cr4)?;
            vmwrite(CR4_GUEST_HOST_MASK, cr4)?;
            vmwrite(CR4_READ_SHADOW, 0)?;
            for (i, (selector, rights)) in segments.into_iter().enumerate() {
                let i = 2 * i as u32;
                let limit = match rights {
                    AR_TSS32_BUSY => 0x67,
                    AR_UNUSABLE => 0,
                    _ => 0xffff_ffff,
                };
                vmwrite(GUEST_ES_SELECTOR + i, selector as u64)?;
                vmwrite(GUEST_ES_BASE + i, 0)?;
                vmwrite(GUEST_ES_LIMIT + i, limit)?;
                vmwrite(GUEST_ES_ACCESS_RIGHTS + i, rights)?;
            }
            vmwrite(GUEST_GDTR_BASE, 0)?;
            vmwrite(GUEST_GDTR_LIMIT, 0)?;
            vmwrite(GUEST_IDTR_BASE, 0)?;
            vmwrite(GUEST_IDTR_LIMIT, 0)?;
            vmwrite(GUEST_DR7, DR7_INIT)?;
            vmwrite(GUEST_RSP, 0)?;
            vmwrite(GUEST_RIP, init.entry.0)?;
            vmwrite(GUEST_RFLAGS, RFLAGS_RESERVED)?;
            vmwrite(GUEST_PENDING_DEBUG, 0)?;
            vmwrite(GUEST_INTERRUPTIBILITY, 0)?;
            vmwrite(GUEST_ACTIVITY_STATE, 0)?;
            vmwrite(GUEST_SYSENTER_CS, 0)?;
            vmwrite(GUEST_SYSENTER_ESP, 0)?;
            vmwrite(GUEST_SYSENTER_EIP, 0)?;
            vmwrite(GUEST_IA32_DEBUGCTL, 0)?;
            vmwrite(GUEST_IA32_PAT, regs::PAT_DEFAULT)?;
            vmwrite(GUEST_IA32_EFER, 0)?;
            vmwrite(VMCS_LINK_POINTER, u64::MAX)?;
        }
        Ok(())
    }

    pub fn run(&mut self) -> VmExit {
        if self.load_failed {
            return VmExit::GuestCrash;
        }
        assert_eq!(Some(cpu::current_index()), self.loaded_on, "a vCPU runs only on the CPU it is loaded on");
        if instructions::vmptrst() != self.vmcs.0 {
            // SAFETY: our VMCS, last made inactive on this same CPU.
            if let Err(e) = unsafe { instructions::vmptrld(self.vmcs.0) } {
                log::error!("VMPTRLD failed: {e:?}");
                return VmExit::GuestCrash;
            }
        }
        self.flush_if_stale();
        loop {
            // SAFETY: the VMCS is current and complete (built in `new`).
            match unsafe { instructions::enter(&mut self.regs, self.launched) } {
                instructions::Entry::Exited => self.launched = true,
                instructions::Entry::Failed(e) => {
                    log::error!("VM entry failed: {e:?}");
                    return VmExit::GuestCrash;
                }
            }
            if let Some(exit) = self.handle_exit() {
                return exit;
            }
        }
    }

    /// Drops this guest's cached translations if its stage-2 tables changed.
    fn flush_if_stale(&mut self) {
        let now = crate::stage2::generation();
        if now == self.stage2_generation {
            return;
        }
        self.stage2_generation = now;
        if let Err(e) = instructions::invept(self.caps.invept_type(), self.eptp) {
            log::error!("INVEPT failed: {e:?}");
        }
        if self.vpid != 0 {
            if let Err(e) = instructions::invvpid(self.caps.invvpid_type(), self.vpid) {
                log::error!("INVVPID failed: {e:?}");
            }
        }
    }

    pub fn hypercall_args(&self) -> HypercallArgs {
        self.regs.hypercall_args(self.long_mode)
    }

    pub fn set_hypercall_result(&mut self, value: u64) {
        self.regs.gpr[guest::gpr::RAX] = value;
    }
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        match self.loaded_on {
            None => FRAME_POOL.free(self.vmcs, 1),
            Some(c) if c != cpu::current_index() => {
                log::error!("vCPU loaded on cpu{c} dropped on cpu{}: its VMCS is leaked", cpu::current_index());
            }
            Some(_) => {
                // SAFETY: our VMCS, current on this CPU; after VMCLEAR the CPU no longer
                // references it.
                match unsafe { instructions::vmclear(self.vmcs.0) } {
                    Ok(()) => FRAME_POOL.free(self.vmcs, 1),
                    Err(e) => log::error!("VMCLEAR failed ({e:?}): VMCS leaked"),
                }
            }
        }
    }
}

/// The base of the TSS descriptor (selector [`crate::gdt::TSS_SELECTOR`]) in the GDT at `gdt`.
fn tss_base(gdt: u64) -> u64 {
    let at = (gdt + crate::gdt::TSS_SELECTOR as u64) as usize as *const u64;
    // SAFETY: the loaded GDT holds a 16-byte TSS descriptor at that selector.
    let (low, high) = unsafe { (core::ptr::read(at), core::ptr::read(at.add(1))) };
    ((low >> 16) & 0xff_ffff) | ((low >> 56) & 0xff) << 24 | (high & 0xffff_ffff) << 32
}

/// Reads a VMCS field that must exist (a failure means a Keel bug: no current VMCS).
fn field(f: u32) -> u64 {
    vmread(f).unwrap_or_else(|e| panic!("VMREAD {f:#x} failed: {e:?}"))
}
