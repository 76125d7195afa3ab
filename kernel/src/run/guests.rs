//! The running domains and their backend vCPU objects.
//!
//! Each vCPU object sits in a slot of its domain's [`Guest`]. A CPU takes it out of the
//! slot when it switches to the vCPU and parks it again (after [`Vcpu::put`]) when it
//! switches away, so an object is used by one CPU at a time even while the scheduler
//! moves the vCPU between CPUs. The scheduler hands a vCPU to another CPU only after
//! its CPU decided to switch away, which parks the object right after; a CPU that finds
//! the object still in use waits briefly ([`Take::Busy`]).

use crate::arch::{Arch, CpuId};
use crate::domain::Domain;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use keel_abi::xen::DomId;
use spin::{Mutex, MutexGuard};

/// Where a vCPU object is.
pub(super) enum Slot<V> {
    /// Not created yet (never started).
    Empty,
    /// Created, on no CPU.
    Parked(V),
    /// Taken by this CPU.
    InUse(CpuId),
}

/// The result of taking a vCPU object.
pub(super) enum Take<V> {
    Got(V),
    /// Another CPU still has it.
    Busy,
    /// It was never created.
    Missing,
}

/// A running domain: its core state, name, and vCPU objects.
pub struct Guest<A: Arch> {
    pub name: String,
    pub domain: Arc<Domain<A>>,
    /// Created at run time through the control interface, not described at boot.
    pub created: bool,
    /// The `CTL_START_KEEP_*` bits: the ends after which the domain stays (listed, its
    /// memory held) until the control domain destroys it.
    pub keep: u32,
    slots: Vec<Mutex<Slot<A::Vcpu>>>,
}

impl<A: Arch> Guest<A> {
    /// A domain whose vCPU 0 is `boot`; its other vCPUs do not exist until started.
    pub(super) fn new(name: String, domain: Arc<Domain<A>>, boot: A::Vcpu) -> Self {
        let mut slots: Vec<_> = (0..domain.nr_vcpus()).map(|_| Mutex::new(Slot::Empty)).collect();
        slots[0] = Mutex::new(Slot::Parked(boot));
        Guest { name, domain, created: false, keep: 0, slots }
    }

    pub(super) fn slot(&self, vcpu: u32) -> Option<MutexGuard<'_, Slot<A::Vcpu>>> {
        self.slots.get(vcpu as usize).map(|s| s.lock())
    }

    /// Takes `vcpu`'s object for `cpu`.
    pub(super) fn take(&self, vcpu: u32, cpu: CpuId) -> Take<A::Vcpu> {
        let Some(mut slot) = self.slot(vcpu) else { return Take::Missing };
        match core::mem::replace(&mut *slot, Slot::InUse(cpu)) {
            Slot::Parked(v) => Take::Got(v),
            Slot::InUse(other) => {
                *slot = Slot::InUse(other);
                Take::Busy
            }
            Slot::Empty => {
                *slot = Slot::Empty;
                Take::Missing
            }
        }
    }

    /// Returns `vcpu`'s object, put, to its slot.
    pub(super) fn park(&self, vcpu: u32, object: A::Vcpu) {
        if let Some(mut slot) = self.slot(vcpu) {
            *slot = Slot::Parked(object);
        }
    }

    /// Whether a CPU has one of the vCPU objects.
    pub(crate) fn in_use(&self) -> bool {
        self.slots.iter().any(|s| matches!(*s.lock(), Slot::InUse(_)))
    }
}

/// The running domains by id.
pub(super) struct Guests<A: Arch> {
    map: Mutex<BTreeMap<DomId, Arc<Guest<A>>>>,
    /// Entries in `map`, read without the lock.
    count: AtomicUsize,
}

impl<A: Arch> Guests<A> {
    pub fn new() -> Self {
        Guests { map: Mutex::new(BTreeMap::new()), count: AtomicUsize::new(0) }
    }

    pub fn insert(&self, guest: Guest<A>) {
        let mut map = self.map.lock();
        if map.insert(guest.domain.id(), Arc::new(guest)).is_none() {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn get(&self, id: DomId) -> Option<Arc<Guest<A>>> {
        self.map.lock().get(&id).cloned()
    }

    pub fn remove(&self, id: DomId) -> Option<Arc<Guest<A>>> {
        let mut map = self.map.lock();
        let g = map.remove(&id);
        if g.is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        g
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub fn ids(&self) -> Vec<DomId> {
        self.map.lock().keys().copied().collect()
    }
}
