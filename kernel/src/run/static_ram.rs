//! Static RAM of direct-mapped domains (`xen,static-mem`), taken out of the frame pool at
//! boot, before any domain is built, so that no other domain, translation table or shared
//! page is ever carved from it, and it is never handed back to the pool.

use crate::config::{DomainError, DomainSet};
use crate::mm::{FramePool, ReserveError};
use alloc::format;
use alloc::vec;

/// Reserves every bank of every direct-mapped domain of `set` in `pool`, which must have
/// nothing allocated yet. A domain with a bank the pool cannot reserve (not free RAM
/// Keel manages, given to another domain) is refused: its description becomes an error
/// naming the bank, and the banks reserved for it before stay reserved (they are named
/// as its RAM; no other domain may have them).
pub fn reserve_static_ram(pool: &FramePool, set: &mut DomainSet) {
    for entry in &mut set.domains {
        let Ok(d) = entry else { continue };
        let Some(banks) = &d.direct_map else { continue };
        let refused = banks.iter().find_map(|b| match pool.reserve(*b) {
            Ok(()) => None,
            Err(e) => {
                let why = match e {
                    ReserveError::Misaligned => "is not page aligned",
                    ReserveError::NotFree => "is not free RAM (Keel's image, a boot module or a hole)",
                    ReserveError::Reserved => "is another domain's static RAM",
                    ReserveError::Busy => "cannot be reserved once domains are built",
                };
                Some(format!("{}: xen,static-mem [{:#x}, {:#x}) {why}", d.node, b.start, b.end))
            }
        });
        match refused {
            Some(message) => {
                log::error!("{message}");
                *entry = Err(DomainError { node: d.node.clone(), errors: vec![message] });
            }
            None => log::info!("{}: {} static RAM bank(s) reserved", d.node, banks.len()),
        }
    }
}
