//! `keel.test=control [keel.victim=NAME]`: Keel's control interface from a control
//! domain. It lists the domains and finds its sibling `NAME` (default `victim`, a
//! spinner), sees the sibling's CPU time grow, pauses it and sees it stop, unpauses it,
//! sets its weight and affinity, reads its console and writes to it, tries garbage
//! arguments, then destroys it and waits for `VIRQ_DOM_EXC` and for the id to be gone.
//!
//! `keel.test=control-denied`: a domain without the control capability gets `-EPERM`
//! for every sub-op and cannot bind `VIRQ_DOM_EXC`.

use crate::events::{self, wait_hits};
use crate::hcall::{err, name, Hv};
use crate::pages::{self, Page};
use crate::scenarios::events::spin;
use crate::{cmdline, ensure, expect_eq, fail, say, Failure, Outcome, Platform};
use keel_abi::control::*;
use keel_abi::event::{EvtchnBindVirq, EVTCHNOP_BIND_VIRQ};
use keel_abi::xen::{DOMID_SELF, VIRQ_DOM_EXC};
use keel_abi::{Errno, Wire};

const MS: u64 = 1_000_000;

pub(super) fn page() -> Result<&'static Page, Failure> {
    pages::alloc().ok_or_else(|| Failure::new(format_args!("out of guest pages")))
}

/// `control_op(cmd, &s)`.
pub(super) fn ctl<P: Platform, T: Wire>(p: &P, cmd: u32, s: &mut T) -> i64 {
    Hv(p).with(KEEL_CONTROL_OP, u64::from(cmd), s)
}

pub(super) fn query<P: Platform>(p: &P, domid: u16) -> Result<CtlDomainInfo, i64> {
    let mut q = CtlDomainInfo { domid, ..CtlDomainInfo::ZERO };
    match ctl(p, CTL_QUERY, &mut q) {
        0 => Ok(q),
        e => Err(e),
    }
}

fn name_of(info: &CtlDomainInfo) -> &str {
    let n = info.name.iter().position(|&b| b == 0).unwrap_or(info.name.len());
    core::str::from_utf8(&info.name[..n]).unwrap_or("?")
}

/// The live domains, from `CTL_LIST` into `buf`.
pub(super) fn list<P: Platform>(p: &P, buf: &Page) -> Result<([CtlDomainInfo; 8], usize), Failure> {
    let mut l = CtlList { start_domid: 0, _pad: [0; 2], max_entries: CTL_LIST_MAX, buffer: buf.va() as u64 };
    let n = ctl(p, CTL_LIST, &mut l);
    ensure!(n > 0, "CTL_LIST: {}", name(n));
    let mut out = [CtlDomainInfo::ZERO; 8];
    let n = (n as usize).min(out.len());
    for (i, slot) in out.iter_mut().take(n).enumerate() {
        let mut b = [0u8; CtlDomainInfo::SIZE];
        buf.read(i * CtlDomainInfo::SIZE, &mut b);
        *slot = CtlDomainInfo::from_bytes(&b).unwrap_or(CtlDomainInfo::ZERO);
    }
    Ok((out, n))
}

pub(super) fn cpu_time<P: Platform>(p: &P, domid: u16) -> Result<u64, Failure> {
    match query(p, domid) {
        Ok(i) => Ok(i.cpu_time_ns),
        Err(e) => fail!("query d{domid}: {}", name(e)),
    }
}

