//! Event operations that involve two domains, or the domain table: allocating and
//! binding interdomain ports, closing them (the peer's port returns to unbound),
//! sending across domains, status and reset of another domain's ports, and closing
//! everything when a domain is destroyed.

use super::{peer_of, Binding, EventState, PortStatus, Wake};
use crate::arch::Arch;
use crate::domain::{Domain, DomainTable};
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::xen::{DomId, DOMID_SELF};
use keel_abi::Errno;
use spin::MutexGuard;

/// Locks the event state of two domains in id order (one lock if they are the same).
fn lock_pair<'d, A: Arch>(
    a: &'d Domain<A>,
    b: &'d Domain<A>,
) -> (MutexGuard<'d, EventState<A>>, Option<MutexGuard<'d, EventState<A>>>) {
    if a.id() == b.id() {
        (a.events.lock(), None)
    } else if a.id() < b.id() {
        let ga = a.events.lock();
        (ga, Some(b.events.lock()))
    } else {
        let gb = b.events.lock();
        (a.events.lock(), Some(gb))
    }
}

/// `EVTCHNOP_alloc_unbound`: a port of `dom` (the caller) that `remote_dom` may bind.
pub fn alloc_unbound<A: Arch>(
    hv: &impl DomainTable<A>,
    caller: &Arc<Domain<A>>,
    dom: DomId,
    remote_dom: DomId,
) -> Result<u32, Errno> {
    let d = hv.resolve(caller, dom).ok_or(Errno::ESRCH)?;
    let remote = if remote_dom == DOMID_SELF { caller.id() } else { remote_dom };
    let mut ev = d.events.lock();
    let port = ev.free_port()?;
    if d.id() != caller.id() {
        return Err(Errno::EPERM);
    }
    ev.ports.take(port, Binding::Unbound { remote }, 0);
    Ok(port)
}

/// `EVTCHNOP_bind_interdomain`: connects a new local port to `remote_port` of
/// `remote_dom`, which must be unbound and allocated for the caller. The new port is
/// marked pending, since events sent before the bind are lost.
pub fn bind_interdomain<A: Arch>(
    hv: &impl DomainTable<A>,
    caller: &Arc<Domain<A>>,
    remote_dom: DomId,
    remote_port: u32,
) -> Result<u32, Errno> {
    let rd = hv.resolve(caller, remote_dom).ok_or(Errno::ESRCH)?;
    let (mut local, mut remote) = lock_pair(caller, &rd);
    let lport = local.free_port()?;
    let me = caller.id();
    let rev: &mut EventState<A> = remote.as_deref_mut().unwrap_or(&mut local);
    match rev.port(remote_port) {
        Ok(p) if p.binding == Binding::Unbound { remote: me } && !rev.is_dying() => {}
        _ => return Err(Errno::EINVAL),
    }
    if let Some(p) = rev.ports.get_mut(remote_port) {
        p.binding = Binding::Interdomain { remote: me, remote_port: lport };
    }
    local.ports.take(lport, Binding::Interdomain { remote: rd.id(), remote_port }, 0);
    let w = local.raise(lport);
    drop(remote);
    drop(local);
    hv.apply(caller, w);
    Ok(lport)
}

/// Whether `port` of `ev` can be taken for a static channel: free, and allowed by the
/// ABI in force (2-level at domain build: below 4096) and the domain's limit.
fn can_take<A: Arch>(ev: &EventState<A>, port: u32) -> bool {
    port != 0 && port < ev.limit() && !ev.is_dying() && ev.ports.get(port).is_none_or(|p| p.binding == Binding::Free)
}

/// A static event channel (Xen `xen,evtchn-v1`, set up by the domain builder): port
/// `a_port` of `a` connected to port `b_port` of `b`, both interdomain from the start, as
/// if one side had bound to the other's unbound port (nothing is marked pending).
/// `-EINVAL` if either port is taken or not allowed, `-EEXIST` if it is exactly this
/// channel already.
pub fn bind_static<A: Arch>(a: &Arc<Domain<A>>, a_port: u32, b: &Arc<Domain<A>>, b_port: u32) -> Result<(), Errno> {
    if a.id() == b.id() && a_port == b_port {
        return Err(Errno::EINVAL);
    }
    let (mut ea, mut eb) = lock_pair(a, b);
    let want_a = Binding::Interdomain { remote: b.id(), remote_port: b_port };
    if ea.ports.get(a_port).map(|p| p.binding) == Some(want_a) {
        return Err(Errno::EEXIST);
    }
    let ev_b: &EventState<A> = eb.as_deref().unwrap_or(&ea);
    if !can_take(&ea, a_port) || !can_take(ev_b, b_port) {
        return Err(Errno::EINVAL);
    }
    ea.ports.take(a_port, want_a, 0);
    let ev_b: &mut EventState<A> = eb.as_deref_mut().unwrap_or(&mut ea);
    ev_b.ports.take(b_port, Binding::Interdomain { remote: a.id(), remote_port: a_port }, 0);
    Ok(())
}

