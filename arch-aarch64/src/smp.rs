//! Secondary CPUs: started with PSCI `CPU_ON`, each on its own stack, with the boot
//! CPU's translation tables, EL2 configuration and vectors, then handed to the core.

use crate::dt::MAX_CPUS;
use crate::mmu::{self, MmuConfig};
use crate::{cache, cpu, dt, irq, firmware_psci, stage2, vgic};
use alloc::boxed::Box;
use alloc::vec;
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

extern "C" {
    fn keel_secondary_entry();
    static keel_el2_vectors: u8;
}

/// Starts every other CPU of the device tree; returns how many `CPU_ON` calls succeeded.
pub fn start_secondaries(entry: fn(CpuId) -> !) -> u32 {
    let platform = dt::platform();
    let Some(conduit) = firmware_psci::conduit() else {
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
        cpu::record_mpidr(index, Some(mpidr));
        let context = &*boot as *const SecondaryBoot as usize;
        cache::clean_to_poc(context, core::mem::size_of::<SecondaryBoot>());
        match firmware_psci::cpu_on(mpidr, keel_secondary_entry as *const () as usize, context) {
            Ok(()) => {
                // The CPU owns both from now on.
                Box::leak(boot);
                Box::leak(stack);
                started += 1;
            }
            Err(e) => {
                cpu::record_mpidr(index, None);
                log::warn!("CPU with MPIDR {mpidr:#x}: PSCI CPU_ON over {} failed: {e}", conduit.name());
            }
        }
    }
    started
}

/// First Rust code of a secondary CPU: MMU on, on its own stack, at EL2.
#[no_mangle]
extern "C" fn keel_secondary_main(boot: &'static SecondaryBoot) -> ! {
    cpu::init_el2(stage2::vtcr());
    irq::Gic::init_cpu();
    vgic::init_cpu();
    (boot.entry)(CpuId(boot.cpu as u32))
}
