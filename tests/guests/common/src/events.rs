//! Event channels as a guest drives them: `shared_info` placed in a hole, this CPU's
//! `vcpu_info` registered, the 2-level or the FIFO ABI, and waiting for a port.
//!
//! Waiting follows Xen's rule for a race-free sleep: with interrupts masked, collect
//! what is pending; if the port is not among it, `SCHEDOP_block` (which returns at once
//! if `evtchn_upcall_pending` is set); then let the upcall interrupt in and look again.
//! Ports collected while waiting for another are kept per CPU, so nothing is lost.

use crate::hcall::Hv;
use crate::irq::{MAX_CPUS, VCPU_INFO};
use crate::{fail, Outcome, Platform};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::SeqCst};
use keel_abi::event::*;
use keel_abi::layout::{VCPU_INFO_PENDING_SEL, VCPU_INFO_UPCALL_PENDING};
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::vcpu::{VcpuRegisterVcpuInfo, VCPUOP_REGISTER_VCPU_INFO};
use keel_abi::xen::DOMID_SELF;

/// Ports the helpers track (the 2-level ABI's; FIFO ports below one event page).
pub const MAX_PORT: u32 = 4096;
/// FIFO ports the one event-array page holds.
pub const FIFO_PORTS: u32 = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;

#[repr(C, align(4096))]
struct Page(UnsafeCell<[u8; 4096]>);

// SAFETY: shared with Keel, which writes it; the guest touches it only through atomics.
unsafe impl Sync for Page {}

/// Per CPU: a page holding its vcpu_info (at 0) and its FIFO control block (at 2048).
static CPU_PAGES: [Page; MAX_CPUS] = [const { Page(UnsafeCell::new([0; 4096])) }; MAX_CPUS];
/// The FIFO event array's first page (ports 0..1024).
static EVENT_ARRAY: Page = Page(UnsafeCell::new([0; 4096]));
const CONTROL_OFFSET: usize = 2048;
/// Per CPU: ports collected but not yet waited for.
static COLLECTED: [[AtomicU64; 64]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 64] }; MAX_CPUS];
/// Per CPU and FIFO queue: the next port to consume (0: read the control block's head).
static FIFO_HEADS: [[AtomicU32; 16]; MAX_CPUS] = [const { [const { AtomicU32::new(0) }; 16] }; MAX_CPUS];

fn page(p: &Page) -> usize {
    p.0.get() as usize
}

/// A word of guest memory shared with Keel.
fn at<T>(addr: usize) -> &'static T {
    // SAFETY: `addr` lies in shared_info or a static page above, naturally aligned;
    // both Keel and the guest access it only atomically.
    unsafe { &*(addr as *const T) }
}

/// One CPU's view of its domain's event channels.
pub struct Events<'p, P: Platform> {
    pub p: &'p P,
    pub hv: Hv<'p, P>,
    /// The virtual (= guest-physical) address of shared_info.
    pub shared: usize,
    pub fifo: bool,
    cpu: usize,
}

