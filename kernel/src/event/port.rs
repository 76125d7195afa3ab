//! The port table: up to 131072 ports per domain in buckets of 64, so a port is found
//! with two indexings (O(1)), and the lowest free port is found without a search.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use keel_abi::event::{EVTCHN_FIFO_NR_CHANNELS, EVTCHN_FIFO_PRIORITY_DEFAULT};
use keel_abi::xen::DomId;
use keel_abi::Errno;

/// [`EVTCHN_FIFO_PRIORITY_DEFAULT`] as a port's `u8` priority.
pub(crate) const PRIORITY_DEFAULT: u8 = 7;
const _: () = assert!(PRIORITY_DEFAULT as u32 == EVTCHN_FIFO_PRIORITY_DEFAULT);

/// Ports per bucket.
pub const BUCKET: u32 = 64;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Free,
    /// Port 0: never usable.
    Reserved,
    /// Allocated for `remote` to bind to.
    Unbound {
        remote: DomId,
    },
    /// Connected to `remote_port` of `remote`.
    Interdomain {
        remote: DomId,
        remote_port: u32,
    },
    /// Bound to a VIRQ.
    Virq(u32),
    /// An inter-vCPU port.
    Ipi,
    /// Connected to Keel's own backend of the domain's PV console: a send drains the
    /// ring, input raises it. `EVTCHNOP_status` reports it as interdomain with `DOMID_XEN`.
    Console,
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub binding: Binding,
    /// The vCPU an event on this port is delivered to.
    pub notify_vcpu: u32,
    /// FIFO priority (0 highest .. 15).
    pub priority: u8,
    /// FIFO: the queue (vCPU, priority) the port was last linked on.
    pub last_vcpu: u32,
    pub last_priority: u8,
    /// FIFO: raised while the event-array page holding its word did not exist yet.
    pub pending_without_word: bool,
}

impl Port {
    pub const FREE: Port = Port {
        binding: Binding::Free,
        notify_vcpu: 0,
        priority: PRIORITY_DEFAULT,
        last_vcpu: 0,
        last_priority: PRIORITY_DEFAULT,
        pending_without_word: false,
    };
}

/// A domain's ports.
pub struct PortTable {
    /// Boxed so growing the table moves pointers, not 1.5 KiB buckets.
    #[allow(clippy::vec_box)]
    buckets: Vec<Box<[Port; BUCKET as usize]>>,
    /// Free ports below `next`.
    free: BTreeSet<u32>,
    /// Every port at or above `next` is free.
    next: u32,
    /// Ports not free (port 0 excluded).
    active: u32,
}

impl Default for PortTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PortTable {
    /// A table with port 0 reserved.
    pub fn new() -> Self {
        let mut t = PortTable { buckets: Vec::new(), free: BTreeSet::new(), next: 1, active: 0 };
        t.buckets.push(Box::new([Port::FREE; BUCKET as usize]));
        t.buckets[0][0].binding = Binding::Reserved;
        t
    }

    /// Ports with storage: a port number below this (and below the ABI's limit) is valid.
    pub fn valid_limit(&self) -> u32 {
        u32::try_from(self.buckets.len()).unwrap_or(u32::MAX).saturating_mul(BUCKET)
    }

    /// Bound ports (port 0 not counted).
    pub fn active(&self) -> u32 {
        self.active
    }

    pub fn get(&self, port: u32) -> Option<&Port> {
        self.buckets.get((port / BUCKET) as usize).map(|b| &b[(port % BUCKET) as usize])
    }

    pub fn get_mut(&mut self, port: u32) -> Option<&mut Port> {
        self.buckets.get_mut((port / BUCKET) as usize).map(|b| &mut b[(port % BUCKET) as usize])
    }

    /// Finds the lowest free port below `limit` that `busy` does not reject (a FIFO word
    /// still linked), without taking it.
    pub fn find_free(&self, limit: u32, busy: impl Fn(u32) -> bool) -> Result<u32, Errno> {
        if let Some(&p) = self.free.iter().take_while(|&&p| p < limit).find(|&&p| !busy(p)) {
            return Ok(p);
        }
        let mut p = self.next;
        while p < limit.min(EVTCHN_FIFO_NR_CHANNELS) {
            if !busy(p) {
                return Ok(p);
            }
            p += 1;
        }
        Err(Errno::ENOSPC)
    }

    /// Takes free port `port` (found with [`PortTable::find_free`]) with `binding`.
    pub fn take(&mut self, port: u32, binding: Binding, notify_vcpu: u32) {
        while self.valid_limit() <= port {
            self.buckets.push(Box::new([Port::FREE; BUCKET as usize]));
        }
        if !self.free.remove(&port) {
            for p in self.next..port {
                self.free.insert(p);
            }
            self.next = self.next.max(port + 1);
        }
        if let Some(slot) = self.get_mut(port) {
            // Keep the FIFO queue the port was last on: it may still be that queue's tail.
            *slot = Port {
                binding,
                notify_vcpu,
                last_vcpu: slot.last_vcpu,
                last_priority: slot.last_priority,
                ..Port::FREE
            };
        }
        self.active += 1;
    }

    /// Frees a bound port.
    pub fn release(&mut self, port: u32) {
        let Some(slot) = self.get_mut(port) else { return };
        if matches!(slot.binding, Binding::Free | Binding::Reserved) {
            return;
        }
        *slot = Port { last_vcpu: slot.last_vcpu, last_priority: slot.last_priority, ..Port::FREE };
        self.active -= 1;
        if port + 1 == self.next {
            self.next = port;
            while self.next > 1 && self.free.remove(&(self.next - 1)) {
                self.next -= 1;
            }
        } else {
            self.free.insert(port);
        }
    }

    /// Ports that are bound, lowest first.
    pub fn bound(&self) -> impl Iterator<Item = u32> + '_ {
        (1..self.next).filter(|&p| self.get(p).is_some_and(|x| !matches!(x.binding, Binding::Free | Binding::Reserved)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_and_reuses() {
        let mut t = PortTable::new();
        for want in 1..=70 {
            let p = t.find_free(4096, |_| false).unwrap();
            assert_eq!(p, want);
            t.take(p, Binding::Ipi, 0);
        }
        assert_eq!(t.valid_limit(), 128);
        t.release(5);
        t.release(70);
        assert_eq!(t.find_free(4096, |_| false), Ok(5));
        assert_eq!(t.find_free(4096, |p| p == 5), Ok(70));
        assert_eq!(t.active(), 68);
        assert_eq!(t.get(5).unwrap().binding, Binding::Free);
        assert_eq!(t.get(0).unwrap().binding, Binding::Reserved);
        assert_eq!(t.find_free(3, |_| false), Err(Errno::ENOSPC));
        assert_eq!(t.bound().count(), 68);
    }

    #[test]
    fn take_above_next_marks_the_gap_free() {
        let mut t = PortTable::new();
        t.take(200, Binding::Ipi, 1);
        assert_eq!(t.find_free(4096, |_| false), Ok(1));
        assert_eq!(t.get(200).unwrap().notify_vcpu, 1);
        t.release(200);
        assert_eq!(t.active(), 0);
        assert_eq!(t.next, 1);
    }
}
