//! Event channels from the guest's side: placing shared_info, registering `vcpu_info`,
//! the FIFO control blocks and event arrays, and the upcall handler that takes pending
//! events (2-level or FIFO, as the guest chose) and counts them per port.

use crate::check::{Failure, Outcome};
use crate::hcall::{name, Hv, Ret};
use crate::irq::MAX_CPUS;
use crate::pages::{self, Page};
use crate::{fail, Platform};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use keel_abi::event::*;
use keel_abi::layout::{VCPU_INFO_PENDING_SEL, VCPU_INFO_UPCALL_PENDING};
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::vcpu::{VcpuRegisterVcpuInfo, VCPUOP_REGISTER_VCPU_INFO};
use keel_abi::xen::DOMID_SELF;

/// Ports whose events are counted.
pub const TRACKED: usize = 1024;
/// Per port: events taken.
static HITS: [AtomicU32; TRACKED] = [const { AtomicU32::new(0) }; TRACKED];

/// 0 none, 1 2-level, 2 FIFO.
static MODE: AtomicU32 = AtomicU32::new(0);
const TWO_LEVEL: u32 = 1;
const FIFO: u32 = 2;

type PagePtr = AtomicPtr<Page>;

static SHARED_INFO: PagePtr = AtomicPtr::new(core::ptr::null_mut());
static VCPU_INFO: [PagePtr; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static CONTROL: [PagePtr; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// FIFO event-array pages (1024 ports each).
static ARRAY: [PagePtr; 4] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 4];
/// Per CPU and queue: the head the guest consumes next (0: read the control block).
static LOCAL_HEAD: [[AtomicU32; 16]; MAX_CPUS] = [const { [const { AtomicU32::new(0) }; 16] }; MAX_CPUS];
/// Byte offsets of `evtchn_pending` and `evtchn_mask` in shared_info.
static PENDING_AT: AtomicU32 = AtomicU32::new(0);
static MASK_AT: AtomicU32 = AtomicU32::new(0);

fn page(p: &PagePtr) -> Option<&'static Page> {
    // SAFETY: only pages of the static pool (`pages::alloc`) are stored here.
    unsafe { p.load(Ordering::Acquire).as_ref() }
}

fn set(p: &PagePtr, page: &'static Page) {
    p.store(page as *const Page as *mut Page, Ordering::Release);
}

fn take_page() -> Result<&'static Page, Failure> {
    pages::alloc().ok_or_else(|| Failure::new(format_args!("out of guest pages")))
}

fn gfn<P: Platform>(p: &P, page: &Page) -> u64 {
    p.gpa(page.va()) >> 12
}

/// Events taken on `port` so far.
pub fn hits(port: u32) -> u32 {
    HITS.get(port as usize).map_or(0, |h| h.load(Ordering::Acquire))
}

fn check(r: Ret, what: &str) -> Outcome {
    if r != 0 {
        fail!("{what}: {}", name(r));
    }
    Ok(())
}

/// 2-level: places shared_info over a page of ours and registers this CPU's
/// `vcpu_info` (the boot CPU first).
pub fn setup_two_level<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    if page(&SHARED_INFO).is_none() {
        let si = take_page()?;
        let mut map =
            XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn: gfn(p, si) };
        check(hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut map), "add_to_physmap(shared_info)")?;
        PENDING_AT.store(P::LAYOUT.evtchn_pending as u32, Ordering::Release);
        MASK_AT.store(P::LAYOUT.evtchn_mask as u32, Ordering::Release);
        set(&SHARED_INFO, si);
        MODE.store(TWO_LEVEL, Ordering::Release);
    }
    register_vcpu_info(p)
}

/// Registers this CPU's `vcpu_info` in a page of its own.
pub fn register_vcpu_info<P: Platform>(p: &P) -> Outcome {
    let cpu = p.cpu() as usize % MAX_CPUS;
    let vi = take_page()?;
    let r = VcpuRegisterVcpuInfo { mfn: gfn(p, vi), offset: 0, rsvd: 0 };
    check(Hv(p).vcpu_op(VCPUOP_REGISTER_VCPU_INFO, p.cpu(), &r), "register_vcpu_info")?;
    set(&VCPU_INFO[cpu], vi);
    Ok(())
}

