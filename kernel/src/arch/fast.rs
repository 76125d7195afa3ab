//! The core's part of a backend's fast path: hypercalls answered from inside
//! [`Vcpu::run_fast`](super::Vcpu::run_fast), without returning to the run loop.

use super::HypercallArgs;
use crate::guest_memory::GuestTranslate;

/// What the core answers while a vCPU runs, for the exits it can settle without its run
/// loop (Xen's hypercall path: the call, then back to the guest unless a softirq is
/// pending).
pub trait FastPath {
    /// Handles the hypercall `args` the running vCPU made, with its virtual addresses
    /// translated by `translate`, if the core can answer it without its run loop.
    ///
    /// `Some(value)`: the call is done (everything it did is as if the run loop had
    /// handled a [`VmExit::Hypercall`](super::VmExit::Hypercall)); `value` goes into the
    /// result register. `None`: nothing was done; the backend reports the exit as
    /// [`VmExit::Hypercall`](super::VmExit::Hypercall).
    fn hypercall(&self, args: &HypercallArgs, translate: &dyn GuestTranslate) -> Option<u64>;

    /// Whether the backend may enter the guest again at once after a call `hypercall`
    /// answered. False: the run loop has work first, and the backend returns
    /// [`VmExit::Answered`](super::VmExit::Answered).
    fn may_resume(&self) -> bool;
}