/// Frees `port` of `d` (already locked in `ev`); if it was interdomain, the peer's
/// port (in `peer`, or in `ev` for a loop-back) goes back to unbound for `d`.
fn close_locked<A: Arch>(d: DomId, ev: &mut EventState<A>, peer: Option<&mut EventState<A>>, port: u32) {
    if let Some((_, rport)) = ev.ports.get(port).and_then(peer_of) {
        let pev = match peer {
            Some(p) => p,
            None => &mut *ev,
        };
        if let Some(rp) = pev.ports.get_mut(rport) {
            if rp.binding == (Binding::Interdomain { remote: d, remote_port: port }) {
                rp.binding = Binding::Unbound { remote: d };
            }
        }
    }
    ev.free(port);
}

/// `EVTCHNOP_close` (and closing on reset and destruction).
pub fn close<A: Arch>(hv: &impl DomainTable<A>, d: &Arc<Domain<A>>, port: u32) -> Result<(), Errno> {
    for _ in 0..4 {
        let peer = {
            let mut ev = d.events.lock();
            match ev.port(port)?.binding {
                Binding::Free | Binding::Reserved => return Err(Errno::EINVAL),
                Binding::Interdomain { remote, .. } if remote != d.id() => remote,
                _ => {
                    close_locked(d.id(), &mut ev, None, port);
                    return Ok(());
                }
            }
        };
        let Some(rd) = hv.domain_any(peer) else {
            close_locked(d.id(), &mut d.events.lock(), None, port);
            return Ok(());
        };
        let (mut ev, mut rev) = lock_pair(d, &rd);
        // The port may have changed while nothing was locked: look again.
        match ev.port(port).map(|p| p.binding) {
            Ok(Binding::Interdomain { remote, .. }) if remote == peer => {
                close_locked(d.id(), &mut ev, rev.as_deref_mut(), port);
                return Ok(());
            }
            Ok(Binding::Free | Binding::Reserved) | Err(_) => return Err(Errno::EINVAL),
            Ok(_) => continue,
        }
    }
    Err(Errno::EINVAL)
}

/// `EVTCHNOP_send`.
pub fn send<A: Arch>(hv: &impl DomainTable<A>, d: &Arc<Domain<A>>, port: u32) -> Result<(), Errno> {
    let (remote, remote_port) = {
        let mut ev = d.events.lock();
        match ev.port(port)?.binding {
            Binding::Ipi => {
                let w = ev.raise(port);
                drop(ev);
                hv.apply(d, w);
                return Ok(());
            }
            Binding::Unbound { .. } => return Ok(()),
            Binding::Console => {
                drop(ev);
                hv.console_output(d);
                return Ok(());
            }
            Binding::Interdomain { remote, remote_port } if remote == d.id() => {
                let w = ev.raise(remote_port);
                drop(ev);
                hv.apply(d, w);
                return Ok(());
            }
            Binding::Interdomain { remote, remote_port } => (remote, remote_port),
            _ => return Err(Errno::EINVAL),
        }
    };
    let Some(rd) = hv.domain(remote) else { return Ok(()) };
    let w = {
        let mut rev = rd.events.lock();
        // Deliver only if the peer is still connected to this port.
        match rev.ports.get(remote_port).map(|p| p.binding) {
            Some(Binding::Interdomain { remote: r, remote_port: rp }) if r == d.id() && rp == port => {
                rev.raise(remote_port)
            }
            _ => Wake::default(),
        }
    };
    hv.apply(&rd, w);
    Ok(())
}

/// `EVTCHNOP_status`.
pub fn status<A: Arch>(
    hv: &impl DomainTable<A>,
    caller: &Arc<Domain<A>>,
    dom: DomId,
    port: u32,
) -> Result<PortStatus, Errno> {
    let d = hv.resolve(caller, dom).ok_or(Errno::ESRCH)?;
    let ev = d.events.lock();
    ev.port(port)?;
    if d.id() != caller.id() {
        return Err(Errno::EPERM);
    }
    ev.status(port)
}

/// Closes every port of `d` and returns it to the 2-level ABI.
fn close_all<A: Arch>(hv: &impl DomainTable<A>, d: &Arc<Domain<A>>) {
    let ports: Vec<u32> = d.events.lock().ports.bound().collect();
    for port in ports {
        let _ = close(hv, d, port);
    }
    d.events.lock().drop_fifo(&d.mm, hv.frame_pool());
}

/// `EVTCHNOP_reset`.
pub fn reset<A: Arch>(hv: &impl DomainTable<A>, caller: &Arc<Domain<A>>, dom: DomId) -> Result<(), Errno> {
    let d = hv.resolve(caller, dom).ok_or(Errno::ESRCH)?;
    if d.id() != caller.id() {
        return Err(Errno::EPERM);
    }
    close_all(hv, &d);
    Ok(())
}

/// Destruction: no new ports, every port closed (peers' ports become unbound), FIFO
/// pages and registered `vcpu_info` pages unpinned.
pub fn teardown<A: Arch>(hv: &impl DomainTable<A>, d: &Arc<Domain<A>>) {
    d.events.lock().set_dying();
    close_all(hv, d);
    d.events.lock().drop_vcpu_info(&d.mm, hv.frame_pool());
}
