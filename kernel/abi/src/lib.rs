//! Keel's guest ABI: the documented subset of the Xen hypercall ABI that Keel speaks.
//!
//! This crate is the contract shared by the hypervisor and the guests that run on it.
//! It has no dependencies and no `unsafe`. Once a version is released, a number or a
//! layout in it never changes; additions raise the minor version (see `docs/abi.md`).
#![no_std]
#![forbid(unsafe_code)]

pub mod hypercall;
pub mod version;

pub use version::{AbiVersion, ABI_VERSION};
