//! Keel's portable core.
//!
//! Everything here is written once for every architecture: the core reaches the hardware
//! only through the traits in [`arch`], which `arch-aarch64` and `arch-x86_64` implement
//! and `platform/` picks. It is `no_std` and free of `unsafe`; on the host it is tested
//! against the mock architecture in [`mock`].
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod config;
pub mod console;
pub mod mm;
pub mod sched;
pub mod selftest;
pub mod start;
pub mod version;

#[cfg(any(test, feature = "mock"))]
pub mod mock;
