//! Event channels.
//!
//! - XSA-188 (FIFO control block): `init_control` at bad offsets, on frames that are not
//!   the caller's RAM, for vCPUs that do not exist, twice for one vCPU, and for one vCPU
//!   from two vCPUs at once (exactly one wins); `expand_array` before FIFO, on bad frames
//!   and past its 128 pages.
//! - XSA-221 (`SCHEDOP_poll` / port lookups on ports without a bucket): polls and port
//!   operations on ports beyond the ABI's limit, in the valid range but never allocated,
//!   and at `u32::MAX`, under both ABIs; bad `nr_ports` and port-array pointers.
//! - XSA-343 (event-channel locking): vCPU 1 sends, unmasks, rebinds, reprioritises,
//!   queries and closes whatever port vCPU 0 just made, while vCPU 0 allocates, binds,
//!   closes, and finally resets the whole table under it. Every answer must be success
//!   or the documented error; afterwards the domain starts FIFO again and its events work.
//! - XSA-107 (FIFO events for a vCPU without a control block): after the reset only vCPU
//!   0 registers one; events bound or moved to vCPU 1 are dropped.

use super::expect;
use crate::hcall::{err, name, Hv, Ret};
use crate::pages::{self, Page};
use crate::{cmdline, ensure, expect_eq, fail, say, Outcome, Platform};
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use keel_abi::event::*;
use keel_abi::hypercall::{EVENT_CHANNEL_OP, SCHED_OP};
use keel_abi::sched::{SchedPoll, SCHEDOP_POLL};
use keel_abi::xen::{DomId, DOMID_SELF};
use keel_abi::Errno;

/// 0 before the races, 1: init_control race, 2: port race, 3: stop.
static PHASE: AtomicU32 = AtomicU32::new(0);
/// The port vCPU 1 attacks.
static PORT: AtomicU32 = AtomicU32::new(0);
/// The control-block frame vCPU 1 offers for itself in the init_control race.
static CB_GFN: AtomicU64 = AtomicU64::new(0);
/// vCPU 1's init_control result (i64::MIN: not yet).
static SEC_INIT: AtomicI64 = AtomicI64::new(i64::MIN);
/// vCPU 1's calls in the port race, the unexpected answers, the last of them
/// (`op << 32 | -result`), and whether it left the race.
static SEC_CALLS: AtomicU64 = AtomicU64::new(0);
static SEC_BAD: AtomicU64 = AtomicU64::new(0);
static SEC_LAST_BAD: AtomicU64 = AtomicU64::new(0);
static SEC_DONE: AtomicU32 = AtomicU32::new(0);
/// The page behind all 128 event-array pages.
static ARRAY: AtomicPtr<Page> = AtomicPtr::new(core::ptr::null_mut());

/// Ports no ABI allocates: the FIFO limit and beyond.
const FAR_PORTS: [u32; 3] = [EVTCHN_FIFO_NR_CHANNELS, 0x8000_0000, u32::MAX];

fn op<P: Platform>(p: &P, cmd: u64, words: &mut [u32]) -> Ret {
    let mut b = [0u64; 4];
    for (i, w) in words.iter().enumerate() {
        b[i / 2] |= (*w as u64) << (32 * (i % 2));
    }
    let r = Hv(p).raw(EVENT_CHANNEL_OP, [cmd, b.as_mut_ptr() as u64, 0, 0, 0]);
    for (i, w) in words.iter_mut().enumerate() {
        *w = (b[i / 2] >> (32 * (i % 2))) as u32;
    }
    r
}

fn port_op<P: Platform>(p: &P, cmd: u64, port: u32) -> Ret {
    op(p, cmd, &mut [port])
}

fn init_control<P: Platform>(p: &P, gfn: u64, offset: u32, vcpu: u32) -> Ret {
    let mut init = EvtchnInitControl { control_gfn: gfn, offset, vcpu, link_bits: 0, _pad: [0; 7] };
    Hv(p).event_op(EVTCHNOP_INIT_CONTROL, &mut init)
}

