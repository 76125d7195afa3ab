//! The guest-physical map (P2M) of one domain: its translation tables, the RAM frames it
//! owns, the special pages placed in it, pins and page accounting.
//!
//! It sits below domains: [`crate::domain`] owns one [`Memory`] per domain, and
//! [`crate::guest_memory`] reads and writes guest memory through [`Memory::lookup`]. It
//! imports only the architecture's traits and [`crate::mm`], never a domain.

mod fault;
mod frames;
mod memory;

pub use frames::{free_run, FrameSet};
pub use memory::{Lookup, Memory, PageKind};
