//! Hypercall dispatch: a table indexed by Xen's hypercall numbers (and Keel's control
//! hypercall, `docs/control-abi.md`), one file per family.
//!
//! Every handler returns `Result<u64, Errno>`; the result register gets the value, or the
//! negated error number. Numbers outside the table, and entries Keel does not implement,
//! return -ENOSYS. Pointer arguments are guest virtual addresses, read through the
//! calling vCPU's translation ([`GuestTranslate`]); arguments Xen declares as `int` or
//! `unsigned int` use only their low 32 bits, as in Xen. See `docs/abi.md`.

mod console;
mod control;
mod event;
mod grant;
mod hvm;
mod memory;
mod sched;
mod timer;
mod vcpu;
mod version;
mod vm_assist;

pub use vcpu::update_runstate_area;

use crate::arch::{Arch, HypercallArgs};
use crate::domain::Domain;
use crate::guest_memory::{GuestTranslate, GuestVirt};
use crate::hypervisor::Hypervisor;
use alloc::sync::Arc;
use core::marker::PhantomData;
use keel_abi::hypercall::{self as nr, TABLE_SIZE};
use keel_abi::Errno;

/// What a handler returns.
pub type HcResult = Result<u64, Errno>;

/// One hypercall being handled.
pub struct Call<'c, 'h, A: Arch> {
    pub hv: &'c Hypervisor<'h, A>,
    /// The calling domain.
    pub domain: &'c Arc<Domain<A>>,
    /// The calling vCPU.
    pub vcpu: u32,
    /// The caller's virtual memory.
    pub guest: GuestVirt<'c, A>,
    /// The translation the caller's pointers go through.
    pub translate: &'c dyn GuestTranslate,
    /// Arguments 1..5.
    pub args: &'c [u64; 5],
    /// The caller runs 32-bit x86 code (Xen's compat layouts).
    pub compat: bool,
}

impl<A: Arch> Call<'_, '_, A> {
    /// Argument `i` as Xen's `int`/`unsigned int` parameters see it.
    pub fn arg32(&self, i: usize) -> u32 {
        // The low half, as Xen truncates a register to a C int.
        (self.args[i] & 0xffff_ffff) as u32
    }
}

/// A hypercall handler.
pub type Handler<A> = for<'c, 'h> fn(&Call<'c, 'h, A>) -> HcResult;

/// The table's length: [`TABLE_SIZE`] entries.
const SLOTS: usize = 64;
const _: () = assert!(SLOTS as u64 == TABLE_SIZE);

/// The table index of hypercall `nr`, checked at compile time (the table is built in a
/// `const`, where `usize::try_from` is not available).
const fn slot(nr: u64) -> usize {
    assert!(nr < TABLE_SIZE);
    // Below 64: the assertion above makes the narrowing exact.
    #[allow(clippy::cast_possible_truncation)]
    let i = nr as usize;
    i
}

/// The dispatch table.
pub struct Table<A: Arch>(PhantomData<A>);

impl<A: Arch> Table<A> {
    /// Handlers by hypercall number.
    pub const ENTRIES: [Option<Handler<A>>; SLOTS] = {
        let mut t: [Option<Handler<A>>; SLOTS] = [None; SLOTS];
        t[slot(nr::MEMORY_OP)] = Some(memory::memory_op::<A> as Handler<A>);
        t[slot(nr::SET_TIMER_OP)] = Some(timer::set_timer_op::<A> as Handler<A>);
        t[slot(nr::XEN_VERSION)] = Some(version::xen_version::<A> as Handler<A>);
        t[slot(nr::CONSOLE_IO)] = Some(console::console_io::<A> as Handler<A>);
        t[slot(nr::GRANT_TABLE_OP)] = Some(grant::grant_table_op::<A> as Handler<A>);
        t[slot(nr::VM_ASSIST)] = Some(vm_assist::vm_assist::<A> as Handler<A>);
        t[slot(nr::VCPU_OP)] = Some(vcpu::vcpu_op::<A> as Handler<A>);
        t[slot(nr::SCHED_OP)] = Some(sched::sched_op::<A> as Handler<A>);
        t[slot(nr::EVENT_CHANNEL_OP)] = Some(event::event_channel_op::<A> as Handler<A>);
        t[slot(nr::PHYSDEV_OP)] = Some(physdev_op::<A> as Handler<A>);
        t[slot(nr::HVM_OP)] = Some(hvm::hvm_op::<A> as Handler<A>);
        t[slot(keel_abi::control::KEEL_CONTROL_OP)] = Some(control::control_op::<A> as Handler<A>);
        t
    };
}

/// `physdev_op`: Keel passes no physical devices through; every sub-op is -ENOSYS.
fn physdev_op<A: Arch>(_c: &Call<'_, '_, A>) -> HcResult {
    Err(Errno::ENOSYS)
}

impl<'h, A: Arch> Hypervisor<'h, A> {
    /// Handles hypercall `call` made by `vcpu` of `domain`, whose virtual addresses
    /// `translate` resolves; returns the value for the result register.
    #[inline]
    pub fn hypercall(
        &self,
        domain: &Arc<Domain<A>>,
        vcpu: u32,
        call: &HypercallArgs,
        translate: &dyn GuestTranslate,
    ) -> u64 {
        let handler = usize::try_from(call.number).ok().and_then(|n| Table::<A>::ENTRIES.get(n).copied().flatten());
        let Some(handler) = handler else { return Errno::ENOSYS.to_return() };
        if vcpu >= domain.nr_vcpus() {
            return Errno::EINVAL.to_return();
        }
        let guest = GuestVirt::new(&domain.mm, translate);
        let c = Call { hv: self, domain, vcpu, guest, translate, args: &call.args, compat: call.compat };
        match handler(&c) {
            Ok(v) => v,
            Err(e) => e.to_return(),
        }
    }
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod tests;