fn expand<P: Platform>(p: &P, gfn: u64) -> Ret {
    Hv(p).event_op(EVTCHNOP_EXPAND_ARRAY, &mut EvtchnExpandArray { array_gfn: gfn })
}

fn poll<P: Platform>(p: &P, ports: &[u32], nr: u32, at: Option<u64>, timeout: u64) -> Ret {
    let ptr = at.unwrap_or(ports.as_ptr() as u64);
    let mut s = SchedPoll { ports: ptr, nr_ports: nr, _pad: [0; 4], timeout };
    Hv(p).sched_op(SCHEDOP_POLL, &mut s)
}

fn bind_ipi<P: Platform>(p: &P, vcpu: u32) -> Result<u32, crate::Failure> {
    let mut b = EvtchnBindIpi { vcpu, port: 0 };
    expect(Hv(p).event_op(EVTCHNOP_BIND_IPI, &mut b), 0, "bind_ipi")?;
    Ok(b.port)
}

fn gfn_of<P: Platform>(p: &P, page: &Page) -> u64 {
    p.gpa(page.va()) >> 12
}

fn page() -> Result<&'static Page, crate::Failure> {
    pages::alloc().ok_or_else(|| crate::Failure::new(format_args!("out of guest pages")))
}

/// XSA-221: every lookup of a port the domain cannot have is `-EINVAL`, however it gets
/// there; `limit` is the current ABI's first port beyond its range.
fn bad_ports<P: Platform>(p: &P, limit: u32) -> Outcome {
    let unbucketed = limit - 1;
    for port in FAR_PORTS.iter().copied().chain([limit, unbucketed]) {
        for cmd in [EVTCHNOP_SEND, EVTCHNOP_CLOSE, EVTCHNOP_UNMASK] {
            expect(port_op(p, cmd, port), err(Errno::EINVAL), "a port operation on an impossible port")?;
        }
        expect(op(p, EVTCHNOP_BIND_VCPU, &mut [port, 0]), err(Errno::EINVAL), "bind_vcpu of an impossible port")?;
        let mut s = [DOMID_SELF as u32, port, 0, 0, 0, 0];
        expect(op(p, EVTCHNOP_STATUS, &mut s), err(Errno::EINVAL), "status of an impossible port")?;
        // The port is checked before the ABI (as Xen): -EINVAL under 2-level too.
        expect(op(p, EVTCHNOP_SET_PRIORITY, &mut [port, 1]), err(Errno::EINVAL), "set_priority of an impossible port")?;
        expect(poll(p, &[port], 1, None, 1), err(Errno::EINVAL), "poll of an impossible port")?;
        expect(poll(p, &[port, 1], 2, None, 1), err(Errno::EINVAL), "poll of an impossible port and port 1")?;
    }
    expect(port_op(p, EVTCHNOP_SEND, 0), err(Errno::EINVAL), "send on port 0")?;
    expect(port_op(p, EVTCHNOP_CLOSE, 0), err(Errno::EINVAL), "close of port 0")?;
    let ports = [1u32; 130];
    for nr in [129, 0x8000_0000, u32::MAX] {
        expect(poll(p, &ports, nr, None, 1), err(Errno::EINVAL), "poll of more than 128 ports")?;
    }
    expect(poll(p, &ports, 1, Some(p.unmapped_va() as u64), 1), err(Errno::EFAULT), "poll of unmapped ports")?;
    expect(poll(p, &ports, 2, Some(u64::MAX - 3), 1), err(Errno::EFAULT), "poll of ports at the end of memory")?;
    let r = Hv(p).raw(SCHED_OP, [SCHEDOP_POLL, p.unmapped_va() as u64, 0, 0, 0]);
    expect(r, err(Errno::EFAULT), "poll with an unmapped argument")?;
    Ok(())
}

/// A pending port ends a poll at once; a poll whose deadline passed returns.
fn polls_return<P: Platform>(p: &P) -> Outcome {
    let a = bind_ipi(p, 0)?;
    let b = bind_ipi(p, 0)?;
    expect(port_op(p, EVTCHNOP_SEND, a), 0, "send")?;
    expect(poll(p, &[b, a], 2, None, 0), 0, "poll of a pending port")?;
    expect(poll(p, &[b], 1, None, 1), 0, "poll whose deadline passed")?;
    for port in [a, b] {
        expect(port_op(p, EVTCHNOP_CLOSE, port), 0, "close")?;
    }
    Ok(())
}

