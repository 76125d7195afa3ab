//! Keel's portable core.
//!
//! Everything here is written once for every architecture: the core reaches the hardware
//! only through the traits in [`arch`], which `arch-aarch64` and `arch-x86_64` implement
//! and `platform/` picks. It is `no_std` and free of `unsafe`; on the host it is tested
//! against the mock architecture in [`mock`].
//!
//! The guest-facing parts: [`domain`] (domains and vCPUs), [`p2m`] (a domain's
//! guest-physical map), [`guest_memory`] (every access to guest memory), [`event`] (event
//! channels, 2-level and FIFO), [`grant`] (grant tables v1), [`hypercall`] (the dispatch
//! table), all tied together by the [`Hypervisor`]. [`sched`] is the vCPU scheduler; [`run`] wires it to
//! the core, builds domains from their [`config`] and runs them on every CPU. [`control`]
//! is what a control domain may do to the others (Keel's control interface).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
// Narrowing `as` casts hide truncation of guest-controlled values: use `try_from`, a mask
// or a documented helper. Test fixtures (cfg(test)) cast small literals and are exempt.
#![cfg_attr(not(test), deny(clippy::cast_possible_truncation))]

extern crate alloc;

pub mod addr;
pub mod arch;
pub mod boot;
pub mod bzimage;
pub mod config;
pub mod console;
pub mod control;
pub mod domain;
pub mod dtb;
pub mod elf;
pub mod event;
pub mod grant;
pub mod guest_memory;
pub mod guest_output;
pub mod gzip;
pub mod hypercall;
pub mod hypervisor;
pub mod mm;
pub mod p2m;
pub mod passthrough;
pub mod pv_console;
pub mod run;
pub mod sched;
pub mod selftest;
pub mod start;
pub mod store_page;
pub mod version;

pub use hypervisor::Hypervisor;

#[cfg(any(test, feature = "test-support"))]
pub mod mock;
#[cfg(test)]
pub(crate) mod test_support;
