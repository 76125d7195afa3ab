//! Keel's xenstore service: Xen's xenstore protocol (`docs/misc/xenstore.txt`,
//! `xen/include/public/io/xs_wire.h`), unchanged, as pure portable logic.
//!
//! - [`wire`]: the 16-byte `xsd_sockmsg` header, message types, error names, limits.
//! - [`path`]: path rules and the resolution of relative paths.
//! - [`perms`]: node permissions (`n`, `r`, `w`, `b` followed by a domain id).
//! - [`tree`] and [`transaction`]: the store and its transactional view.
//! - [`service`]: connections, the request dispatcher, watches, domains and quotas.
//! - [`ring`]: the shared `xenstore_domain_interface` page as a state machine over a
//!   [`ring::RingMemory`], so a bare-metal xenstore domain and a userspace daemon drive it
//!   alike.
//!
//! The crate is `no_std` with `alloc` and has no `unsafe`; it is tested on the host.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod path;
pub mod perms;
pub mod quota;
pub mod ring;
pub mod service;
pub mod transaction;
pub mod tree;
pub mod watch;
pub mod wire;

mod ops;
mod ops_domain;

pub use service::{ConnId, Xenstore};
pub use wire::{DomId, Header, MsgType, XsError};
