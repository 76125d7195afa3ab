//! AMD SVM: a virtual CPU is a VMCB with nested paging, started in its [`StartState`]
//! (Xen's PVH entry, real mode after a SIPI, or a `VCPUOP_initialise` context).
//!
//! ASIDs tag the guest's TLB entries but not its nested-table root, so two address spaces
//! must never share one unflushed. They are a per-CPU resource (QEMU has only 16): each CPU
//! hands them out in generations (see [`crate::vcpu::CpuVirt::take_asid`]) and a vCPU takes
//! a new one whenever its CPU started a new generation, or when it moves to another CPU.
//! Where the processor caches VMCB state between `VMRUN`s, the clean bits say what it may
//! take from that cache: all of it right after a #VMEXIT, less every group Keel writes
//! ([`vmcb::Vmcb::write`] clears its bit), nothing on a VMCB that is new or moved to
//! another CPU.
//!
//! PAUSE is intercepted only through the pause filter, as KVM does: a guest spinning on
//! a lock yields its CPU after [`PAUSE_FILTER_COUNT`] PAUSEs in a row. Without the filter
//! (QEMU) every PAUSE would exit, which costs a round trip per spin and no more than
//! the scheduler's time slice saves; such a spinner runs until its slice ends.

pub mod capabilities;
mod cr;
mod exit;
pub mod instructions;
mod shutdown;
mod state;
pub mod vmcb;

use super::guest::{self, GuestRegisters};
use super::start::{Segment, StartState};
use super::{fast as fast_path, interrupts, Common};
use crate::cpu;
use crate::regs::{self, efer};
use capabilities::Capabilities;
use keel_kernel::arch::{FastPath, HypercallArgs, SpaceId, VcpuError, VcpuInit, VmExit};
use keel_kernel::mm::FRAME_POOL;
use keel_kernel::mm::{PhysAddr, PAGE_SIZE};
use vmcb::{misc1, misc2, Vmcb};

const DR6_INIT: u64 = 0xffff_0ff0;
const DR7_INIT: u64 = 0x400;
const V_INTR_MASKING: u64 = 1 << 24;
const NESTED_PAGING: u64 = 1 << 0;
/// TLB_CONTROL: flush everything, or only this guest's ASID.
const TLB_FLUSH_ALL: u8 = 1;
const TLB_FLUSH_ASID: u8 = 3;
/// PAUSEs in a row before the intercept (KVM's default), and the gap in cycles that
/// starts the count again where the processor has the threshold.
pub const PAUSE_FILTER_COUNT: u16 = 3000;
const PAUSE_FILTER_THRESHOLD: u16 = 128;

/// A virtual CPU on SVM.
pub struct SvmVcpu {
    caps: &'static Capabilities,
    vmcb: Vmcb,
    regs: GuestRegisters,
    root: PhysAddr,
    /// The ASID generation of this vCPU's CPU when it took its ASID (`u64::MAX`: none yet).
    asid_generation: u64,
    /// The CPU it is loaded on.
    loaded_on: Option<u32>,
    /// The CPU whose ASID it holds.
    asid_cpu: Option<u32>,
    long_mode: bool,
    /// The address space of its stage 2 (for remote flushes, `stage2.rs`).
    space: SpaceId,
    stage2_generation: u64,
    /// Whether the guest runs 64-bit code (EFER.LMA and CS.L), found once per exit:
    /// forgotten at every #VMEXIT and whenever Keel writes EFER or CR0.
    code64: core::cell::Cell<Option<bool>>,
    /// For the report of a triple fault (`shutdown.rs`): where it ran before its last
    /// load, the VMRUNs since, and the code of the last exit handled.
    before: shutdown::Before,
    entries: u32,
    last_exit: u64,
}