/// The CPU time of a domain just paused, once its vCPUs have left their CPUs: a pause
/// takes effect at each CPU's next decision, which a busy host may delay by more than a
/// few milliseconds of guest time. Waits (guest time, at most 2 s) until two reads 20 ms
/// apart agree.
pub(super) fn settled_cpu_time<P: Platform>(p: &P, domid: u16) -> Result<u64, Failure> {
    let mut last = cpu_time(p, domid)?;
    for _ in 0..100 {
        spin(p, 20 * MS);
        let now = cpu_time(p, domid)?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    fail!("d{domid}'s CPU time still grows 2 s after CTL_PAUSE")
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    let victim_name = cmdline::get(p.cmdline(), "keel.victim").unwrap_or("victim");
    let v = hv.raw(KEEL_CONTROL_OP, [u64::from(CTL_VERSION), 0, 0, 0, 0]);
    expect_eq!(v, 0x0001_0004, "CTL_VERSION");
    say!(p, "control: interface {}.{}", v >> 16, v & 0xffff);

    events::setup_two_level(p)?;
    p.init_interrupts();
    p.enable_interrupts();
    let mut b = EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 };
    expect_eq!(hv.event_op(EVTCHNOP_BIND_VIRQ, &mut b), 0, "bind_virq(VIRQ_DOM_EXC)");
    let dom_exc = b.port;

    let buf = page()?;
    let (infos, n) = list(p, buf)?;
    let me = match query(p, DOMID_SELF) {
        Ok(i) => i.domid,
        Err(e) => fail!("query DOMID_SELF: {}", name(e)),
    };
    let listed = infos[..n].iter().find(|i| i.domid == me).map(|i| i.caps);
    expect_eq!(listed, Some(CAP_CONTROL), "its own capabilities in the list");
    let Some(victim) = infos[..n].iter().find(|i| name_of(i) == victim_name) else {
        fail!("no domain {victim_name} among the {n} listed")
    };
    let id = victim.domid;
    ensure!(victim.caps == 0, "{victim_name} has capabilities {:#x}", victim.caps);
    ensure!(victim.state <= CTL_STATE_BLOCKED, "{victim_name} is in state {}", victim.state);
    say!(p, "control: list: {n} domains; {victim_name} is d{id}, {} vCPU(s), {} pages", victim.vcpus, victim.tot_pages);

    let t0 = cpu_time(p, id)?;
    spin(p, 50 * MS);
    let t1 = cpu_time(p, id)?;
    ensure!(t1 > t0, "{victim_name} got no CPU time: {t0} -> {t1}");
    let mut d = CtlDomain { domid: id, _pad: [0; 6] };
    expect_eq!(ctl(p, CTL_PAUSE, &mut d), 0, "CTL_PAUSE");
    expect_eq!(query(p, id).map(|i| i.state), Ok(CTL_STATE_PAUSED), "state after CTL_PAUSE");
    let t2 = settled_cpu_time(p, id)?;
    spin(p, 100 * MS);
    let t3 = cpu_time(p, id)?;
    expect_eq!(t3, t2, "CPU time while paused");
    expect_eq!(ctl(p, CTL_UNPAUSE, &mut d), 0, "CTL_UNPAUSE");
    spin(p, 50 * MS);
    let t4 = cpu_time(p, id)?;
    ensure!(t4 > t3, "{victim_name} did not run again after CTL_UNPAUSE");
    say!(p, "control: pause: CPU time stopped for 100 ms; unpause: it runs again");

    let mut s = CtlSched { domid: id, weight: 512, cap: 0, _pad: [0; 3] };
    expect_eq!(ctl(p, CTL_SET_SCHED, &mut s), 0, "CTL_SET_SCHED");
    let mut s = CtlSched { domid: id, ..CtlSched::ZERO };
    expect_eq!(ctl(p, CTL_GET_SCHED, &mut s), 0, "CTL_GET_SCHED");
    expect_eq!((s.weight, s.cap), (512, 0), "weight and cap");
    let mut a = CtlAffinity { domid: id, _pad: [0; 2], vcpu: CTL_ALL_VCPUS, cpumap: [1, 0, 0, 0] };
    expect_eq!(ctl(p, CTL_SET_AFFINITY, &mut a), 0, "CTL_SET_AFFINITY");
    say!(p, "control: weight 512, affinity CPU 0");

    let out = page()?;
    let mut c = CtlConsole { domid: id, _pad: [0; 2], len: 4096, buffer: out.va() as u64, offset: 0 };
    let got = ctl(p, CTL_CONSOLE_READ, &mut c);
    ensure!(got > 0, "CTL_CONSOLE_READ: {}", name(got));
    // The spinner's last line is the newest output.
    let mut text = [0u8; 256];
    let shown = (got as usize).min(text.len());
    out.read((got as usize - shown) & !3, &mut text[..shown]);
    let text = core::str::from_utf8(&text[..shown]).unwrap_or("");
    ensure!(text.contains("spinning"), "{victim_name}'s console: {text:?}");
    out.fill(0, b"hello\n");
    let mut w = CtlConsole { domid: id, _pad: [0; 2], len: 6, buffer: out.va() as u64, offset: 0 };
    expect_eq!(ctl(p, CTL_CONSOLE_WRITE, &mut w), 6, "CTL_CONSOLE_WRITE");
    say!(p, "control: console: read {got} bytes, wrote 6");

    garbage(p, id, me)?;
    say!(p, "control: garbage arguments refused, Keel still answers");

    expect_eq!(ctl(p, CTL_DESTROY, &mut d), 0, "CTL_DESTROY");
    wait_hits(p, dom_exc, 1);
    let mut waited = 0;
    while query(p, id).is_ok() {
        ensure!(waited < 5000, "d{id} still there 5 s after CTL_DESTROY");
        spin(p, MS);
        waited += 1;
    }
    expect_eq!(query(p, id).map(|i| i.domid), Err(err(Errno::ESRCH)), "query after destroy");
    expect_eq!(ctl(p, CTL_DESTROY, &mut d), err(Errno::ESRCH), "destroy again");
    let (infos, n) = list(p, buf)?;
    ensure!(infos[..n].iter().all(|i| i.domid != id), "d{id} still listed");
    say!(p, "control: destroy: VIRQ_DOM_EXC, d{id} released");
    Ok(())
}

