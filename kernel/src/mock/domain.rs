//! The mock backend's per-domain state and guest boot protocol.
//!
//! Boot protocol: RAM is one bank at [`GUEST_RAM`]; the kernel module's bytes are copied
//! to its start, which is the entry point; the boot vCPU gets the RAM size in `r0`. The
//! ramdisk and device-tree modules are not used.

use super::{MockArch, MockMemory};
use crate::arch::{
    BootEntry, DomainInit, DomainServices, GuestDomain, GuestLoader, HostMemory, LoadError, LoadRequest, VcpuError,
};
use crate::domain::Domain;
use crate::mm::{GuestPhysAddr, PhysAddr, Region, PAGE_SIZE};
use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use keel_abi::memory::{E820Entry, E820_RAM};

/// Where mock guests' RAM starts.
pub const GUEST_RAM: u64 = 0x4000_0000;

/// What the mock backend keeps per domain: how it was created, and how many vCPU
/// objects were made for it.
#[derive(Debug)]
pub struct MockDomain {
    pub init: DomainInit,
    vcpus_created: AtomicU32,
    /// Per vCPU (bit n): a doorbell rang (the mock's virtual interrupt).
    doorbells: AtomicU64,
    /// Per vCPU: its device timer's deadline (system time; 0: none).
    deadlines: [AtomicU64; 64],
    services: spin::Once<Weak<dyn DomainServices>>,
}

impl MockDomain {
    /// How many times [`Vcpu::new`](crate::arch::Vcpu::new) ran for this domain.
    pub fn vcpus_created(&self) -> u32 {
        self.vcpus_created.load(Ordering::Relaxed)
    }

    pub(super) fn note_vcpu_created(&self) {
        self.vcpus_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Rings the doorbells of the vCPUs in `mask`.
    pub(super) fn ring(&self, mask: u64) {
        self.doorbells.fetch_or(mask, Ordering::AcqRel);
    }

    /// Whether `vcpu`'s doorbell rang or its device timer expired; clears both.
    pub(super) fn take_doorbell(&self, vcpu: u32) -> bool {
        let rang = self.doorbells.fetch_and(!(1 << vcpu), Ordering::AcqRel) & (1 << vcpu) != 0;
        let expired = self.timer_expired(vcpu);
        if expired {
            self.deadlines[vcpu as usize % 64].store(0, Ordering::Release);
        }
        rang || expired
    }

    /// Arms `vcpu`'s device timer for system time `at` (0: stops it).
    pub(super) fn set_timer(&self, vcpu: u32, at: u64) {
        self.deadlines[vcpu as usize % 64].store(at, Ordering::Release);
    }

    fn timer_expired(&self, vcpu: u32) -> bool {
        let at = self.deadlines[vcpu as usize % 64].load(Ordering::Acquire);
        at != 0 && at <= super::sim::read_clock()
    }

    /// The core's services for this domain, once attached.
    pub fn services(&self) -> Option<Arc<dyn DomainServices>> {
        self.services.get()?.upgrade()
    }
}

impl GuestDomain for MockDomain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        Ok(MockDomain {
            init: *init,
            vcpus_created: AtomicU32::new(0),
            doorbells: AtomicU64::new(0),
            deadlines: [const { AtomicU64::new(0) }; 64],
            services: spin::Once::new(),
        })
    }

    fn attach(&self, services: Weak<dyn DomainServices>) {
        self.services.call_once(|| services);
    }

    fn interrupt_pending(&self, vcpu: u32) -> bool {
        vcpu < 64 && (self.doorbells.load(Ordering::Acquire) & (1 << vcpu) != 0 || self.timer_expired(vcpu))
    }
}

impl GuestLoader for MockArch {
    /// Its guests' console writes are console output whatever they asked for; saying
    /// so lets the control interface's `CTL_CREATE_VUART` be tested.
    const VIRTUAL_UART: bool = true;

    fn guest_ram(bytes: u64) -> Vec<Region> {
        vec![Region::new(GUEST_RAM, bytes.next_multiple_of(PAGE_SIZE))]
    }

    fn memory_map(ram: &[Region]) -> Vec<E820Entry> {
        ram.iter().map(|r| E820Entry::new(r.start, r.size(), E820_RAM)).collect()
    }

    fn load_guest(domain: &Domain<MockArch>, request: &LoadRequest<'_>) -> Result<BootEntry, LoadError> {
        let kernel = &request.config.kernel.region;
        let ram = request.ram.first().ok_or_else(|| LoadError::TooLarge("no RAM".into()))?;
        if kernel.size() > ram.size() {
            return Err(LoadError::TooLarge(format!("kernel of {} bytes, RAM of {} bytes", kernel.size(), ram.size())));
        }
        let mut image = vec![0u8; usize::try_from(kernel.size()).map_err(|_| LoadError::TooLarge("kernel".into()))?];
        MockMemory::read(PhysAddr(kernel.start), &mut image);
        if image.first().is_none_or(|&b| b == 0) {
            return Err(LoadError::BadImage("the kernel does not start with a mock instruction".into()));
        }
        domain.write_phys(ram.start, &image).map_err(|e| LoadError::BadImage(format!("copy failed: {e:?}")))?;
        Ok(BootEntry { entry: GuestPhysAddr(ram.start), arg: ram.size() })
    }
}
