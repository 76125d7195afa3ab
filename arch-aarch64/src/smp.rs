//! Secondary CPUs: started with PSCI `CPU_ON`, each on its own stack, with the boot
//! CPU's translation tables, EL2 configuration and vectors, then handed to the core.

use crate::dt::MAX_CPUS;
use crate::mmu::{self, MmuConfig};
use crate::{boot, cache, cpu, irq, psci, vgic};
use alloc::boxed::Box;
use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};
use keel_kernel::arch::{CpuId, InterruptController};

/// Stack of each secondary CPU.
const STACK_SIZE: usize = 64 * 1024;

/// What a starting CPU needs before it can run Rust; read by `keel_secondary_entry` with
/// the MMU off, so the boot CPU cleans it to the point of coherency.
#[repr(C)]
pub struct SecondaryBoot {
    pub hcr: u64,
    pub vbar: u64,
    pub cpu: u64,
    pub stack_top: u64,
    pub mmu: MmuConfig,
    pub entry: fn(CpuId) -> !,
}

/// MPIDR affinity of each logical CPU (index = `CpuId`).
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

extern "C" {
    fn keel_secondary_entry();
    static keel_el2_vectors: u8;
}

/// Records the boot CPU as CPU 0.
pub fn record_boot_cpu() {
    MPIDR[0].store(cpu::mpidr_affinity(), Ordering::Release);
}

/// The MPIDR affinity of logical CPU `cpu`, if it was started.
pub fn mpidr_of(cpu: CpuId) -> Option<u64> {
    let v = MPIDR.get(cpu.0 as usize)?.load(Ordering::Acquire);
    (v != u64::MAX).then_some(v)
}

/// Starts every other CPU of the device tree; returns how many `CPU_ON` calls succeeded.
pub fn start_secondaries(entry: fn(CpuId) -> !) -> u32 {
    let platform = boot::platform();
    let Some(conduit) = psci::conduit() else {
        log::warn!("no PSCI in the device tree: secondary CPUs stay off");
        return 0;
    };
    let me = cpu::mpidr_affinity();
    let vbar = &raw const keel_el2_vectors as u64;
    let mut started = 0u32;
    for (i, &mpidr) in platform.cpus.mpidr[..platform.cpus.count].iter().enumerate() {
        if mpidr == me {
            continue;
        }
        if !platform.cpus.psci[i] {
            log::warn!("CPU with MPIDR {mpidr:#x}: enable-method is not psci; left off");
            continue;
        }
        let index = started as usize + 1;
        if index >= MAX_CPUS {
            break;
        }
        let stack = vec![0u128; STACK_SIZE / 16].into_boxed_slice();
        let boot = Box::new(SecondaryBoot {
            hcr: cpu::host_hcr(),
            vbar,
            cpu: index as u64,
            stack_top: stack.as_ptr_range().end as u64,
            mmu: *mmu::config(),
            entry,
        });
        MPIDR[index].store(mpidr, Ordering::Release);
        let context = &*boot as *const SecondaryBoot as usize;
        cache::clean_to_poc(context, core::mem::size_of::<SecondaryBoot>());
        match psci::cpu_on(mpidr, keel_secondary_entry as *const () as usize, context) {
            Ok(()) => {
                // The CPU owns both from now on.
                Box::leak(boot);
                Box::leak(stack);
                started += 1;
            }
            Err(e) => {
                MPIDR[index].store(u64::MAX, Ordering::Release);
                log::warn!("CPU with MPIDR {mpidr:#x}: PSCI CPU_ON over {} failed: {e}", conduit.name());
            }
        }
    }
    started
}

/// First Rust code of a secondary CPU: MMU on, on its own stack, at EL2.
#[no_mangle]
extern "C" fn keel_secondary_main(boot: &'static SecondaryBoot) -> ! {
    cpu::init_el2();
    irq::Gic::init_cpu();
    vgic::init_cpu();
    (boot.entry)(CpuId(boot.cpu as u32))
}
