//! The hypercall probe: proof that hardware virtualisation works on a CPU.
//!
//! On each CPU Keel builds a one-page guest under its own stage-2/EPT/NPT tables and runs
//! the backend's probe program, which does, in the architecture's own instructions:
//!
//! 1. hypercall `xen_version(XENVER_version)` with the boot argument in argument 2;
//! 2. hypercall `xen_version(XENVER_version)` with the first call's result in argument 2;
//! 3. halt (WFI, HLT) forever.
//!
//! Keel checks the first exit carries the boot argument, answers it, resumes the guest,
//! checks the second exit echoes the answer (so the guest really ran on after the first
//! exit with Keel's result in its register) and sees the halt.
//!
//! Before that, the probe's page serves to check the backend's [`HostMemory`] against
//! its contract ([`crate::arch::memory::check`]), so every boot on every architecture
//! tests it.

use crate::arch::{Arch, DomainInit, GuestDomain, HostMemory, MemType, Perms, SpaceId, Vcpu, VcpuInit, VmExit};
use crate::mm::{FramePool, GuestPhysAddr, PageTable, PAGE_BYTES, PAGE_SIZE};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use keel_abi::hypercall::XEN_VERSION;

/// Where the probe's code page sits in guest-physical space.
pub const PROBE_ENTRY: GuestPhysAddr = GuestPhysAddr(0x4000_0000);
/// The boot argument handed to the probe ("KEEL").
pub const PROBE_ARG: u64 = 0x4B45_454C;

/// What the probe observed, for the report line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// The answer Keel gave to the first hypercall and saw echoed by the second.
    pub answer: u64,
}

/// Runs the probe on the calling CPU, as address space `space`.
pub fn hypercall_probe<A: Arch>(pool: &FramePool, space: SpaceId) -> Result<ProbeReport, String> {
    let code = A::probe_guest_code();
    if code.is_empty() || code.len() as u64 > PAGE_SIZE {
        return Err(format!("probe code has {} bytes", code.len()));
    }
    let page = pool.alloc(1).ok_or("no frame for the probe guest")?;
    // The page first serves to check the backend's HostMemory against its contract.
    if let Err(e) = crate::arch::memory::check::<A::Memory>(page, PAGE_BYTES) {
        pool.free(page, 1);
        return Err(format!("host memory contract: {e}"));
    }
    A::Memory::zero(page, PAGE_BYTES);
    A::Memory::write(page, code);
    let result = PageTable::<A>::new(pool, space).map_err(|e| format!("stage-2 root: {e:?}")).and_then(|mut pt| {
        let r = pt
            .map(pool, PROBE_ENTRY, page, PAGE_SIZE, Perms::RWX, MemType::Normal)
            .map_err(|e| format!("stage-2 map: {e:?}"))
            .and_then(|()| run_probe::<A>(&pt));
        pt.destroy(pool);
        r
    });
    pool.free(page, 1);
    result
}

fn run_probe<A: Arch>(pt: &PageTable<A>) -> Result<ProbeReport, String> {
    let vm = DomainInit { id: 0, vcpus: 1, stage2_root: pt.root(), space: pt.space(), virtual_uart: false };
    let vm = Arc::new(A::Domain::new(&vm).map_err(|e| format!("domain: {e:?}"))?);
    let init = VcpuInit::boot(PROBE_ENTRY, PROBE_ARG, pt.root(), pt.space());
    let mut vcpu = A::Vcpu::new(&vm, &init).map_err(|e| format!("vcpu: {e:?}"))?;
    vcpu.load();
    let result = converse(&mut vcpu);
    vcpu.put();
    result
}

fn converse<V: Vcpu>(vcpu: &mut V) -> Result<ProbeReport, String> {
    let answer = keel_abi::ABI_VERSION.packed() as u64;
    expect_hypercall(vcpu, 1, PROBE_ARG)?;
    vcpu.set_hypercall_result(answer);
    expect_hypercall(vcpu, 2, answer)?;
    vcpu.set_hypercall_result(0);
    match vcpu.run() {
        VmExit::Halt => Ok(ProbeReport { answer }),
        other => Err(format!("third exit: expected halt, got {other:?}")),
    }
}

fn expect_hypercall<V: Vcpu>(vcpu: &mut V, n: u32, arg1: u64) -> Result<(), String> {
    match vcpu.run() {
        VmExit::Hypercall => {}
        other => return Err(format!("exit {n}: expected a hypercall, got {other:?}")),
    }
    let call = vcpu.hypercall_args();
    // The probe may run in a 32-bit guest mode: compare the low halves.
    let (got, want) = (call.args[1] & 0xffff_ffff, arg1 & 0xffff_ffff);
    if call.number != XEN_VERSION || call.args[0] != 0 || got != want {
        return Err(format!(
            "exit {n}: expected xen_version(0, {want:#x}), got #{}({:#x}, {got:#x})",
            call.number, call.args[0]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::Region;
    use crate::mock::{self, MockArch};

    fn pool() -> FramePool {
        let p = FramePool::new();
        p.add(Region::new(0x8000_0000, 1 << 24));
        p
    }

    #[test]
    fn probe_passes_and_frees_everything() {
        let pool = pool();
        let r = hypercall_probe::<MockArch>(&pool, SpaceId(3)).unwrap();
        assert_eq!(r.answer, keel_abi::ABI_VERSION.packed() as u64);
        assert_eq!(pool.stats().allocated, 0);
    }

    #[test]
    fn probe_fails_if_the_result_is_not_delivered() {
        let pool = pool();
        mock::break_hypercall_results(true);
        let r = hypercall_probe::<MockArch>(&pool, SpaceId(3));
        mock::break_hypercall_results(false);
        assert!(r.unwrap_err().contains("exit 2"));
        assert_eq!(pool.stats().allocated, 0);
    }
}
