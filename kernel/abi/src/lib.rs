//! Keel's guest ABI: the documented subset of the Xen hypercall ABI that Keel speaks.
//!
//! This crate is the contract shared by the hypervisor and the guests that run on it.
//! It has no dependencies and no `unsafe`. Once a version is released, a number or a
//! layout in it never changes; additions raise the minor version (see `docs/abi.md`).
//!
//! Every struct is `#[repr(C)]` with its size and field offsets asserted at compile time
//! against Xen's headers, and encodes to and decodes from little-endian bytes
//! ([`Wire`]). Layouts that differ by architecture live in [`layout`].
#![no_std]
#![forbid(unsafe_code)]
#![deny(clippy::cast_possible_truncation)]

#[macro_use]
pub mod wire;

pub mod console;
pub mod control;
pub mod errno;
pub mod event;
pub mod features;
pub mod grant;
pub mod hvm;
pub mod hypercall;
pub mod hypercall_registers;
pub mod layout;
pub mod memory;
pub mod sched;
pub mod start_info;
pub mod vcpu;
pub mod version;
pub mod xen;
pub mod xenstore;

pub use errno::Errno;
pub use version::{AbiVersion, ABI_VERSION};
pub use wire::{Field, Wire};
