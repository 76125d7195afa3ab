//! Each domain's xenstore page and event channel, set up by the domain builder as Xen's
//! toolstack does for a domain it introduces to xenstore:
//!
//! - one page of RAM at the architecture's store frame (outside the configured RAM; the
//!   domain's RAM limit grows by that page), zeroed, its `connection` word set to
//!   `XENSTORE_RECONNECT` so the guest waits until the xenstore domain serves the ring
//!   (`xen,enhanced = "legacy"`: left at 0, for kernels that never check it);
//! - a port unbound toward the xenstore domain, which binds it when it introduces the
//!   domain;
//! - grant entry `GNTTAB_RESERVED_XENSTORE` granting the page to the xenstore domain,
//!   which maps it with `GNTTABOP_map_grant_ref`;
//! - `HVM_PARAM_STORE_PFN` and `HVM_PARAM_STORE_EVTCHN` naming them.
//!
//! The page is ordinary RAM of the domain: it goes with the domain's memory on destroy,
//! and not while the xenstore domain still maps it (grant pins hold the reap back).

use crate::arch::{Arch, HostMemory};
use crate::domain::Domain;
use crate::event::Binding;
use crate::mm::{PhysAddr, PAGE_BYTES};
use crate::p2m::PageKind;
use crate::Hypervisor;
use alloc::sync::Arc;
use keel_abi::control::CAP_XENSTORE;
use keel_abi::grant::{GNTTAB_RESERVED_XENSTORE, GTF_PERMIT_ACCESS, GTF_TYPE_MASK};
use keel_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use keel_abi::xen::DomId;
use keel_abi::xenstore::{XENSTORE_CONNECTED, XENSTORE_RECONNECT, XENSTORE_RING_CONNECTION};
use keel_abi::Errno;

/// How the guest finds the ring at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreStart {
    /// `connection` = `XENSTORE_RECONNECT`: wait for the server to set it to 0.
    WaitForServer,
    /// `connection` = `XENSTORE_CONNECTED`: use the ring at once (older kernels).
    Immediate,
}

impl<A: Arch> Hypervisor<'_, A> {
    /// The running domain holding the xenstore capability, if any.
    pub fn xenstore_domain(&self) -> Option<Arc<Domain<A>>> {
        self.domain_ids()
            .into_iter()
            .filter_map(|id| self.domain(id))
            .find(|d| d.config().capabilities & CAP_XENSTORE != 0)
    }

    /// Gives `d` a xenstore page at guest frame `gfn` and a port for `store` (the
    /// xenstore domain) to bind, seeds grant entry 1 for `store` and sets the two HVM
    /// parameters. Returns the port. `-EEXIST` if `d` has a store page already, `-EINVAL`
    /// for the xenstore domain itself, `-EBUSY` if `gfn` is not a hole; on any failure
    /// nothing is left allocated.
    pub fn attach_store(&self, d: &Domain<A>, gfn: u64, store: DomId, start: StoreStart) -> Result<u32, Errno> {
        if d.param(HVM_PARAM_STORE_PFN) != 0 {
            return Err(Errno::EEXIST);
        }
        if d.id() == store {
            return Err(Errno::EINVAL);
        }
        self.store_frame(d, gfn, store, start)?;
        let port = match d.events.lock().alloc(Binding::Unbound { remote: store }, 0) {
            Ok(p) => p,
            Err(e) => {
                self.release_store_frame(d, gfn);
                return Err(e);
            }
        };
        d.set_param(HVM_PARAM_STORE_EVTCHN, u64::from(port))?;
        d.set_param(HVM_PARAM_STORE_PFN, gfn)?;
        Ok(port)
    }

    /// Completes the late-init handshake of `d`, left in late init (`HVM_PARAM_STORE_PFN`
    /// = ~0, its store port unbound toward the control domain) because no xenstore
    /// domain ran when it was built, now that `store` serves xenstore: a page at `gfn`
    /// as [`Self::attach_store`] gives (`connection` = `XENSTORE_RECONNECT`, grant entry
    /// 1 for `store`), the port the guest already has (its kernel bound it and waits on
    /// it) pointed at `store`, and last `HVM_PARAM_STORE_PFN` = `gfn`. The xenstore
    /// domain introduces `d` at its next listing and signals the port, on which the guest
    /// reads the parameter again and connects (Linux's `xenbus_late_init`). Returns the
    /// port. `-EINVAL` if `d` is not in late init, is `store`, or its store port is no
    /// longer unbound (the guest closed it: nothing is changed); `-EBUSY` if `gfn` is not
    /// a hole.
    pub fn complete_late_store(&self, d: &Domain<A>, gfn: u64, store: DomId) -> Result<u32, Errno> {
        if d.param(HVM_PARAM_STORE_PFN) != u64::MAX || d.id() == store {
            return Err(Errno::EINVAL);
        }
        let port = u32::try_from(d.param(HVM_PARAM_STORE_EVTCHN)).map_err(|_| Errno::EINVAL)?;
        if !matches!(d.events.lock().port(port)?.binding, Binding::Unbound { .. }) {
            return Err(Errno::EINVAL);
        }
        self.store_frame(d, gfn, store, StoreStart::WaitForServer)?;
        if let Err(e) = d.events.lock().redirect_unbound(port, store) {
            self.release_store_frame(d, gfn);
            return Err(e);
        }
        d.set_param(HVM_PARAM_STORE_PFN, gfn)?;
        Ok(port)
    }

    /// The page of [`Self::attach_store`]: one more page of `d`'s RAM at `gfn`, zeroed,
    /// its `connection` word set as `start` says, and grant entry 1 granting it to
    /// `store`; on failure nothing is left ([`Self::release_store_frame`] takes both back).
    fn store_frame(&self, d: &Domain<A>, gfn: u64, store: DomId, start: StoreStart) -> Result<(), Errno> {
        let gfn32 = u32::try_from(gfn).map_err(|_| Errno::EINVAL)?;
        if d.lookup(gfn).is_some() {
            return Err(Errno::EBUSY);
        }
        let frame = {
            let mut mm = d.mm.lock();
            let max = mm.max_pages();
            mm.set_max_pages(max.checked_add(1).ok_or(Errno::EINVAL)?);
            if let Err(e) = mm.populate(self.pool, gfn, 1) {
                mm.set_max_pages(max);
                return Err(e);
            }
            mm.lookup(gfn).map(|l| l.frame).ok_or(Errno::EINVAL)?
        };
        A::Memory::zero(frame, PAGE_BYTES);
        let connection = match start {
            StoreStart::WaitForServer => XENSTORE_RECONNECT,
            StoreStart::Immediate => XENSTORE_CONNECTED,
        };
        A::Memory::write(PhysAddr(frame.0 + XENSTORE_RING_CONNECTION as u64), &connection.to_le_bytes());
        if let Err(e) = d.grants.lock().seed_entry::<A>(self.pool, GNTTAB_RESERVED_XENSTORE, store, gfn32) {
            self.release_page(d, gfn);
            return Err(e);
        }
        Ok(())
    }

    /// Takes back what [`Self::store_frame`] gave: grant entry 1 and the page.
    fn release_store_frame(&self, d: &Domain<A>, gfn: u64) {
        if let Some(w) = d.grants.lock().entry_word::<A>(GNTTAB_RESERVED_XENSTORE) {
            w.store(0);
        }
        self.release_page(d, gfn);
    }

    fn release_page(&self, d: &Domain<A>, gfn: u64) {
        let mut mm = d.mm.lock();
        let _ = mm.release_ram(self.pool, gfn);
        let max = mm.max_pages();
        mm.set_max_pages(max.saturating_sub(1));
    }
}