/// XSA-188: the FIFO control block.
fn control_block<P: Platform>(p: &P) -> Outcome {
    let cb = gfn_of(p, page()?);
    expect(expand(p, cb), err(Errno::EOPNOTSUPP), "expand_array before FIFO")?;
    let hole = p.hole().0 >> 12;
    for (gfn, offset, vcpu, want, what) in [
        (cb, 4, 0, err(Errno::EINVAL), "init_control at an unaligned offset"),
        (cb, 4096 - 64, 0, err(Errno::EINVAL), "init_control crossing the page"),
        (cb, 4096, 0, err(Errno::EINVAL), "init_control at offset 4096"),
        (cb, u32::MAX - 7, 0, err(Errno::EINVAL), "init_control at offset 2^32 - 8"),
        (hole, 0, 0, err(Errno::EINVAL), "init_control on a hole"),
        (u64::MAX, 0, 0, err(Errno::EINVAL), "init_control on frame 2^64 - 1"),
        (1 << 52, 0, 0, err(Errno::EINVAL), "init_control beyond the space"),
        (cb, 0, 64, err(Errno::ENOENT), "init_control for vCPU 64"),
        (cb, 0, u32::MAX, err(Errno::ENOENT), "init_control for vCPU 2^32 - 1"),
    ] {
        expect(init_control(p, gfn, offset, vcpu), want, what)?;
    }
    expect(expand(p, cb), err(Errno::EOPNOTSUPP), "expand_array after refused init_controls (still 2-level)")?;
    bad_ports(p, EVTCHN_2L_NR_CHANNELS)?;

    // vCPU 1's control block, registered by both vCPUs at once.
    CB_GFN.store(gfn_of(p, page()?), Ordering::Release);
    let mine = gfn_of(p, page()?);
    if let Err(e) = p.start_cpu(1) {
        fail!("starting vCPU 1: {e}");
    }
    PHASE.store(1, Ordering::Release);
    let r0 = init_control(p, mine, 0, 1);
    let r1 = loop {
        let r = SEC_INIT.load(Ordering::Acquire);
        if r != i64::MIN {
            break r;
        }
        core::hint::spin_loop();
    };
    let mut results = [r0, r1];
    results.sort_unstable();
    ensure!(
        results == [err(Errno::EINVAL), 0],
        "init_control for vCPU 1 from both vCPUs at once: {} and {} (one must win)",
        name(r0),
        name(r1)
    );
    expect(init_control(p, cb, 0, 0), 0, "init_control for vCPU 0")?;
    expect(init_control(p, cb, 512, 0), err(Errno::EINVAL), "init_control for vCPU 0 again")?;
    expect(init_control(p, mine, 2048, 1), err(Errno::EINVAL), "init_control for vCPU 1 again")?;

    for gfn in [hole, u64::MAX, 1 << 52] {
        expect(expand(p, gfn), err(Errno::EINVAL), "expand_array on a frame that is not RAM")?;
    }
    // One page over and over: the array is full at 128 pages.
    let arr = page()?;
    ARRAY.store(arr as *const Page as *mut Page, Ordering::Release);
    let mut pages = 0;
    let last = loop {
        let r = expand(p, gfn_of(p, arr));
        if r != 0 || pages > 1000 {
            break r;
        }
        pages += 1;
    };
    expect(last, err(Errno::ENOSPC), "expand_array past the end")?;
    expect_eq!(pages, EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, "event-array pages accepted");
    bad_ports(p, EVTCHN_FIFO_NR_CHANNELS)?;
    let a = bind_ipi(p, 0)?;
    for prio in [16, 0x8000_0000, u32::MAX] {
        expect(op(p, EVTCHNOP_SET_PRIORITY, &mut [a, prio]), err(Errno::EINVAL), "set_priority beyond 15")?;
    }
    expect(port_op(p, EVTCHNOP_CLOSE, a), 0, "close")?;
    Ok(())
}

