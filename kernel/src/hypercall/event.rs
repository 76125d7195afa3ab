//! `event_channel_op`.

use super::{Call, HcResult};
use crate::arch::Arch;
use crate::event::interdomain;
use keel_abi::event::*;
use keel_abi::Errno;

/// `event_channel_op(cmd, arg)`.
pub fn event_channel_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let cmd = c.arg32(0) as u64;
    if cmd == EVTCHNOP_SEND {
        // The one a guest makes all the time: its own small frame, not the whole match's.
        let x: EvtchnSend = c.guest.read_struct(c.args[1])?;
        interdomain::send(c.hv, c.domain, x.port)?;
        return Ok(0);
    }
    other_op(c, cmd)
}

/// Every `event_channel_op` but `EVTCHNOP_send`.
#[inline(never)]
fn other_op<A: Arch>(c: &Call<'_, '_, A>, cmd: u64) -> HcResult {
    let arg = c.args[1];
    let g = &c.guest;
    let d = c.domain;
    match cmd {
        EVTCHNOP_ALLOC_UNBOUND => {
            let mut x: EvtchnAllocUnbound = g.read_struct(arg)?;
            x.port = interdomain::alloc_unbound(c.hv, d, x.dom, x.remote_dom)?;
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_BIND_INTERDOMAIN => {
            let mut x: EvtchnBindInterdomain = g.read_struct(arg)?;
            x.local_port = interdomain::bind_interdomain(c.hv, d, x.remote_dom, x.remote_port)?;
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_BIND_VIRQ => {
            let mut x: EvtchnBindVirq = g.read_struct(arg)?;
            x.port = d.events.lock().bind_virq(x.virq, x.vcpu)?;
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_BIND_IPI => {
            let mut x: EvtchnBindIpi = g.read_struct(arg)?;
            x.port = d.events.lock().bind_ipi(x.vcpu)?;
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_CLOSE => {
            let x: EvtchnClose = g.read_struct(arg)?;
            interdomain::close(c.hv, d, x.port)?;
        }
        EVTCHNOP_STATUS => {
            let mut x: EvtchnStatus = g.read_struct(arg)?;
            let s = interdomain::status(c.hv, d, x.dom, x.port)?;
            (x.status, x.vcpu, x.u0, x.u1) = (s.status, s.vcpu, s.u0, s.u1);
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_BIND_VCPU => {
            let x: EvtchnBindVcpu = g.read_struct(arg)?;
            d.events.lock().bind_vcpu(x.port, x.vcpu)?;
        }
        EVTCHNOP_UNMASK => {
            let x: EvtchnUnmask = g.read_struct(arg)?;
            let w = d.events.lock().unmask(x.port)?;
            c.hv.apply(d, w);
        }
        EVTCHNOP_RESET => {
            let x: EvtchnReset = g.read_struct(arg)?;
            interdomain::reset(c.hv, d, x.dom)?;
        }
        EVTCHNOP_INIT_CONTROL => {
            let mut x: EvtchnInitControl = g.read_struct(arg)?;
            x.link_bits = crate::event::LINK_BITS;
            d.events.lock().init_control(&d.mm, x.vcpu, x.control_gfn, x.offset)?;
            g.write_struct(arg, &x)?;
        }
        EVTCHNOP_EXPAND_ARRAY => {
            let x: EvtchnExpandArray = g.read_struct(arg)?;
            let wakes = d.events.lock().expand_array(&d.mm, x.array_gfn)?;
            for w in wakes {
                c.hv.apply(d, w);
            }
        }
        EVTCHNOP_SET_PRIORITY => {
            let x: EvtchnSetPriority = g.read_struct(arg)?;
            d.events.lock().set_priority(x.port, x.priority)?;
        }
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}