impl SvmVcpu {
    pub fn new(caps: &'static Capabilities, init: &VcpuInit, state: &StartState) -> Result<SvmVcpu, VcpuError> {
        let (iopm, msrpm) = capabilities::permission_maps().ok_or(VcpuError::NoMemory)?;
        let page = FRAME_POOL.alloc(1).ok_or(VcpuError::NoMemory)?;
        // SAFETY: a fresh, identity-mapped frame from the pool, owned by this vCPU.
        unsafe { core::ptr::write_bytes(page.0 as usize as *mut u8, 0, PAGE_SIZE as usize) };
        let regs = GuestRegisters { gpr: state.gpr };
        let vcpu = SvmVcpu {
            caps,
            vmcb: Vmcb(page),
            regs,
            root: init.stage2_root,
            asid_generation: u64::MAX,
            loaded_on: None,
            asid_cpu: None,
            long_mode: state.long_mode(),
            space: init.space,
            stage2_generation: u64::MAX,
            code64: core::cell::Cell::new(None),
            before: shutdown::Before::Nowhere,
            entries: 0,
            last_exit: u64::MAX,
        };
        let v = &vcpu.vmcb;
        v.write(vmcb::INTERCEPT_CR, cr::INTERCEPT_CR_WRITES);
        v.write(vmcb::INTERCEPT_EXCEPTIONS, 1u32 << exit::UD_VECTOR);
        let pause = if caps.pause_filter { misc1::PAUSE } else { 0 };
        v.write(
            vmcb::INTERCEPT_MISC1,
            misc1::INTR
                | misc1::NMI
                | misc1::SMI
                | misc1::INIT
                | misc1::RDPMC
                | misc1::CPUID
                | misc1::INVD
                | misc1::HLT
                | misc1::INVLPGA
                | misc1::IOIO
                | misc1::MSR
                | misc1::TASK_SWITCH
                | misc1::SHUTDOWN
                | pause,
        );
        v.write(
            vmcb::INTERCEPT_MISC2,
            misc2::VMRUN
                | misc2::VMMCALL
                | misc2::VMLOAD
                | misc2::VMSAVE
                | misc2::STGI
                | misc2::CLGI
                | misc2::SKINIT
                | misc2::RDTSCP
                | misc2::WBINVD
                | misc2::MONITOR
                | misc2::MWAIT
                | misc2::MWAIT_CONDITIONAL
                | misc2::XSETBV,
        );
        if caps.pause_filter {
            v.write(vmcb::PAUSE_FILTER_COUNT, PAUSE_FILTER_COUNT);
            if caps.pause_filter_threshold {
                v.write(vmcb::PAUSE_FILTER_THRESHOLD, PAUSE_FILTER_THRESHOLD);
            }
        }
        v.write(vmcb::IOPM_BASE, iopm.0);
        v.write(vmcb::MSRPM_BASE, msrpm.0);
        v.write(vmcb::VIRTUAL_INTERRUPT, V_INTR_MASKING);
        v.write(vmcb::NESTED_CONTROL, NESTED_PAGING);
        v.write(vmcb::NESTED_CR3, init.stage2_root.0);
        v.set_clean(0);

        let all = s_segments(state);
        for (at, seg) in all {
            v.write_segment(at, seg.selector, seg.attr, seg.limit, seg.base);
        }
        v.write_segment(vmcb::GDTR, 0, 0, state.gdtr.1, state.gdtr.0);
        v.write_segment(vmcb::IDTR, 0, 0, state.idtr.1, state.idtr.0);
        v.write(vmcb::CPL, 0u8);
        v.write(vmcb::EFER, state.efer | efer::SVME); // VMRUN requires SVME in the guest state
        v.write(vmcb::CR0, state.cr0);
        v.write(vmcb::CR3, state.cr3);
        v.write(vmcb::CR4, state.cr4);
        v.write(vmcb::DR6, DR6_INIT);
        v.write(vmcb::DR7, DR7_INIT);
        v.write(vmcb::RFLAGS, state.rflags);
        v.write(vmcb::RIP, state.rip);
        v.write(vmcb::RSP, state.gpr[guest::gpr::RSP]);
        v.write(vmcb::RAX, state.gpr[guest::gpr::RAX]);
        v.write(vmcb::G_PAT, regs::PAT_DEFAULT);
        Ok(vcpu)
    }