impl<A: Arch> Hypervisor<'_, A> {
    /// Hands `d`'s xenstore connection over to `port`, a port of `d` unbound toward the
    /// xenstore domain, and the page `d` grants it as entry 1 (the initial domain's Linux,
    /// whose xenbus served its own page when it found no store port, allocates both on
    /// `IOCTL_XENBUS_BACKEND_SETUP`): sets `HVM_PARAM_STORE_PFN` and `_EVTCHN` and raises
    /// `VIRQ_DOM_EXC`, on which the xenstore domain connects the ring there. `-ESRCH`
    /// without a xenstore domain; `-EINVAL` for the xenstore domain itself, a port that is
    /// not unbound toward it, or an entry 1 that does not grant it a page of `d`'s RAM.
    pub fn store_connect(&self, d: &Domain<A>, port: u32) -> Result<(), Errno> {
        let store = self.xenstore_domain().ok_or(Errno::ESRCH)?;
        if d.id() == store.id() {
            return Err(Errno::EINVAL);
        }
        if d.events.lock().port(port)?.binding != (Binding::Unbound { remote: store.id() }) {
            return Err(Errno::EINVAL);
        }
        let (word, gfn) = {
            let g = d.grants.lock();
            let word = g.entry_word::<A>(GNTTAB_RESERVED_XENSTORE).map(|w| w.load()).ok_or(Errno::EINVAL)?;
            (word, g.entry_frame::<A>(GNTTAB_RESERVED_XENSTORE).ok_or(Errno::EINVAL)?)
        };
        let permits = word & u32::from(GTF_TYPE_MASK) == u32::from(GTF_PERMIT_ACCESS);
        let grantee = u16::try_from(word >> 16).map_err(|_| Errno::EINVAL)?;
        let is_ram = d.lookup(gfn).is_some_and(|l| l.kind == PageKind::Ram);
        if !permits || grantee != store.id() || !is_ram {
            return Err(Errno::EINVAL);
        }
        d.set_param(HVM_PARAM_STORE_PFN, gfn)?;
        d.set_param(HVM_PARAM_STORE_EVTCHN, u64::from(port))?;
        log::info!("domain {}: xenstore connection handed over to port {port}, page at gfn {gfn:#x}", d.id());
        self.notify_dom_exc();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