/// Garbage: bad ids, huge lengths, unmapped and unaligned buffers, bad padding.
fn garbage<P: Platform>(p: &P, id: u16, me: u16) -> Outcome {
    let hv = Hv(p);
    let unmapped = 0x7f_0000_0000u64;
    expect_eq!(query(p, 0x7fef).map(|i| i.domid), Err(err(Errno::ESRCH)), "query a missing id");
    expect_eq!(query(p, 0xffff).map(|i| i.domid), Err(err(Errno::ESRCH)), "query 0xffff");
    let mut d = CtlDomain { domid: me, _pad: [0; 6] };
    expect_eq!(ctl(p, CTL_PAUSE, &mut d), err(Errno::EINVAL), "pause itself");
    expect_eq!(ctl(p, CTL_DESTROY, &mut d), err(Errno::EINVAL), "destroy itself");
    let mut d = CtlDomain { domid: id, _pad: [0, 0, 0, 0, 0, 1] };
    expect_eq!(ctl(p, CTL_PAUSE, &mut d), err(Errno::EINVAL), "padding");
    let mut l = CtlList { start_domid: 0, _pad: [0; 2], max_entries: u32::MAX, buffer: 0 };
    expect_eq!(ctl(p, CTL_LIST, &mut l), err(Errno::EINVAL), "list u32::MAX entries");
    let mut l = CtlList { start_domid: 0, _pad: [0; 2], max_entries: 4, buffer: unmapped };
    expect_eq!(ctl(p, CTL_LIST, &mut l), err(Errno::EFAULT), "list into unmapped memory");
    let mut c = CtlConsole { domid: id, _pad: [0; 2], len: u32::MAX, buffer: 0, offset: 0 };
    expect_eq!(ctl(p, CTL_CONSOLE_READ, &mut c), err(Errno::EINVAL), "console read of 4 GiB");
    let mut c = CtlConsole { domid: id, _pad: [0; 2], len: 64, buffer: unmapped, offset: 0 };
    expect_eq!(ctl(p, CTL_CONSOLE_READ, &mut c), err(Errno::EFAULT), "console read to unmapped memory");
    expect_eq!(ctl(p, CTL_CONSOLE_WRITE, &mut c), err(Errno::EFAULT), "console write from unmapped memory");
    let odd = [0u8; 80];
    let mut c = CtlConsole { domid: id, _pad: [0; 2], len: 16, buffer: odd.as_ptr() as u64 + 3, offset: 0 };
    let r = ctl(p, CTL_CONSOLE_READ, &mut c);
    ensure!((0..=16).contains(&r), "console read to an unaligned buffer: {}", name(r));
    let mut s = CtlShutdown { domid: id, _pad: [0; 2], reason: 99 };
    expect_eq!(ctl(p, CTL_SHUTDOWN, &mut s), err(Errno::EINVAL), "shutdown reason 99");
    let mut s = CtlSched { domid: id, weight: 0, cap: 0, _pad: [0; 3] };
    expect_eq!(ctl(p, CTL_SET_SCHED, &mut s), err(Errno::EINVAL), "weight 0");
    let mut s = CtlSched { domid: id, weight: 1, cap: 200, _pad: [0; 3] };
    expect_eq!(ctl(p, CTL_SET_SCHED, &mut s), err(Errno::EINVAL), "cap 200");
    let mut a = CtlAffinity { domid: id, _pad: [0; 2], vcpu: 0, cpumap: [0; 4] };
    expect_eq!(ctl(p, CTL_SET_AFFINITY, &mut a), err(Errno::EINVAL), "empty affinity");
    let mut a = CtlAffinity { domid: id, _pad: [0; 2], vcpu: 77, cpumap: [1, 0, 0, 0] };
    expect_eq!(ctl(p, CTL_SET_AFFINITY, &mut a), err(Errno::EINVAL), "affinity of vCPU 77");
    expect_eq!(hv.raw(KEEL_CONTROL_OP, [99, 0, 0, 0, 0]), err(Errno::ENOSYS), "sub-op 99");
    for cmd in [CTL_QUERY, CTL_PAUSE, CTL_LIST, CTL_CONSOLE_READ] {
        let r = hv.raw(KEEL_CONTROL_OP, [u64::from(cmd), unmapped, 0, 0, 0]);
        expect_eq!(r, err(Errno::EFAULT), "unmapped struct");
    }
    expect_eq!(query(p, id).map(|i| i.domid), Ok(id), "the sibling is still there");
    Ok(())
}

/// `keel.test=control-denied`.
pub fn denied<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    let mut d = CtlDomain { domid: 1, _pad: [0; 6] };
    let mut n = 0;
    for cmd in (0..=16).chain([u32::MAX]) {
        expect_eq!(ctl(p, cmd, &mut d), err(Errno::EPERM), "control sub-op without the capability");
        expect_eq!(hv.raw(KEEL_CONTROL_OP, [u64::from(cmd), 0, 0, 0, 0]), err(Errno::EPERM), "no struct");
        n += 1;
    }
    let mut b = EvtchnBindVirq { virq: VIRQ_DOM_EXC, vcpu: 0, port: 0 };
    expect_eq!(hv.event_op(EVTCHNOP_BIND_VIRQ, &mut b), err(Errno::EBUSY), "bind_virq(VIRQ_DOM_EXC)");
    say!(p, "control-denied: {n} sub-ops, each EPERM; VIRQ_DOM_EXC: EBUSY");
    Ok(())
}
