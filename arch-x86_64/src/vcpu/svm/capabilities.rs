//! What this processor's SVM offers (CPUID 8000_000Ah, AMD APM vol. 2, 15.4) and enabling
//! it on a CPU (EFER.SVME, VM_HSAVE_PA).

use crate::cpu::PerCpu;
use crate::regs::{self, cpuid, efer, msr};
use crate::vcpu::{EnableError, Missing};
use keel_kernel::mm::FRAME_POOL;
use keel_kernel::mm::{PhysAddr, PAGE_SIZE};
use spin::Once;

const VM_CR_SVMDIS: u64 = 1 << 4;
const EDX_NESTED_PAGING: u32 = 1 << 0;
const EDX_NRIP_SAVE: u32 = 1 << 3;
const EDX_VMCB_CLEAN: u32 = 1 << 5;
const EDX_FLUSH_BY_ASID: u32 = 1 << 6;
const EDX_DECODE_ASSISTS: u32 = 1 << 7;
const EDX_PAUSE_FILTER: u32 = 1 << 10;
const EDX_PAUSE_FILTER_THRESHOLD: u32 = 1 << 12;

/// The SVM features of this machine.
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    /// Number of ASIDs (ASID 0 is the host's).
    pub asids: u32,
    /// The processor saves the next RIP on instruction intercepts.
    pub nrips: bool,
    pub flush_by_asid: bool,
    /// The processor may keep VMCB state cached between VMRUNs, as the clean bits allow.
    pub vmcb_clean: bool,
    /// Intercepts of MOV to a control register name the source register (EXITINFO1).
    pub decode_assists: bool,
    /// PAUSE intercepts only after a count of PAUSEs (a spin loop, not a single pause).
    pub pause_filter: bool,
    /// The count restarts when PAUSEs are further apart than a threshold.
    pub pause_filter_threshold: bool,
}

impl Capabilities {
    /// Reads CPUID; fails if SVM is disabled or lacks nested paging.
    pub fn detect() -> Result<Capabilities, Missing> {
        // SAFETY: VM_CR exists on every processor that reports SVM.
        if unsafe { regs::rdmsr(msr::VM_CR) } & VM_CR_SVMDIS != 0 {
            return Err(Missing::SvmDisabled);
        }
        if crate::cpu::features().max_extended_leaf < 0x8000_000a {
            return Err(Missing::SvmNoNpt);
        }
        let leaf = cpuid(0x8000_000a, 0);
        if leaf.edx & EDX_NESTED_PAGING == 0 {
            return Err(Missing::SvmNoNpt);
        }
        if leaf.ebx < 2 {
            return Err(Missing::SvmNoAsids);
        }
        Ok(Capabilities {
            asids: leaf.ebx,
            nrips: leaf.edx & EDX_NRIP_SAVE != 0,
            flush_by_asid: leaf.edx & EDX_FLUSH_BY_ASID != 0,
            vmcb_clean: leaf.edx & EDX_VMCB_CLEAN != 0,
            decode_assists: leaf.edx & EDX_DECODE_ASSISTS != 0,
            pause_filter: leaf.edx & EDX_PAUSE_FILTER != 0,
            pause_filter_threshold: leaf.edx & EDX_PAUSE_FILTER_THRESHOLD != 0,
        })
    }

    /// Sets EFER.SVME and the host save area on the calling CPU (once).
    pub fn enable_cpu(&self, cpu: &PerCpu) -> Result<(), EnableError> {
        if cpu.virt.is_enabled() {
            return Ok(());
        }
        // SAFETY: VM_CR exists when CPUID reports SVM.
        if unsafe { regs::rdmsr(msr::VM_CR) } & VM_CR_SVMDIS != 0 {
            return Err(EnableError::Locked);
        }
        let hsave = zeroed_frame()?;
        let host_save = zeroed_frame()?;
        // SAFETY: EFER.SVME only enables the SVM instructions; VM_HSAVE_PA names a page
        // this CPU owns forever.
        unsafe {
            regs::wrmsr(msr::IA32_EFER, regs::read_efer() | efer::SVME);
            regs::wrmsr(msr::VM_HSAVE_PA, hsave.0);
        }
        // SAFETY: SVM is on (above) and the page is this CPU's. Keel's own segment and
        // syscall state is final by now (the per-CPU GS base was set at boot) and never
        // changes, so this one copy serves every #VMEXIT on this CPU.
        unsafe { super::instructions::vmsave(host_save.0) };
        cpu.virt.set_enabled(hsave.0, host_save.0);
        Ok(())
    }
}

fn zeroed_frame() -> Result<PhysAddr, EnableError> {
    let frame = FRAME_POOL.alloc(1).ok_or(EnableError::NoMemory)?;
    // SAFETY: a fresh, identity-mapped frame from the pool.
    unsafe { core::ptr::write_bytes(frame.0 as usize as *mut u8, 0, PAGE_SIZE as usize) };
    Ok(frame)
}

/// The I/O and MSR permission maps, all bits set (every access intercepted), shared by
/// all vCPUs: 12 KiB and 8 KiB of physically contiguous memory.
pub fn permission_maps() -> Option<(PhysAddr, PhysAddr)> {
    static MAPS: Once<Option<(PhysAddr, PhysAddr)>> = Once::new();
    *MAPS.call_once(|| {
        let io = FRAME_POOL.alloc(3)?;
        let msr = FRAME_POOL.alloc(2)?;
        // SAFETY: fresh, identity-mapped frames from the pool (3 and 2 pages at least).
        unsafe {
            core::ptr::write_bytes(io.0 as usize as *mut u8, 0xff, 3 * PAGE_SIZE as usize);
            core::ptr::write_bytes(msr.0 as usize as *mut u8, 0xff, 2 * PAGE_SIZE as usize);
        }
        Some((io, msr))
    })
}
