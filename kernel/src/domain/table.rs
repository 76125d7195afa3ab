//! The narrow view of the domain table that operations between two domains need.

use super::Domain;
use crate::arch::Arch;
use crate::event::Wake;
use crate::mm::FramePool;
use alloc::sync::Arc;
use keel_abi::xen::{DomId, DOMID_SELF};

/// What interdomain event and grant operations may ask of the domain table: find a peer,
/// act on an event delivery, reach the frame pool. They get this, not the hypervisor, so
/// that the table can call their teardown without an import circle.
pub trait DomainTable<A: Arch> {
    /// The live domain `id`.
    fn domain(&self, id: DomId) -> Option<Arc<Domain<A>>>;

    /// The domain `id`, live or destroyed but not yet reaped (its ports and grants may
    /// still be connected to others).
    fn domain_any(&self, id: DomId) -> Option<Arc<Domain<A>>>;

    /// The live domain named `id` by `caller`; `DOMID_SELF` and the caller's own id are
    /// the caller (even while it is being destroyed).
    fn resolve(&self, caller: &Arc<Domain<A>>, id: DomId) -> Option<Arc<Domain<A>>> {
        if id == DOMID_SELF || id == caller.id() {
            Some(caller.clone())
        } else {
            self.domain(id)
        }
    }

    /// Acts on what an event delivery to `d` asked for (wakes, kicks), with no lock held.
    fn apply(&self, d: &Domain<A>, w: Wake);

    /// `d` sent on its PV console port: its console ring holds output.
    fn console_output(&self, d: &Domain<A>);

    /// The pool that pinned frames are returned to.
    fn frame_pool(&self) -> &FramePool;
}
