//! The core's part of a backend's fast path: hypercalls answered from inside
//! [`Vcpu::run_fast`](super::Vcpu::run_fast), without returning to the run loop.

use super::HypercallArgs;
use crate::guest_memory::GuestTranslate;

/// What the core made of a hypercall on the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastAnswer {
    /// Nothing was done: the backend reports the exit as
    /// [`VmExit::Hypercall`](super::VmExit::Hypercall).
    Declined,
    /// Done (everything it did is as if the run loop had handled a
    /// [`VmExit::Hypercall`](super::VmExit::Hypercall)); the value goes into the result
    /// register and the guest goes on at once.
    Resume(u64),
    /// Done, the value goes into the result register, and the run loop has work before
    /// the next entry: the backend returns [`VmExit::Answered`](super::VmExit::Answered).
    Exit(u64),
}

/// What the core answers while a vCPU runs, for the exits it can settle without its run
/// loop (Xen's hypercall path: the call, then back to the guest unless a softirq is
/// pending).
pub trait FastPath {
    /// Handles the hypercall `args` the running vCPU made, with its virtual addresses
    /// translated by `translate`, if the core can answer it without its run loop.
    fn hypercall(&self, args: &HypercallArgs, translate: &dyn GuestTranslate) -> FastAnswer;
}
