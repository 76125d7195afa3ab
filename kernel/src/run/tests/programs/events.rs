//! Programs that talk over event channels: ping-pong partners, polls, a signaller.

use super::*;

/// Domain `peer`'s partner in a ping-pong of `n` round trips: allocates the port `peer`
/// binds to, then answers each event with one, `n` times, and prints its count.
pub fn pong(n: u64, peer: DomId) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: peer, port: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    img.a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4);
    img.set_send_port();
    counted_loop(&mut img, n, false);
    img.finish()
}

/// The other side: binds to port `peer_port` of `peer` (retrying until it exists),
/// sends first, and counts `n` answers.
pub fn ping(n: u64, peer: DomId, peer_port: u32) -> Vec<u8> {
    let mut img = Image::new();
    img.put(
        BIND_INTERDOMAIN,
        &EvtchnBindInterdomain { remote_dom: peer, _pad: [0; 2], remote_port: peer_port, local_port: 0 },
    );
    let a = &mut img.a;
    let (retry, bound) = (a.here(), a.label());
    a.hypercall(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, DATA + BIND_INTERDOMAIN]);
    a.br(Cond::Eq, 0, 6, bound).i(Insn::Yield).jmp(retry).bind(bound);
    a.set(11, DATA + BIND_INTERDOMAIN).load(4, 8, 11, 8);
    img.set_send_port();
    // Binding marks the new port pending: consume that first.
    img.wait_port();
    img.send();
    counted_loop(&mut img, n, true);
    img.finish()
}

/// One side of a ping-pong over the static event channel `port` (connected by the
/// domain builder): the pinger sends first; both count `n` events.
pub fn static_side(n: u64, port: u32, pinger: bool) -> Vec<u8> {
    let mut img = Image::new();
    img.a.set(8, port as u64);
    img.set_send_port();
    if pinger {
        img.send();
    }
    counted_loop(&mut img, n, pinger);
    img.finish()
}

/// `n` times: wait for the port, count, send (a pinger sends only while more are due).
/// Prints `count=` with the count, kept in memory at `FLAG` across the loop.
fn counted_loop(img: &mut Image, n: u64, pinger: bool) {
    let a = &mut img.a;
    a.set(15, DATA + FLAG).store(8, 6, 15, 0);
    let (top, done) = (a.here(), a.label());
    img.wait_port();
    let a = &mut img.a;
    a.set(15, DATA + FLAG).load(8, 14, 15, 0).i(Insn::AddI(14, 14, 1)).store(8, 14, 15, 0);
    if pinger {
        a.set(13, n).br(Cond::Eq, 14, 13, done);
        img.send();
        img.a.jmp(top);
    } else {
        img.send();
        let a = &mut img.a;
        a.set(15, DATA + FLAG).load(8, 14, 15, 0).set(13, n).br(Cond::Ne, 14, 13, top);
    }
    let a = &mut img.a;
    a.bind(done).set(15, DATA + FLAG).load(8, 14, 15, 0);
    img.print_hex("count=", 14);
}

/// Polls a port nobody signals with a timeout `ns` ahead; prints how long it waited.
pub fn poll_timeout(ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 });
    img.put(POLL, &SchedPoll { ports: DATA + PORTS, nr_ports: 1, _pad: [0; 4], timeout: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    let a = &mut img.a;
    a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4).set(11, DATA + PORTS).store(4, 8, 11, 0);
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + POLL).store(8, 15, 11, 16);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_POLL, DATA + POLL]);
    img.a.i(Insn::Time(15)).alu(Op::Sub, 14, 15, 14);
    img.print_hex("polled=", 14);
    img.finish()
}

/// Allocates a port for `peer` and polls it with a timeout `ns` ahead; prints how long
/// it waited (the peer signals it long before the timeout).
pub fn poll_signalled(ns: u64, peer: DomId) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: peer, port: 0 });
    img.put(POLL, &SchedPoll { ports: DATA + PORTS, nr_ports: 1, _pad: [0; 4], timeout: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    let a = &mut img.a;
    a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4).set(11, DATA + PORTS).store(4, 8, 11, 0);
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + POLL).store(8, 15, 11, 16);
    img.a.set(11, DATA + FLAG).store(8, 14, 11, 0);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_POLL, DATA + POLL]);
    let a = &mut img.a;
    a.i(Insn::Time(15)).set(11, DATA + FLAG).load(8, 14, 11, 0).alu(Op::Sub, 14, 15, 14);
    img.print_hex("polled=", 14);
    img.finish()
}

/// Binds port `peer_port` of `peer` (retrying until it exists), spins `delay`
/// iterations, sends once and powers off.
pub fn signaller(peer: DomId, peer_port: u32, delay: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(
        BIND_INTERDOMAIN,
        &EvtchnBindInterdomain { remote_dom: peer, _pad: [0; 2], remote_port: peer_port, local_port: 0 },
    );
    let a = &mut img.a;
    let (retry, bound) = (a.here(), a.label());
    a.hypercall(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, DATA + BIND_INTERDOMAIN]);
    a.br(Cond::Eq, 0, 6, bound).i(Insn::Yield).jmp(retry).bind(bound);
    a.set(11, DATA + BIND_INTERDOMAIN).load(4, 8, 11, 8).set(14, 0).set(15, delay);
    let spin = a.here();
    a.i(Insn::AddI(14, 14, 1)).br(Cond::Ne, 14, 15, spin);
    img.set_send_port();
    img.send();
    img.finish()
}
