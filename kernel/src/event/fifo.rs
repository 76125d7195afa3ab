//! The FIFO event ABI: one 32-bit event word per port in guest event-array pages, 16
//! priority queues per vCPU whose heads are in a guest control block and whose tails
//! Keel keeps.
//!
//! Linking an event follows Xen's algorithm: set PENDING; if not MASKED and LINKED was
//! clear, set LINKED and append the port to the tail of its queue. Appending writes the
//! old tail's LINK with a compare-and-swap that only succeeds while that word is still
//! LINKED (the guest may be consuming it); if it is not, the queue was empty and the
//! port becomes the head. Only then the queue's bit in `ready` is set and, if it was
//! clear, the vCPU's upcall is marked. The guest owns these words and may write
//! anything at any time: every update is a bounded compare-and-swap, Keel never follows
//! a LINK, and its own tails always name ports whose words exist.

use super::port::Port;
use super::two_level::Outcome;
use crate::arch::memory::Frame;
use crate::arch::{Arch, HostMemory};
use crate::guest_memory::GuestWord32;
use crate::mm::{PhysAddr, PAGE_SIZE};
use alloc::vec::Vec;
use keel_abi::event::{
    fifo_head_offset, EVTCHN_FIFO_BUSY, EVTCHN_FIFO_EVENT_WORDS_PER_PAGE, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_MASK,
    EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES, EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_PENDING,
};
use keel_abi::Errno;

/// Attempts at updating a tail word's LINK once BUSY is set.
const LINK_RETRIES: u32 = 4;

/// A control block: the handle of its page (pinned by `init_control`, unpinned after
/// the handle is dropped) and its offset in it.
pub struct Control<A: Arch> {
    pub frame: Frame<A>,
    pub offset: usize,
}

impl<A: Arch> Control<A> {
    /// The control block at host address `pa` (its page is checked once, here).
    pub fn at(pa: PhysAddr) -> Self {
        Control {
            frame: A::Memory::frame(pa.align_down(PAGE_SIZE)),
            offset: usize::try_from(pa.0 % PAGE_SIZE).unwrap_or(0),
        }
    }

    /// The word at `offset` in the block (`ready`: 0; the heads: `fifo_head_offset`).
    fn word(&self, offset: usize) -> GuestWord32<A> {
        GuestWord32::in_frame(self.frame, self.offset + offset)
    }
}

/// One vCPU's queues.
pub struct Queues<A: Arch> {
    /// The control block, once `init_control` registered it.
    pub control: Option<Control<A>>,
    /// The last port linked on each queue (0: none), as far as Keel knows.
    pub tails: [u32; EVTCHN_FIFO_MAX_QUEUES],
}

/// A domain's FIFO state.
pub struct Fifo<A: Arch> {
    /// Handles of the event-array pages (pinned; unpinned after their handles are
    /// dropped), in port order.
    pub pages: Vec<Frame<A>>,
    pub vcpus: Vec<Queues<A>>,
}

impl<A: Arch> Fifo<A> {
    pub fn new(vcpus: usize) -> Self {
        Fifo {
            pages: Vec::new(),
            vcpus: (0..vcpus).map(|_| Queues { control: None, tails: [0; EVTCHN_FIFO_MAX_QUEUES] }).collect(),
        }
    }

    /// Ports whose event words exist.
    pub fn ports_with_words(&self) -> u32 {
        // At most EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES pages (`can_expand`).
        u32::try_from(self.pages.len()).unwrap_or(0).saturating_mul(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE)
    }

    /// Whether another event-array page may be added.
    pub fn can_expand(&self) -> Result<(), Errno> {
        if u32::try_from(self.pages.len()).map_or(true, |n| n >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES) {
            Err(Errno::ENOSPC)
        } else {
            Ok(())
        }
    }

