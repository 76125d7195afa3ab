//! Intel VT-x: a virtual CPU is a VMCS with EPT, VPID and unrestricted guest, started in
//! 32-bit protected mode with paging off (the Xen PVH entry state).
//!
//! A VMCS may be active on one CPU only. [`VmxVcpu::new`] leaves it clear (inactive);
//! [`VmxVcpu::load`] makes it current on the calling CPU (`VMPTRLD`, and this CPU's host
//! state if it last ran elsewhere) and [`VmxVcpu::put`] clears it again (`VMCLEAR`,
//! after which the next entry is a `VMLAUNCH`), so the vCPU can move between CPUs.

pub mod capabilities;
mod cr;
mod exit;
pub mod instructions;
mod setup;
mod state;
pub mod vmcs;

use super::guest::GuestRegisters;
use super::start::StartState;
use super::{fast as fast_path, interrupts, Common};
use crate::cpu;
use capabilities::Capabilities;
use instructions::vmread;
use keel_kernel::arch::{FastPath, HypercallArgs, SpaceId, VcpuError, VcpuInit, VmExit};
use keel_kernel::mm::FRAME_POOL;
use keel_kernel::mm::{PhysAddr, PAGE_SIZE};

/// EPTP: write-back paging structures, 4-level walk (SDM 25.6.11).
const EPTP_WB_4_LEVEL: u64 = 6 | (3 << 3);
const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const DR7_INIT: u64 = 0x400;

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
    /// What the VMCS's HOST_RSP holds (0: not known), so that the entry writes it only
    /// when Keel's stack moved.
    host_rsp: u64,
    long_mode: bool,
    /// The address space of its EPT (for remote flushes, `stage2.rs`).
    space: SpaceId,
    stage2_generation: u64,
    /// Interrupt-window exiting is on.
    window: bool,
    /// What this exit read or wrote of the VMCS, so that each field is read at most once
    /// per exit (see [`ExitCache`]).
    cache: ExitCache,
}

/// Guest state read from the VMCS during one exit, forgotten at the next. Every field
/// here changes only at a VM exit or through Keel's own writes, which update it.
#[derive(Default)]
struct ExitCache {
    rip: core::cell::Cell<Option<u64>>,
    /// EFER.LMA and CS.L: the guest runs 64-bit code.
    code64: core::cell::Cell<Option<bool>>,
    /// The VM-entry interruption-information field holds a valid event (the processor
    /// clears its valid bit at every VM exit; Keel sets it).
    queued: bool,
}

impl VmxVcpu {
    pub fn new(caps: &'static Capabilities, init: &VcpuInit, state: &StartState) -> Result<VmxVcpu, VcpuError> {
        if !caps.unrestricted_guest() {
            log::error!("VMX without unrestricted guest cannot run the paging-off entry states (PVH, SIPI)");
            return Err(VcpuError::NoVirtualization);
        }
        let vmcs = FRAME_POOL.alloc(1).ok_or(VcpuError::NoMemory)?;
        // SAFETY: a fresh frame from the pool, identity-mapped, owned by this vCPU.
        unsafe {
            core::ptr::write_bytes(vmcs.0 as usize as *mut u8, 0, PAGE_SIZE as usize);
            core::ptr::write_volatile(vmcs.0 as usize as *mut u32, caps.revision);
        }
        let regs = GuestRegisters { gpr: state.gpr };
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
            host_rsp: 0,
            long_mode: state.long_mode(),
            space: init.space,
            stage2_generation: u64::MAX,
            window: false,
            cache: ExitCache::default(),
        };
        // SAFETY: the VMCS region is ours and carries the revision id; this CPU is in VMX
        // operation (the caller enabled it).
        let loaded = unsafe { instructions::vmclear(vmcs.0).and_then(|()| instructions::vmptrld(vmcs.0)) };
        let built = loaded
            .and_then(|()| vcpu.write_controls())
            .map_err(|e| log::error!("VMCS set-up failed: {e:?}"))
            .and_then(|()| vcpu.write_guest_state(state).map_err(|e| log::error!("VMCS guest state: {e:?}")));
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

