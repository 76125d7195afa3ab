//! The virtual GIC: what guests see of the interrupt controller.
//!
//! - GICv3 guests: the distributor ([`dist`]) and redistributors ([`redist`]) are
//!   emulated on trapped accesses (stage 2 leaves them unmapped); the CPU interface is
//!   the hardware's virtual one (`ICV_*` system registers), fed through the list
//!   registers.
//! - GICv2 guests: the distributor is emulated; the host's GICV frame is mapped at the
//!   guest's GICC address; the list registers are GICH's.
//!
//! [`model`] holds a domain's state, [`lr`] moves interrupts in and out of a vCPU's list
//! registers, [`regs`] is the per-interrupt register families the frames share. These are
//! pure and tested on the host; `hw` reaches the list registers. See `docs/vgic.md`.

pub mod dist;
pub mod lr;
pub mod model;
pub mod redist;
pub mod regs;

#[cfg(target_os = "none")]
mod hw;
#[cfg(target_os = "none")]
pub use hw::*;

pub use model::{Version, Vgic};