    /// The event word of `port`, if its page exists.
    pub fn word(&self, port: u32) -> Option<GuestWord32<A>> {
        let page = *self.pages.get((port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize)?;
        Some(GuestWord32::in_frame(page, (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize * 4))
    }

    pub fn is_pending(&self, port: u32) -> bool {
        self.word(port).is_some_and(|w| w.test(EVTCHN_FIFO_PENDING))
    }

    /// A port whose word is still LINKED cannot be reused yet.
    pub fn is_busy(&self, port: u32) -> bool {
        self.word(port).is_some_and(|w| w.test(EVTCHN_FIFO_LINKED))
    }

    /// Clears PENDING when a port is closed; the guest unlinks it itself.
    pub fn clear_pending(&self, port: u32, p: &mut Port) {
        p.pending_without_word = false;
        if let Some(w) = self.word(port) {
            let _ = w.test_and_clear(EVTCHN_FIFO_PENDING);
        }
    }

    /// Raises `port` (state `p`) on `vcpu`.
    pub fn raise(&mut self, port: u32, p: &mut Port, vcpu: u32) -> Outcome {
        let Some(word) = self.word(port) else {
            p.pending_without_word = true;
            return Outcome::default();
        };
        p.pending_without_word = false;
        let queue = (p.priority as usize).min(EVTCHN_FIFO_MAX_QUEUES - 1);
        // No control block: the guest cannot have unmasked the port; drop the event.
        if self.vcpus.get(vcpu as usize).is_none_or(|q| q.control.is_none()) {
            return Outcome::default();
        }
        let newly_pending = match word.test_and_set(EVTCHN_FIFO_PENDING) {
            Ok(was) => !was,
            Err(_) => return Outcome::default(),
        };
        let mut linked = true;
        if !word.test(EVTCHN_FIFO_MASKED) && matches!(word.test_and_set(EVTCHN_FIFO_LINKED), Ok(false)) {
            // If the port was the tail of its previous queue, that queue is now empty.
            if let Some(old) = self.vcpus.get_mut(p.last_vcpu as usize) {
                let t = &mut old.tails[(p.last_priority as usize).min(EVTCHN_FIFO_MAX_QUEUES - 1)];
                if *t == port {
                    *t = 0;
                }
            }
            p.last_vcpu = vcpu;
            p.last_priority = u8::try_from(queue).unwrap_or(u8::MAX);
            let q = &mut self.vcpus[vcpu as usize];
            let tail = q.tails[queue];
            q.tails[queue] = port;
            linked = tail != 0 && tail != port && self.word(tail).is_some_and(|t| set_link(&t, port));
            if !linked {
                if let Some(c) = self.vcpus[vcpu as usize].control.as_ref() {
                    c.word(fifo_head_offset(queue)).store(port);
                }
            }
        }
        let Some(control) = self.vcpus.get(vcpu as usize).and_then(|q| q.control.as_ref()) else {
            return Outcome::default();
        };
        let ready = control.word(0);
        let upcall = !linked && matches!(ready.test_and_set(u32::try_from(queue).unwrap_or(u32::MAX)), Ok(false));
        Outcome { newly_pending, upcall }
    }

    /// `EVTCHNOP_unmask`: clears MASKED and relinks the port if it is pending.
    pub fn unmask(&mut self, port: u32, p: &mut Port) -> Outcome {
        let Some(word) = self.word(port) else { return Outcome::default() };
        let _ = word.test_and_clear(EVTCHN_FIFO_MASKED);
        if word.test(EVTCHN_FIFO_PENDING) {
            let vcpu = p.notify_vcpu;
            return Outcome { newly_pending: false, ..self.raise(port, p, vcpu) };
        }
        Outcome::default()
    }
}

/// Writes `link` into the LINK field of `tail` if `tail` is still LINKED. Returns false
/// if it is not (the guest consumed it: the queue is empty). A guest that keeps changing
/// the word gets its event treated as linked (and possibly lost), never a hang.
fn set_link<A: Arch>(tail: &GuestWord32<A>, link: u32) -> bool {
    let attempt = |w: u32| -> Option<bool> {
        if w & (1 << EVTCHN_FIFO_LINKED) == 0 {
            return Some(false);
        }
        let new = (w & !((1 << EVTCHN_FIFO_BUSY) | EVTCHN_FIFO_LINK_MASK)) | link;
        (tail.compare_exchange(w, new) == w).then_some(true)
    };
    if let Some(r) = attempt(tail.load()) {
        return r;
    }
    // Hold BUSY so the guest's unmask waits while we retry.
    let _ = tail.fetch_or(1 << EVTCHN_FIFO_BUSY);
    for _ in 0..LINK_RETRIES {
        match attempt(tail.load()) {
            Some(true) => return true,
            Some(false) => {
                let _ = tail.fetch_clear(1 << EVTCHN_FIFO_BUSY);
                return false;
            }
            None => {}
        }
    }
    let _ = tail.fetch_clear(1 << EVTCHN_FIFO_BUSY);
    log::warn!("fifo: event word at {} unstable, port {link} not linked", tail.address());
    true
}
