//! `keel.test=xsa [keel.rounds=N]`: the attacks behind Xen's security advisories on what
//! Keel implements, each refused with the error `docs/abi.md` documents while Keel
//! stays up (`docs/security.md` lists the advisories and why others do not apply).
//! Needs 2 vCPUs: the races run on both.
//!
//! | part | advisories | what it tries |
//! |---|---|---|
//! | [`events`] | XSA-188, XSA-221, XSA-343 | FIFO control blocks twice, at once from two vCPUs, at bad offsets and frames; the event array grown past its end and before FIFO; polls and port operations on out-of-range ports in both ABIs; close, rebind, send, unmask and reset racing between vCPUs |
//! | [`grants`] | XSA-255, XSA-380, XSA-382, maptrack | version 2, status frames, frames beyond the maximum; one grant mapped 4096 times at once, over and over past the mapping limit, so that leaked handles would show |
//! | [`memory`] | `memory_op` | reservations and physmap placements of other domains, frames beyond the guest-physical space, bad orders and extents |
//! | [`console`] | `console_io` | huge and negative lengths, unmapped and wrapping buffers |

mod console;
mod events;
mod grants;
mod memory;

use crate::hcall::{name, Hv, Ret};
use crate::{fail, say, Outcome, Platform};
use keel_abi::event::{EvtchnAllocUnbound, EvtchnStatus, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_CLOSE, EVTCHNOP_STATUS};
use keel_abi::xen::{DomId, DOMID_FIRST_RESERVED, DOMID_SELF};

/// Fails unless `got` is `want`.
fn expect(got: Ret, want: Ret, what: &str) -> Outcome {
    if got != want {
        fail!("{what}: got {} ({got}), expected {} ({want})", name(got), name(want));
    }
    Ok(())
}

/// The caller's domain id: the remote end Keel records for a port the caller allocates
/// for itself.
fn own_domid<P: Platform>(p: &P) -> Result<DomId, crate::Failure> {
    let hv = Hv(p);
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    expect(hv.event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a), 0, "alloc_unbound(self)")?;
    let mut s = EvtchnStatus { dom: DOMID_SELF, _pad: [0; 2], port: a.port, status: 0, vcpu: 0, u0: 0, u1: 0 };
    expect(hv.event_op(EVTCHNOP_STATUS, &mut s), 0, "status of an unbound port")?;
    let mut c = keel_abi::event::EvtchnPort { port: a.port };
    expect(hv.event_op(EVTCHNOP_CLOSE, &mut c), 0, "close")?;
    let id = (s.u0 & 0xffff) as DomId;
    if id >= DOMID_FIRST_RESERVED {
        fail!("own domain id from an unbound port's status: {id:#x}");
    }
    Ok(id)
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    if p.nr_cpus() < 2 {
        fail!("xsa needs 2 vCPUs, has {}", p.nr_cpus());
    }
    let me = own_domid(p)?;
    say!(p, "xsa: domain {me} on {} vCPUs", p.nr_cpus());
    console::run(p)?;
    memory::run(p, me)?;
    grants::run(p, me)?;
    events::run(p, me)?;
    let hv = Hv(p);
    expect(hv.xen_version(keel_abi::version::XENVER_VERSION, 0), 0x0004_0013, "xen_version after the attacks")?;
    say!(p, "xsa: every attack refused; Keel still answers");
    Ok(())
}

pub use events::secondary;
