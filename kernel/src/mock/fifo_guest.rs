//! The guest side of the FIFO event ABI, as Linux implements it, for tests and
//! benchmarks: consume events from a vCPU's queues, mask and unmask ports.

use crate::arch::Arch;
use crate::domain::Domain;
use alloc::vec::Vec;
use keel_abi::event::*;

/// A guest vCPU's view of its FIFO queues.
pub struct FifoGuest {
    /// Guest-physical address of the vCPU's control block.
    pub control: u64,
    /// Guest-physical address of each event-array page, in port order.
    pub pages: Vec<u64>,
    /// The guest's own per-queue head (Linux keeps it per CPU).
    heads: [u32; EVTCHN_FIFO_MAX_QUEUES],
}

fn rd<A: Arch>(d: &Domain<A>, gpa: u64) -> u32 {
    let mut b = [0u8; 4];
    let _ = d.read_phys(gpa, &mut b);
    u32::from_le_bytes(b)
}

fn wr<A: Arch>(d: &Domain<A>, gpa: u64, v: u32) {
    let _ = d.write_phys(gpa, &v.to_le_bytes());
}

impl FifoGuest {
    pub fn new(control: u64, pages: Vec<u64>) -> Self {
        FifoGuest { control, pages, heads: [0; EVTCHN_FIFO_MAX_QUEUES] }
    }

    /// Guest-physical address of `port`'s event word.
    pub fn word(&self, port: u32) -> Option<u64> {
        let page = *self.pages.get((port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize)?;
        Some(page + (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as u64 * 4)
    }

    pub fn read_word<A: Arch>(&self, d: &Domain<A>, port: u32) -> u32 {
        self.word(port).map_or(0, |w| rd(d, w))
    }

    pub fn write_word<A: Arch>(&self, d: &Domain<A>, port: u32, v: u32) {
        if let Some(w) = self.word(port) {
            wr(d, w, v);
        }
    }

    /// Sets MASKED.
    pub fn mask<A: Arch>(&self, d: &Domain<A>, port: u32) {
        let w = self.read_word(d, port);
        self.write_word(d, port, w | 1 << EVTCHN_FIFO_MASKED);
    }

    /// Clears MASKED; returns whether the port is pending (Linux then calls
    /// `EVTCHNOP_unmask`).
    pub fn clear_mask<A: Arch>(&self, d: &Domain<A>, port: u32) -> bool {
        let w = self.read_word(d, port) & !(1 << EVTCHN_FIFO_MASKED);
        self.write_word(d, port, w);
        w & 1 << EVTCHN_FIFO_PENDING != 0
    }

    /// Handles every queued event like Linux's upcall handler: take `ready`, walk each
    /// ready queue from the highest priority, unlink each port and deliver (clear
    /// PENDING of) those pending and unmasked. Returns the delivered ports in order.
    /// `limit` bounds the walk, for a guest whose words were scribbled on.
    pub fn consume<A: Arch>(&mut self, d: &Domain<A>, limit: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut ready = self.xchg_ready(d);
        let mut steps = 0;
        while ready != 0 && steps < limit {
            steps += 1;
            let q = ready.trailing_zeros() as usize;
            let mut head = self.heads[q];
            if head == 0 {
                head = rd(d, self.control + fifo_head_offset(q) as u64);
            }
            let port = head;
            let w = self.read_word(d, port);
            let next = w & EVTCHN_FIFO_LINK_MASK;
            self.write_word(d, port, w & !((1 << EVTCHN_FIFO_LINKED) | EVTCHN_FIFO_LINK_MASK));
            if next == 0 {
                ready &= !(1 << q);
            }
            if w & (1 << EVTCHN_FIFO_PENDING) != 0 && w & (1 << EVTCHN_FIFO_MASKED) == 0 {
                let now = self.read_word(d, port);
                self.write_word(d, port, now & !(1 << EVTCHN_FIFO_PENDING));
                out.push(port);
            }
            self.heads[q] = next;
            ready |= self.xchg_ready(d);
        }
        out
    }

    fn xchg_ready<A: Arch>(&self, d: &Domain<A>) -> u32 {
        let r = rd(d, self.control) & 0xffff;
        wr(d, self.control, 0);
        r
    }

    /// Forgets the guest's local queue heads (after scribbling on them).
    pub fn reset_heads(&mut self) {
        self.heads = [0; EVTCHN_FIFO_MAX_QUEUES];
    }
}
