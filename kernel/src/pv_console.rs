//! The Xen PV console, served by Keel itself: one `xencons_interface` page per domain
//! (`HVM_PARAM_CONSOLE_PFN`) and an event channel (`HVM_PARAM_CONSOLE_EVTCHN`).
//!
//! - Output: the guest copies bytes into `out`, advances `out_prod` and sends on the
//!   port; Keel drains `out_cons..out_prod` into the domain's console lines (tagged with
//!   the domain, as `console_io` output is).
//! - Input: Keel copies bytes into `in` while there is room, advances `in_prod` and
//!   raises the port. Bytes that do not fit are dropped (there is no backlog).
//!
//! The guest owns the page and may write anything into it at any time: indices are
//! masked into the rings, a producer more than a ring ahead of the consumer is treated
//! as a reset (the consumer jumps to it), and nothing here trusts a value read twice.

use crate::arch::{Arch, HostMemory};
use crate::domain::Domain;
use crate::event::Binding;
use crate::guest_memory::GuestWord32;
use crate::mm::{PhysAddr, PAGE_BYTES};
use crate::p2m::PageKind;
use crate::Hypervisor;
use alloc::vec::Vec;
use keel_abi::console::{
    XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_IN_SIZE, XENCONS_OUT_CONS, XENCONS_OUT_PROD, XENCONS_OUT_SIZE,
};
use keel_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use keel_abi::Errno;

/// Offset of `out` in the page.
const OUT: u64 = 1024;

fn word<A: Arch>(ring: PhysAddr, offset: usize) -> GuestWord32<A> {
    GuestWord32::at(PhysAddr(ring.0 + offset as u64))
}

/// Copies the bytes between `cons` and `prod` of the ring at `base` (`size` bytes, a
/// power of two) into `out`, in at most two pieces.
fn read_ring<A: Arch>(base: PhysAddr, size: u32, cons: u32, len: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + len as usize, 0);
    let at = cons & (size - 1);
    let first = len.min(size - at);
    A::Memory::read(PhysAddr(base.0 + at as u64), &mut out[start..start + first as usize]);
    A::Memory::read(base, &mut out[start + first as usize..]);
}

/// Takes what the guest produced in the `out` ring of `ring`, and consumes it.
pub(crate) fn drain<A: Arch>(ring: PhysAddr) -> Vec<u8> {
    let (cons_w, prod_w) = (word::<A>(ring, XENCONS_OUT_CONS), word::<A>(ring, XENCONS_OUT_PROD));
    let (cons, prod) = (cons_w.load(), prod_w.load());
    let len = prod.wrapping_sub(cons);
    let mut bytes = Vec::new();
    if len <= XENCONS_OUT_SIZE {
        read_ring::<A>(PhysAddr(ring.0 + OUT), XENCONS_OUT_SIZE, cons, len, &mut bytes);
    }
    // Consumed (or, if the indices made no sense, skipped): the guest sees room again.
    cons_w.compare_exchange(cons, prod);
    bytes
}

/// Puts as much of `bytes` as fits into the `in` ring of `ring`; returns how many.
pub(crate) fn fill<A: Arch>(ring: PhysAddr, bytes: &[u8]) -> usize {
    let (cons_w, prod_w) = (word::<A>(ring, XENCONS_IN_CONS), word::<A>(ring, XENCONS_IN_PROD));
    let (cons, prod) = (cons_w.load(), prod_w.load());
    let used = prod.wrapping_sub(cons);
    // A consumer ahead of the producer or a ring fuller than full: the guest broke it.
    let room = XENCONS_IN_SIZE.saturating_sub(used) as usize;
    let n = room.min(bytes.len());
    for (i, &b) in bytes[..n].iter().enumerate() {
        let at = prod.wrapping_add(u32::try_from(i).unwrap_or(0)) & (XENCONS_IN_SIZE - 1);
        A::Memory::write(PhysAddr(ring.0 + at as u64), &[b]);
    }
    if n > 0 {
        // n <= room <= XENCONS_IN_SIZE.
        prod_w.compare_exchange(prod, prod.wrapping_add(u32::try_from(n).unwrap_or(0)));
    }
    n
}

impl<A: Arch> Hypervisor<'_, A> {
    /// Gives `d` a PV console: a zeroed ring page at guest frame `gfn` (a hole), a port
    /// bound to Keel's console backend, and the two HVM parameters naming them. Returns
    /// the port. The builder calls it once the domain's static event channels are
    /// connected, so the port never takes one a configuration names.
    pub fn attach_pv_console(&self, d: &Domain<A>, gfn: u64) -> Result<u32, Errno> {
        if d.console_ring.get().is_some() {
            return Err(Errno::EEXIST);
        }
        if d.lookup(gfn).is_some() {
            return Err(Errno::EBUSY);
        }
        let frame = self.pool.alloc(1).ok_or(Errno::ENOMEM)?;
        A::Memory::zero(frame, PAGE_BYTES);
        if let Err(e) = d.mm.lock().place_special(self.pool, gfn, frame, PageKind::ConsoleRing) {
            self.pool.free(frame, 1);
            return Err(e);
        }
        d.console_ring.call_once(|| frame);
        let port = d.events.lock().alloc(Binding::Console, 0)?;
        d.set_param(HVM_PARAM_CONSOLE_PFN, gfn)?;
        d.set_param(HVM_PARAM_CONSOLE_EVTCHN, port as u64)?;
        Ok(port)
    }

    /// The guest sent on its console port: print what it put into the ring.
    pub(crate) fn pv_console_output(&self, d: &Domain<A>) {
        let Some(&ring) = d.console_ring.get() else { return };
        let bytes = drain::<A>(ring);
        self.console_output(d, &bytes);
    }

    /// Copies console input into `d`'s ring and raises its console port.
    pub(crate) fn pv_console_input(&self, d: &Domain<A>, bytes: &[u8]) {
        let Some(&ring) = d.console_ring.get() else { return };
        if fill::<A>(ring, bytes) == 0 && !bytes.is_empty() {
            return;
        }
        let Ok(port) = u32::try_from(d.param(HVM_PARAM_CONSOLE_EVTCHN)) else { return };
        let w = {
            let mut ev = d.events.lock();
            match ev.ports.get(port) {
                Some(p) if p.binding == Binding::Console => ev.raise(port),
                _ => return,
            }
        };
        self.apply(d, w);
    }
}

#[cfg(test)]
mod tests;