    /// Readies the vCPU for the calling CPU: an ASID of this CPU is taken at the next
    /// entry if it last ran elsewhere.
    pub fn load(&mut self) {
        let here = cpu::current_index();
        self.before = match self.asid_cpu {
            None => shutdown::Before::Nowhere,
            Some(cpu) if cpu == here => shutdown::Before::SameCpu,
            Some(cpu) => shutdown::Before::Cpu(cpu),
        };
        self.entries = 0;
        if self.asid_cpu != Some(here) {
            self.asid_cpu = Some(here);
            self.asid_generation = u64::MAX;
            // Nothing another CPU cached of this VMCB is this CPU's.
            self.vmcb.set_clean(0);
        }
        self.loaded_on = Some(here);
    }

    pub fn put(&mut self) {
        self.loaded_on = None;
    }

    /// Runs the guest until an exit for the core; with `fast`, a hypercall the core
    /// answers there and an exit settled here go back into the guest at once unless the
    /// armed deadline passed (`vcpu/fast.rs`).
    pub fn run(&mut self, common: &mut Common, fast: Option<&dyn FastPath>) -> VmExit {
        assert_eq!(Some(cpu::current_index()), self.loaded_on, "a vCPU runs only on the CPU it is loaded on");
        let virt = &cpu::this_cpu().virt;
        let host_save = virt.host_save();
        loop {
            common.pvclock.refresh(&common.domain, common.vcpu_id);
            interrupts::prepare_entry(self, common);
            if let Some(report) = common.reports.pop_front() {
                return report;
            }
            let mut flush = None;
            if self.asid_generation != virt.asid_generation() {
                let (asid, generation, new_generation) = virt.take_asid(self.caps.asids);
                self.asid_generation = generation;
                self.vmcb.write(vmcb::GUEST_ASID, asid);
                flush = new_generation.then_some(TLB_FLUSH_ALL);
            }
            let generation = crate::stage2::enter_guest(self.space);
            if generation != self.stage2_generation {
                self.stage2_generation = generation;
                let own = if self.caps.flush_by_asid { TLB_FLUSH_ASID } else { TLB_FLUSH_ALL };
                flush = flush.or(Some(own));
            }
            if let Some(flush) = flush {
                self.vmcb.write(vmcb::TLB_CONTROL, flush);
            }
            self.vmcb.write(vmcb::RAX, self.regs.gpr[guest::gpr::RAX]);
            self.entries = self.entries.wrapping_add(1);
            // SAFETY: SVM is enabled on this CPU (`X86Vcpu::load` enabled it before the vCPU
            // was loaded here), the VMCB is complete, and `host_save` is this CPU's page.
            unsafe { instructions::run(&mut self.regs, self.vmcb.0 .0, host_save) };
            crate::stage2::exit_guest();
            self.regs.gpr[guest::gpr::RAX] = self.vmcb.read(vmcb::RAX);
            self.code64.set(None);
            if self.caps.vmcb_clean {
                self.vmcb.set_clean(vmcb::clean::ALL);
            }
            self.vmcb.write(vmcb::TLB_CONTROL, 0u8);
            match self.handle_exit(common) {
                Some(VmExit::Hypercall) if common.reports.is_empty() && fast.is_some() => {
                    let long_mode = self.long_mode;
                    if let Some(exit) = fast.and_then(|f| fast_path::hypercall(self, common, long_mode, f)) {
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
            if fast.is_some() && fast_path::deadline_passed() {
                return VmExit::Interrupt;
            }
        }
    }

    pub fn hypercall_args(&self) -> HypercallArgs {
        self.regs.hypercall_args(self.long_mode)
    }

    pub fn set_hypercall_result(&mut self, value: u64) {
        self.regs.set_hypercall_result(value);
    }
}

/// The VMCB offsets of the state's segment registers.
fn s_segments(s: &StartState) -> [(usize, Segment); 8] {
    let g = &s.segments;
    [
        (vmcb::ES, g[0]),
        (vmcb::CS, g[1]),
        (vmcb::SS, g[2]),
        (vmcb::DS, g[3]),
        (vmcb::FS, g[4]),
        (vmcb::GS, g[5]),
        (vmcb::LDTR, s.ldtr),
        (vmcb::TR, s.tr),
    ]
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        // The processor keeps no reference to a VMCB between VMRUNs: what it cached is
        // keyed by the VMCB's address and ignored for a new VMCB there (clean bits 0).
        FRAME_POOL.free(self.vmcb.0, 1);
    }
}
