//! The arm64 guest boot protocol: Xen's guest memory layout, the Linux arm64 `Image`
//! loader and the device tree Keel generates for each guest (see `docs/loader.md`).
//!
//! [`image`], [`placement`] and [`device_tree`] are pure and tested on the host; `load`
//! implements [`GuestLoader`](keel_kernel::arch::GuestLoader) with them.

pub mod device_tree;
pub mod image;
pub mod placement;

#[cfg(target_os = "none")]
mod load;
#[cfg(target_os = "none")]
mod passthrough;
