//! Keel's xenstore domain (`docs/xenstore.md`): a domain holding Xen's
//! `DOMAIN_CAPS_XENSTORE` that serves [`keel_xenstore`] to every domain Keel gave a store
//! page. It runs on the bare-metal test-guest runtime (`keel-test-guest`: hypercalls,
//! event channels, grant maps) and is entered by the arm64 guest image when its command
//! line says `keel.program=xenstored`.
//!
//! 1. Binds `VIRQ_DOM_EXC` and lists the domains through Keel's control interface
//!    (`CTL_LIST`, `CTL_STORE_INFO`, `CTL_QUERY`).
//! 2. Introduces each domain that has a store page: writes its basic nodes as Xen's
//!    toolstack does ([`nodes`]), sends itself `XS_INTRODUCE` (`@introduceDomain` fires),
//!    maps grant ref 1 (`GNTTAB_RESERVED_XENSTORE`) of the domain and binds its store
//!    port.
//! 3. Serves every ring whenever an event arrives, and signals the rings that got output.
//! 4. On `VIRQ_DOM_EXC` lists the domains again: a domain gone, shut down or dying is
//!    released (`@releaseDomain`, its ring unmapped and its port closed); a new one with
//!    a store page is introduced.
#![no_std]
// Failures carry their message inline, as the runtime's scenarios do.
#![allow(clippy::result_large_err)]

extern crate alloc;

mod control;
mod logger;
mod nodes;
mod ring;
mod server;

pub use server::serve;