/// FIFO: registers this CPU's control block (switching the domain to FIFO) and, the
/// first time, the first event-array page.
pub fn setup_fifo<P: Platform>(p: &P) -> Outcome {
    setup_two_level(p)?;
    let cpu = p.cpu() as usize % MAX_CPUS;
    let cb = take_page()?;
    let mut init = EvtchnInitControl { control_gfn: gfn(p, cb), offset: 0, vcpu: p.cpu(), link_bits: 0, _pad: [0; 7] };
    check(Hv(p).event_op(EVTCHNOP_INIT_CONTROL, &mut init), "init_control")?;
    if init.link_bits != EVTCHN_FIFO_LINK_BITS as u8 {
        fail!("init_control: link_bits {}, expected 17", init.link_bits);
    }
    set(&CONTROL[cpu], cb);
    MODE.store(FIFO, Ordering::Release);
    if page(&ARRAY[0]).is_none() {
        expand(p, 0)?;
    }
    Ok(())
}

/// Adds event-array page `i` (ports `1024 i` ..).
pub fn expand<P: Platform>(p: &P, i: usize) -> Outcome {
    let arr = take_page()?;
    let mut e = EvtchnExpandArray { array_gfn: gfn(p, arr) };
    check(Hv(p).event_op(EVTCHNOP_EXPAND_ARRAY, &mut e), "expand_array")?;
    set(&ARRAY[i], arr);
    Ok(())
}

fn event_word(port: u32) -> Option<&'static AtomicU32> {
    let arr = page(ARRAY.get(port as usize / 1024)?)?;
    Some(arr.word((port as usize % 1024) * 4))
}

fn count(port: u32) {
    if let Some(h) = HITS.get(port as usize) {
        h.fetch_add(1, Ordering::AcqRel);
    }
}

/// The upcall: takes every pending, unmasked event of this CPU and counts it.
pub fn on_upcall<P: Platform>(p: &P) {
    let cpu = p.cpu() as usize % MAX_CPUS;
    let Some(vi) = page(&VCPU_INFO[cpu]) else { return };
    vi.word(VCPU_INFO_UPCALL_PENDING).fetch_and(!0xff, Ordering::AcqRel);
    match MODE.load(Ordering::Acquire) {
        TWO_LEVEL => two_level_events(vi),
        FIFO => fifo_events(cpu),
        _ => {}
    }
}

fn two_level_events(vi: &Page) {
    let Some(si) = page(&SHARED_INFO) else { return };
    let (pending, mask) = (PENDING_AT.load(Ordering::Acquire) as usize, MASK_AT.load(Ordering::Acquire) as usize);
    loop {
        let lo = vi.word(VCPU_INFO_PENDING_SEL).swap(0, Ordering::AcqRel) as u64;
        let hi = vi.word(VCPU_INFO_PENDING_SEL + 4).swap(0, Ordering::AcqRel) as u64;
        let sel = lo | hi << 32;
        if sel == 0 {
            return;
        }
        for w in (0..64).filter(|w| sel & (1 << w) != 0) {
            for b in 0..64 {
                let port = w * 64 + b;
                if si.test_bit(pending, port) && !si.test_bit(mask, port) && si.test_and_clear(pending, port) {
                    count(port as u32);
                }
            }
        }
    }
}

fn fifo_events(cpu: usize) {
    let Some(cb) = page(&CONTROL[cpu]) else { return };
    let mut ready = cb.word(0).swap(0, Ordering::AcqRel);
    while ready != 0 {
        let q = ready.trailing_zeros() as usize;
        if !consume_one(cpu, cb, q) {
            ready &= !(1 << q);
        }
        ready |= cb.word(0).swap(0, Ordering::AcqRel);
    }
}