impl<'p, P: Platform> Events<'p, P> {
    /// Places shared_info (boot CPU) and registers this CPU's vcpu_info; with `fifo`,
    /// switches to the FIFO ABI (its control block on this CPU, the event page by the
    /// boot CPU). Then prepares this CPU's interrupts.
    pub fn setup(p: &'p P, fifo: bool) -> Result<Self, crate::Failure> {
        let hv = Hv(p);
        let cpu = p.cpu() as usize;
        if cpu >= MAX_CPUS {
            fail!("CPU {cpu}: the test guest tracks {MAX_CPUS}");
        }
        let shared = p.hole().0 as usize;
        if cpu == 0 {
            let mut m = XenAddToPhysmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_SHARED_INFO,
                idx: 0,
                gpfn: shared as u64 >> 12,
            };
            let r = hv.memory_op(XENMEM_ADD_TO_PHYSMAP, &mut m);
            crate::expect_eq!(r, 0, "XENMEM_add_to_physmap(shared_info)");
        }
        let mine = page(&CPU_PAGES[cpu]);
        let gpa = p.gpa(mine);
        let mut reg = VcpuRegisterVcpuInfo { mfn: gpa >> 12, offset: (gpa & 0xfff) as u32, rsvd: 0 };
        crate::expect_eq!(hv.vcpu_op(VCPUOP_REGISTER_VCPU_INFO, cpu as u32, &mut reg), 0, "register_vcpu_info");
        VCPU_INFO[cpu].store(mine, SeqCst);
        if fifo {
            let control = gpa + CONTROL_OFFSET as u64;
            let mut init = EvtchnInitControl {
                control_gfn: control >> 12,
                offset: (control & 0xfff) as u32,
                vcpu: cpu as u32,
                link_bits: 0,
                _pad: [0; 7],
            };
            crate::expect_eq!(hv.event_op(EVTCHNOP_INIT_CONTROL, &mut init), 0, "EVTCHNOP_init_control");
            crate::expect_eq!(init.link_bits as u32, EVTCHN_FIFO_LINK_BITS, "link_bits");
            if cpu == 0 {
                let mut e = EvtchnExpandArray { array_gfn: p.gpa(page(&EVENT_ARRAY)) >> 12 };
                crate::expect_eq!(hv.event_op(EVTCHNOP_EXPAND_ARRAY, &mut e), 0, "EVTCHNOP_expand_array");
            }
        }
        p.init_interrupts();
        let ev = Events { p, hv, shared, fifo, cpu };
        // Registering vcpu_info selects every word (so nothing is lost): consume that, so
        // the next event on any word raises the upcall again.
        ev.collect();
        COLLECTED[cpu].iter().for_each(|w| w.store(0, SeqCst));
        Ok(ev)
    }

    fn vcpu_info(&self) -> usize {
        page(&CPU_PAGES[self.cpu])
    }

    /// The FIFO control block of this CPU.
    pub fn control(&self) -> usize {
        self.vcpu_info() + CONTROL_OFFSET
    }

    /// The FIFO event word of `port`.
    pub fn word(&self, port: u32) -> &'static AtomicU32 {
        at(page(&EVENT_ARRAY) + 4 * (port % FIFO_PORTS) as usize)
    }

    fn pending_word(&self, w: usize) -> &'static AtomicU64 {
        at(self.shared + P::LAYOUT.evtchn_pending + 8 * w)
    }

    fn mask_word(&self, w: usize) -> &'static AtomicU64 {
        at(self.shared + P::LAYOUT.evtchn_mask + 8 * w)
    }

    /// `evtchn_upcall_pending` of this CPU's vcpu_info.
    pub fn upcall_flag(&self) -> &'static AtomicU8 {
        at(self.vcpu_info() + VCPU_INFO_UPCALL_PENDING)
    }

    /// `evtchn_pending_sel` of this CPU's vcpu_info.
    pub fn selector(&self) -> &'static AtomicU64 {
        at(self.vcpu_info() + VCPU_INFO_PENDING_SEL)
    }

    /// Whether `port` is pending in the ABI's own words (2-level bit, FIFO `PENDING`).
    pub fn is_pending(&self, port: u32) -> bool {
        if self.fifo {
            self.word(port).load(SeqCst) & 1 << EVTCHN_FIFO_PENDING != 0
        } else {
            self.pending_word(port as usize / 64).load(SeqCst) & 1 << (port % 64) != 0
        }
    }

    /// Masks or unmasks `port` in the guest's own words (unmasking a pending port needs
    /// `EVTCHNOP_unmask` afterwards).
    pub fn set_masked(&self, port: u32, masked: bool) {
        if self.fifo {
            let bit = 1 << EVTCHN_FIFO_MASKED;
            if masked {
                self.word(port).fetch_or(bit, SeqCst);
            } else {
                self.word(port).fetch_and(!bit, SeqCst);
            }
        } else {
            let (w, bit) = (self.mask_word(port as usize / 64), 1u64 << (port % 64));
            if masked {
                w.fetch_or(bit, SeqCst);
            } else {
                w.fetch_and(!bit, SeqCst);
            }
        }
    }

    fn keep(&self, port: u32) {
        if port < MAX_PORT {
            COLLECTED[self.cpu][port as usize / 64].fetch_or(1 << (port % 64), SeqCst);
        }
    }

    /// Consumes every pending, unmasked event of this CPU into the collected set.
    pub fn collect(&self) {
        if self.fifo {
            self.collect_fifo();
        } else {
            self.collect_2l();
        }
    }

    /// 2-level: take the selector, then each selected word's unmasked pending bits.
    fn collect_2l(&self) {
        let sel = self.selector().swap(0, SeqCst);
        for w in (0..64).filter(|w| sel & 1 << w != 0) {
            let bits = self.pending_word(w).load(SeqCst) & !self.mask_word(w).load(SeqCst);
            self.pending_word(w).fetch_and(!bits, SeqCst);
            for b in (0..64).filter(|b| bits & 1 << b != 0) {
                self.keep((w * 64 + b) as u32);
            }
        }
    }

    /// FIFO: take `ready`, then walk each ready queue from its head, clearing LINKED
    /// (and PENDING of unmasked events), as Linux does.
    fn collect_fifo(&self) {
        let ready: &AtomicU32 = at(self.control());
        let mut queues = ready.swap(0, SeqCst);
        while queues != 0 {
            let q = queues.trailing_zeros() as usize;
            let local = &FIFO_HEADS[self.cpu][q];
            let mut head = local.load(SeqCst);
            if head == 0 {
                head = at::<AtomicU32>(self.control() + 8 + 4 * q).load(SeqCst);
            }
            if head == 0 || head >= FIFO_PORTS {
                queues &= !(1 << q);
                continue;
            }
            let word = self.word(head);
            let old = word.fetch_and(!(1 << EVTCHN_FIFO_LINKED), SeqCst);
            let next = old & EVTCHN_FIFO_LINK_MASK;
            local.store(next, SeqCst);
            let pending = 1 << EVTCHN_FIFO_PENDING;
            if old & pending != 0 && old & 1 << EVTCHN_FIFO_MASKED == 0 {
                word.fetch_and(!pending, SeqCst);
                self.keep(head);
            }
            if next == 0 {
                queues &= !(1 << q);
            }
        }
    }

    /// Takes `port` out of the collected set; true if it was there.
    pub fn take(&self, port: u32) -> bool {
        let bit = 1u64 << (port % 64);
        COLLECTED[self.cpu][port as usize / 64].fetch_and(!bit, SeqCst) & bit != 0
    }

    /// Waits until `port` is signalled, blocking in Keel in between (a wait that never
    /// ends is a hang the boot test's timeout reports).
    pub fn wait(&self, port: u32) {
        loop {
            self.p.disable_interrupts();
            self.collect();
            if self.take(port) {
                self.p.enable_interrupts();
                return;
            }
            let _ = self.hv.block();
            self.p.enable_interrupts();
        }
    }

    /// Watches `port` for `ticks` platform ticks without blocking; true if it stayed
    /// quiet (for events that must not arrive, e.g. on a masked port).
    pub fn stays_quiet(&self, port: u32, ticks: u64) -> bool {
        let end = self.p.ticks().saturating_add(ticks);
        while self.p.ticks() < end {
            self.collect();
            if self.take(port) {
                return false;
            }
        }
        true
    }

    pub fn send(&self, port: u32) -> Outcome {
        let mut s = EvtchnPort { port };
        crate::expect_eq!(self.hv.event_op(EVTCHNOP_SEND, &mut s), 0, "EVTCHNOP_send");
        Ok(())
    }

    pub fn bind_ipi(&self) -> Result<u32, crate::Failure> {
        let mut b = EvtchnBindIpi { vcpu: self.cpu as u32, port: 0 };
        crate::expect_eq!(self.hv.event_op(EVTCHNOP_BIND_IPI, &mut b), 0, "EVTCHNOP_bind_ipi");
        Ok(b.port)
    }
}