/// What vCPU 1 runs (the scenario's secondary part).
pub fn secondary<P: Platform>(p: &P) {
    while PHASE.load(Ordering::Acquire) < 1 {
        core::hint::spin_loop();
    }
    SEC_INIT.store(init_control(p, CB_GFN.load(Ordering::Acquire), 0, 1), Ordering::Release);
    while PHASE.load(Ordering::Acquire) < 2 {
        core::hint::spin_loop();
    }
    let mut calls = 0u64;
    while PHASE.load(Ordering::Acquire) == 2 {
        let port = PORT.load(Ordering::Acquire);
        let c = calls as u32;
        let answers = [
            (EVTCHNOP_SEND, port_op(p, EVTCHNOP_SEND, port)),
            (EVTCHNOP_UNMASK, port_op(p, EVTCHNOP_UNMASK, port)),
            (EVTCHNOP_BIND_VCPU, op(p, EVTCHNOP_BIND_VCPU, &mut [port, c % 2])),
            (EVTCHNOP_SET_PRIORITY, op(p, EVTCHNOP_SET_PRIORITY, &mut [port, c % 16])),
            (EVTCHNOP_STATUS, op(p, EVTCHNOP_STATUS, &mut [DOMID_SELF as u32, port, 0, 0, 0, 0])),
            (EVTCHNOP_CLOSE, if c % 8 == 7 { port_op(p, EVTCHNOP_CLOSE, port) } else { 0 }),
        ];
        for (cmd, r) in answers {
            // After the reset the domain is 2-level again: set_priority is -ENOSYS.
            let ok = r == 0 || r == err(Errno::EINVAL) || (cmd == EVTCHNOP_SET_PRIORITY && r == err(Errno::ENOSYS));
            if !ok {
                SEC_BAD.fetch_add(1, Ordering::AcqRel);
                SEC_LAST_BAD.store(cmd << 32 | (r.unsigned_abs() & 0xffff_ffff), Ordering::Release);
            }
        }
        calls += answers.len() as u64;
        SEC_CALLS.store(calls, Ordering::Release);
    }
    SEC_DONE.store(1, Ordering::Release);
}

/// XSA-343: the port race, then a reset under vCPU 1's feet.
fn race<P: Platform>(p: &P, me: DomId, rounds: u32) -> Result<(u64, u64), crate::Failure> {
    let hv = Hv(p);
    let tolerated = |r: Ret, what: &str| -> Outcome {
        ensure!(r == 0 || r == err(Errno::EINVAL), "{what} during the race: {}", name(r));
        Ok(())
    };
    // SAFETY: only a page of the static pool is stored in ARRAY.
    let Some(array) = (unsafe { ARRAY.load(Ordering::Acquire).as_ref() }) else { fail!("no event array") };
    PHASE.store(2, Ordering::Release);
    for i in 0..rounds {
        // Nobody consumes the queues, and a port whose word is still LINKED is not
        // reused: clear every word, under Keel's feet (it must cope, as with any guest
        // that rewrites its words).
        array.fill(0, &[0; 4096]);
        let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
        expect(hv.event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a), 0, "alloc_unbound during the race")?;
        PORT.store(a.port, Ordering::Release);
        let mut b = EvtchnBindInterdomain { remote_dom: me, _pad: [0; 2], remote_port: a.port, local_port: 0 };
        let r = hv.event_op(EVTCHNOP_BIND_INTERDOMAIN, &mut b);
        // vCPU 1 may have closed the unbound end first.
        tolerated(r, "bind_interdomain")?;
        if r == 0 {
            PORT.store(b.local_port, Ordering::Release);
            tolerated(port_op(p, EVTCHNOP_SEND, b.local_port), "send")?;
            tolerated(op(p, EVTCHNOP_BIND_VCPU, &mut [a.port, i % 2]), "bind_vcpu")?;
        }
        tolerated(port_op(p, EVTCHNOP_CLOSE, a.port), "close")?;
        let ipi = bind_ipi(p, i % 2)?;
        PORT.store(ipi, Ordering::Release);
        tolerated(port_op(p, EVTCHNOP_SEND, ipi), "send")?;
        if r == 0 {
            tolerated(port_op(p, EVTCHNOP_CLOSE, b.local_port), "close")?;
        }
        tolerated(port_op(p, EVTCHNOP_CLOSE, ipi), "close")?;
    }
    // Leave ports behind and reset the table while vCPU 1 goes on.
    for v in 0..64 {
        let port = bind_ipi(p, v % 2)?;
        PORT.store(port, Ordering::Release);
    }
    let before = SEC_CALLS.load(Ordering::Acquire);
    let mut reset = EvtchnReset { dom: DOMID_SELF };
    expect(hv.event_op(EVTCHNOP_RESET, &mut reset), 0, "reset during the race")?;
    while SEC_CALLS.load(Ordering::Acquire) < before + 600 {
        core::hint::spin_loop();
    }
    PHASE.store(3, Ordering::Release);
    while SEC_DONE.load(Ordering::Acquire) == 0 {
        core::hint::spin_loop();
    }
    let bad = SEC_BAD.load(Ordering::Acquire);
    if bad != 0 {
        let last = SEC_LAST_BAD.load(Ordering::Acquire);
        fail!(
            "vCPU 1 got {bad} undocumented answers in the race (last: cmd {} gave -{})",
            last >> 32,
            last & 0xffff_ffff
        );
    }
    Ok((u64::from(rounds), SEC_CALLS.load(Ordering::Acquire)))
}