/// Takes the head of queue `q`; returns whether more follow it.
fn consume_one(cpu: usize, cb: &Page, q: usize) -> bool {
    let local = &LOCAL_HEAD[cpu][q];
    let mut port = local.load(Ordering::Acquire);
    if port == 0 {
        port = cb.word(fifo_head_offset(q)).load(Ordering::Acquire);
    }
    let Some(word) = event_word(port) else {
        local.store(0, Ordering::Release);
        return false;
    };
    // Clear LINKED and read LINK in one step: Keel links new events to a tail only while
    // it is still LINKED.
    let mut w = word.load(Ordering::Acquire);
    loop {
        let new = w & !(1 << EVTCHN_FIFO_LINKED | EVTCHN_FIFO_LINK_MASK);
        match word.compare_exchange(w, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => w = now,
        }
    }
    let next = w & EVTCHN_FIFO_LINK_MASK;
    local.store(next, Ordering::Release);
    let w = word.load(Ordering::Acquire);
    if w & (1 << EVTCHN_FIFO_PENDING) != 0 && w & (1 << EVTCHN_FIFO_MASKED) == 0 {
        word.fetch_and(!(1 << EVTCHN_FIFO_PENDING), Ordering::AcqRel);
        count(port);
    }
    next != 0
}

/// Masks `port` (the guest's own mask bit or word).
pub fn mask(port: u32) {
    match MODE.load(Ordering::Acquire) {
        FIFO => {
            if let Some(w) = event_word(port) {
                w.fetch_or(1 << EVTCHN_FIFO_MASKED, Ordering::AcqRel);
            }
        }
        _ => {
            if let Some(si) = page(&SHARED_INFO) {
                si.set_bit(MASK_AT.load(Ordering::Acquire) as usize, port as usize);
            }
        }
    }
}

/// Unmasks `port`; if it became pending meanwhile, asks Keel to deliver it
/// (`EVTCHNOP_unmask`), as Linux does: 2-level leaves the mask bit set for Keel to clear,
/// FIFO clears `MASKED` first.
pub fn unmask<P: Platform>(p: &P, port: u32) -> Outcome {
    let pending = match MODE.load(Ordering::Acquire) {
        FIFO => event_word(port).is_some_and(|w| {
            let old = w.fetch_and(!(1 << EVTCHN_FIFO_MASKED), Ordering::AcqRel);
            old & (1 << EVTCHN_FIFO_PENDING) != 0
        }),
        _ => page(&SHARED_INFO).is_some_and(|si| {
            let (mask, pending) =
                (MASK_AT.load(Ordering::Acquire) as usize, PENDING_AT.load(Ordering::Acquire) as usize);
            si.test_and_clear(mask, port as usize);
            let pending = si.test_bit(pending, port as usize);
            if pending {
                si.set_bit(mask, port as usize);
            }
            pending
        }),
    };
    if !pending {
        return Ok(());
    }
    check(Hv(p).event_op(EVTCHNOP_UNMASK, &mut EvtchnPort { port }), "unmask")
}

/// Clears `port`'s pending bit (2-level), so that the next send sets it again.
pub fn clear_pending(port: u32) {
    if let Some(si) = page(&SHARED_INFO) {
        si.test_and_clear(PENDING_AT.load(Ordering::Acquire) as usize, port as usize);
    }
}

/// `EVTCHNOP_send`.
pub fn send<P: Platform>(p: &P, port: u32) -> Ret {
    Hv(p).event_op(EVTCHNOP_SEND, &mut EvtchnPort { port })
}

/// Waits (halting) until `port` was taken `n` times in all; interrupts must be on.
pub fn wait_hits<P: Platform>(p: &P, port: u32, n: u32) {
    p.disable_interrupts();
    while hits(port) < n {
        p.wait_for_interrupt();
        p.enable_interrupts();
        p.disable_interrupts();
    }
    p.enable_interrupts();
}

/// This CPU's `vcpu_info` page, once [`register_vcpu_info`] ran.
pub fn vcpu_info<P: Platform>(p: &P) -> Option<&'static Page> {
    page(&VCPU_INFO[p.cpu() as usize % MAX_CPUS])
}

/// The page shared_info is mapped over, once [`setup_two_level`] ran.
pub fn shared_info() -> Option<&'static Page> {
    page(&SHARED_INFO)
}