    /// Runs the guest until an exit for the core; with `fast`, a hypercall the core
    /// answers there goes back into the guest at once, as an exit settled here does
    /// (`vcpu/fast.rs`).
    pub fn run(&mut self, common: &mut Common, fast: Option<&dyn FastPath>) -> VmExit {
        if self.load_failed {
            return VmExit::GuestCrash;
        }
        assert_eq!(Some(cpu::current_index()), self.loaded_on, "a vCPU runs only on the CPU it is loaded on");
        if let Err(exit) = self.ready() {
            return exit;
        }
        loop {
            common.pvclock.refresh(&common.domain, common.vcpu_id);
            interrupts::prepare_entry(self, common);
            if let Some(report) = common.reports.pop_front() {
                return report;
            }
            self.arm_preemption_timer();
            let generation = crate::stage2::enter_guest(self.space);
            self.flush_if_stale(generation);
            // SAFETY: the VMCS is current and complete (built in `new`).
            let entry = unsafe { instructions::enter(&mut self.regs, self.launched, &mut self.host_rsp) };
            crate::stage2::exit_guest();
            match entry {
                instructions::Entry::Exited => {
                    self.launched = true;
                    self.cache = ExitCache::default();
                }
                instructions::Entry::Failed(e) => {
                    log::error!("VM entry failed: {e:?}");
                    return VmExit::GuestCrash;
                }
            }
            match self.handle_exit(common) {
                Some(VmExit::Hypercall) if common.reports.is_empty() && fast.is_some() => {
                    let long_mode = self.long_mode;
                    if let Some(exit) = fast.and_then(|f| fast_path::hypercall(self, common, long_mode, f)) {
                        return exit;
                    }
                    // The call may have made another VMCS current (a vCPU built) or
                    // changed the domain's EPT: as at the start of a run.
                    if let Err(exit) = self.ready() {
                        return exit;
                    }
                }
                // What the exit found goes after what it reported on the way.
                Some(exit) if common.reports.is_empty() => return exit,
                Some(exit) => common.reports.push_back(exit),
                None => {}
            }
            if let Some(report) = common.reports.pop_front() {
                return report;
            }
            // No deadline test: the preemption timer ends the guest's run at the armed
            // deadline, and host interrupts exit whatever the guest's RFLAGS.IF.
        }
    }

    /// Before entries after Keel ran code that may have changed what they rely on: the
    /// VMCS current again (building a vCPU makes another current, then none). The
    /// guest's cached translations are dropped right before each entry (`run`).
    fn ready(&mut self) -> Result<(), VmExit> {
        if instructions::vmptrst() != self.vmcs.0 {
            // SAFETY: our VMCS, last made inactive on this same CPU.
            if let Err(e) = unsafe { instructions::vmptrld(self.vmcs.0) } {
                log::error!("VMPTRLD failed: {e:?}");
                return Err(VmExit::GuestCrash);
            }
        }
        Ok(())
    }

    /// Drops this guest's cached translations if its stage-2 tables changed since the
    /// generation it last flushed at (`now`: what `stage2::enter_guest` returned).
    fn flush_if_stale(&mut self, now: u64) {
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

    /// Drops this vCPU's cached guest-linear translations after Keel changed its
    /// paging registers.
    fn flush_guest_tlb(&self) {
        if self.vpid != 0 {
            if let Err(e) = instructions::invvpid(self.caps.invvpid_type(), self.vpid) {
                log::error!("INVVPID failed: {e:?}");
            }
        } else if let Err(e) = instructions::invept(self.caps.invept_type(), self.eptp) {
            log::error!("INVEPT failed: {e:?}");
        }
    }

    pub fn hypercall_args(&self) -> HypercallArgs {
        self.regs.hypercall_args(self.long_mode)
    }

    pub fn set_hypercall_result(&mut self, value: u64) {
        self.regs.set_hypercall_result(value);
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
fn field<F: vmcs::Field>(f: F) -> F::Value {
    vmread(f).unwrap_or_else(|e| panic!("VMREAD {f:?} failed: {e:?}"))
}

/// The longest a guest runs without an exit to the core: 4 ms, the scheduler's slice.
const PREEMPTION_TICKS_PER_SECOND: u64 = 250;

impl VmxVcpu {
    /// Sets the VMX preemption timer to this CPU's timer deadline (the end of the slice,
    /// a vCPU timer, `keel.timeout`), and to one slice at most, so that the core also
    /// sees requests from other CPUs (a domain crashed elsewhere) whose IPI did not
    /// end the guest's run; if the processor has the timer.
    fn arm_preemption_timer(&self) {
        let Some(rate) = self.caps.preemption_timer_rate else { return };
        let slice = crate::timer::tsc_hz() / PREEMPTION_TICKS_PER_SECOND;
        let deadline = crate::timer::armed_deadline();
        let left = if deadline == 0 { slice } else { deadline.saturating_sub(crate::regs::rdtsc()).min(slice) };
        state::set(vmcs::PREEMPTION_TIMER_VALUE, u32::try_from(left >> rate).unwrap_or(u32::MAX));
    }
}