/// After the reset: 2-level again, and FIFO can start afresh and deliver.
fn after_reset<P: Platform>(p: &P) -> Outcome {
    let cb = page()?;
    let arr = page()?;
    expect(expand(p, gfn_of(p, arr)), err(Errno::EOPNOTSUPP), "expand_array after the reset (2-level again)")?;
    expect(init_control(p, gfn_of(p, cb), 0, 0), 0, "init_control after the reset")?;
    expect(expand(p, gfn_of(p, arr)), 0, "expand_array after the reset")?;
    let port = bind_ipi(p, 0)?;
    expect(port_op(p, EVTCHNOP_SEND, port), 0, "send after the reset")?;
    let word = arr.word(4 * port as usize).load(Ordering::Acquire);
    ensure!(word & 1 << EVTCHN_FIFO_PENDING != 0, "port {port} not pending after a send (word {word:#x})");
    // XSA-107: vCPU 1 has no control block in the new FIFO table; events bound to it,
    // or moved to it, are dropped.
    let other = bind_ipi(p, 1)?;
    expect(port_op(p, EVTCHNOP_SEND, other), 0, "send to a vCPU without a control block")?;
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    expect(Hv(p).event_op(EVTCHNOP_ALLOC_UNBOUND, &mut a), 0, "alloc_unbound")?;
    expect(op(p, EVTCHNOP_BIND_VCPU, &mut [a.port, 1]), 0, "bind_vcpu to a vCPU without a control block")?;
    expect(port_op(p, EVTCHNOP_SEND, a.port), 0, "send on an unbound port")?;
    expect(port_op(p, EVTCHNOP_UNMASK, other), 0, "unmask on a vCPU without a control block")?;
    Ok(())
}

pub fn run<P: Platform>(p: &P, me: DomId) -> Outcome {
    p.init_interrupts();
    bad_ports(p, EVTCHN_2L_NR_CHANNELS)?;
    polls_return(p)?;
    control_block(p)?;
    polls_return(p)?;
    say!(p, "xsa events: bad init_control/expand_array refused, one of two racing init_controls won, 128 array pages then ENOSPC, impossible ports EINVAL in both ABIs");
    let rounds = cmdline::get_u64(p.cmdline(), "keel.race").unwrap_or(1000) as u32;
    let (rounds, calls) = race(p, me, rounds)?;
    after_reset(p)?;
    say!(p, "xsa events: {rounds} rounds of alloc/bind/close against {calls} racing calls from vCPU 1, a reset under them; FIFO works afterwards");
    Ok(())
}
