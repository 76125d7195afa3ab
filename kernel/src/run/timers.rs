//! vCPU timer deadlines by physical CPU.
//!
//! The core keeps each vCPU's timers (one-shot, periodic, poll timeout; vCPU 0's also
//! stand for the domain's watchdogs) and reports the earliest through
//! [`Hooks::timer_changed`](crate::domain::Hooks::timer_changed). The deadline is filed
//! under the CPU that reported it, which is the CPU running the vCPU (its hypercall set
//! the timer) or the CPU that just fired it. That CPU arms its hardware timer for it
//! together with the scheduler's deadline and calls
//! [`Hypervisor::fire_timers`](crate::Hypervisor::fire_timers) once it passes; the
//! resulting event wakes the vCPU wherever it is.

use crate::arch::CpuId;
use crate::sched::VcpuKey;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// Every vCPU's earliest deadline, filed by CPU.
#[derive(Debug)]
pub struct TimerTable {
    by_cpu: Vec<BTreeSet<(u64, VcpuKey)>>,
    by_vcpu: BTreeMap<VcpuKey, (usize, u64)>,
}

impl TimerTable {
    pub fn new(nr_cpus: usize) -> Self {
        TimerTable { by_cpu: (0..nr_cpus.max(1)).map(|_| BTreeSet::new()).collect(), by_vcpu: BTreeMap::new() }
    }

    /// Sets `key`'s deadline (none: no timer), filed under `cpu` (the last CPU if `cpu`
    /// is out of range). Returns the CPUs whose earliest deadline may have changed.
    pub fn set(&mut self, key: VcpuKey, deadline: Option<u64>, cpu: CpuId) -> [Option<usize>; 2] {
        let mut touched = [None; 2];
        if let Some((c, at)) = self.by_vcpu.remove(&key) {
            self.by_cpu[c].remove(&(at, key));
            touched[0] = Some(c);
        }
        if let Some(at) = deadline {
            let c = (cpu.0 as usize).min(self.by_cpu.len() - 1);
            self.by_cpu[c].insert((at, key));
            self.by_vcpu.insert(key, (c, at));
            touched[1] = Some(c);
        }
        touched
    }

    /// Removes and returns the vCPUs whose deadline filed under `cpu` is at or before `now`.
    pub fn take_due(&mut self, cpu: CpuId, now: u64) -> Vec<VcpuKey> {
        let mut due = Vec::new();
        let Some(set) = self.by_cpu.get_mut(cpu.0 as usize) else { return due };
        while let Some(&(at, key)) = set.first() {
            if at > now {
                break;
            }
            set.pop_first();
            self.by_vcpu.remove(&key);
            due.push(key);
        }
        due
    }

    /// The earliest deadline filed under `cpu`.
    pub fn next(&self, cpu: CpuId) -> Option<u64> {
        self.by_cpu.get(cpu.0 as usize)?.first().map(|&(at, _)| at)
    }

    /// Forgets every timer of `domain`.
    pub fn remove_domain(&mut self, domain: u16) {
        let keys: Vec<VcpuKey> = self.by_vcpu.keys().filter(|k| k.domain == domain).copied().collect();
        for key in keys {
            self.set(key, None, CpuId(0));
        }
    }

    /// How many CPUs timers are filed under.
    pub fn nr_cpus(&self) -> usize {
        self.by_cpu.len()
    }

    /// How many vCPUs have a deadline.
    pub fn len(&self) -> usize {
        self.by_vcpu.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_vcpu.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_move_between_cpus_and_fire_in_order() {
        let (a, b, c) = (VcpuKey::new(1, 0), VcpuKey::new(1, 1), VcpuKey::new(2, 0));
        let mut t = TimerTable::new(2);
        t.set(a, Some(300), CpuId(0));
        t.set(b, Some(100), CpuId(0));
        t.set(c, Some(200), CpuId(1));
        assert_eq!((t.next(CpuId(0)), t.next(CpuId(1))), (Some(100), Some(200)));
        t.set(b, Some(400), CpuId(1));
        assert_eq!((t.next(CpuId(0)), t.next(CpuId(1))), (Some(300), Some(200)));
        assert_eq!(t.take_due(CpuId(1), 250), [c]);
        assert_eq!(t.take_due(CpuId(0), 299), []);
        t.remove_domain(1);
        assert!(t.is_empty());
        assert_eq!((t.next(CpuId(0)), t.next(CpuId(1))), (None, None));
        t.set(a, Some(5), CpuId(9));
        assert_eq!(t.take_due(CpuId(1), 5), [a], "an out-of-range CPU files under the last one");
    }
}
