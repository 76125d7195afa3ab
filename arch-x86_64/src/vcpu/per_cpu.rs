//! The virtualisation state each physical CPU keeps in its per-CPU block: a leaf, so
//! that `crate::cpu` can hold it without importing the vCPU code.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// One CPU's virtualisation state: VMXON region or host save area (set once), and the
/// SVM ASIDs it hands out. Only the owning CPU changes it.
pub struct CpuVirt {
    enabled: AtomicBool,
    region: AtomicU64,
    host_save: AtomicU64,
    asid_generation: AtomicU64,
    next_asid: AtomicU32,
}

impl CpuVirt {
    pub const fn new() -> CpuVirt {
        CpuVirt {
            enabled: AtomicBool::new(false),
            region: AtomicU64::new(0),
            host_save: AtomicU64::new(0),
            asid_generation: AtomicU64::new(0),
            // The first allocation starts a generation, which flushes the whole TLB.
            next_asid: AtomicU32::new(u32::MAX),
        }
    }

    /// The generation of this CPU's ASIDs: an ASID taken in an older one may be reused.
    pub fn asid_generation(&self) -> u64 {
        self.asid_generation.load(Ordering::Relaxed)
    }

    /// Takes an unused ASID below `count` (ASID 0 is the host's). Returns it, its
    /// generation, and whether a new generation began: then every ASID may hold stale
    /// translations and the caller must flush the whole TLB before running the guest.
    pub fn take_asid(&self, count: u32) -> (u32, u64, bool) {
        let next = self.next_asid.load(Ordering::Relaxed);
        if next != 0 && next < count {
            self.next_asid.store(next + 1, Ordering::Relaxed);
            return (next, self.asid_generation(), false);
        }
        let generation = self.asid_generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.next_asid.store(2, Ordering::Relaxed);
        (1, generation, true)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Records that the CPU is in its virtualisation mode with these pages.
    pub fn set_enabled(&self, region: u64, host_save: u64) {
        self.region.store(region, Ordering::Relaxed);
        self.host_save.store(host_save, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Release);
    }

    /// SVM: where VMSAVE keeps Keel's own segment and syscall state.
    pub fn host_save(&self) -> u64 {
        self.host_save.load(Ordering::Relaxed)
    }
}

impl Default for CpuVirt {
    fn default() -> Self {
        Self::new()
    }
}
