//! Simulated physical CPUs for the mock architecture: which CPU is "current", each
//! CPU's clock, hardware timer and pending interrupts.
//!
//! Everything is per test thread. A test drives several CPUs from one thread by making
//! one after the other current ([`set_current`]) and stepping its run loop. Each CPU
//! has its own clock (ns): the mock vCPU advances it by [`INSN_NS`] per instruction,
//! [`MockCpu::halt`](super::MockCpu) moves it to the CPU's timer deadline, and every
//! read adds a nanosecond so that time always moves. A CPU's guest stops at the
//! *horizon* ([`set_horizon`]) with a spurious interrupt exit, which lets a driver keep
//! the CPUs' clocks within a bound of each other (see `run::sim` in the tests).
//!
//! Without any set-up there is one CPU and no horizon.

use crate::arch::{CpuId, IrqNumber};
use alloc::vec::Vec;
use core::cell::RefCell;

extern crate std;

/// The simulated time one mock instruction takes.
pub const INSN_NS: u64 = 100;
/// The wake-up IPI.
pub const IPI_IRQ: IrqNumber = IrqNumber(1);
/// The hypervisor timer.
pub const TIMER_IRQ: IrqNumber = IrqNumber(26);
/// Interrupt numbers the mock controller has (`0..NR_IRQS`).
pub const NR_IRQS: u32 = 64;

#[derive(Clone, Debug, Default)]
struct Cpu {
    now: u64,
    deadline: Option<u64>,
    pending: u64,
    enabled: u64,
    eois: u64,
}

#[derive(Clone, Debug)]
struct Sim {
    cpus: Vec<Cpu>,
    current: usize,
    horizon: u64,
    loads: u64,
}

impl Default for Sim {
    fn default() -> Self {
        Sim { cpus: alloc::vec![Cpu::default()], current: 0, horizon: u64::MAX, loads: 0 }
    }
}

std::thread_local! {
    static SIM: RefCell<Sim> = RefCell::new(Sim::default());
}

fn with<R>(f: impl FnOnce(&mut Sim) -> R) -> R {
    SIM.with(|s| f(&mut s.borrow_mut()))
}

fn with_cpu<R>(f: impl FnOnce(&mut Cpu, u64) -> R) -> R {
    with(|s| {
        let h = s.horizon;
        let c = s.current;
        f(&mut s.cpus[c], h)
    })
}

/// Starts over with `nr_cpus` CPUs at time `start`, CPU 0 current, no horizon.
pub fn reset(nr_cpus: usize, start: u64) {
    with(|s| {
        *s = Sim::default();
        s.cpus = (0..nr_cpus.max(1)).map(|_| Cpu { now: start, ..Cpu::default() }).collect();
    });
}

pub fn nr_cpus() -> usize {
    with(|s| s.cpus.len())
}

/// Makes `cpu` the CPU that runs from now on.
pub fn set_current(cpu: CpuId) {
    with(|s| {
        assert!((cpu.0 as usize) < s.cpus.len(), "no simulated cpu{cpu}");
        s.current = cpu.0 as usize;
    });
}

pub fn current() -> CpuId {
    with(|s| CpuId::from_index(s.current))
}

/// Where guests on any CPU stop running (a spurious interrupt exit) until it moves.
pub fn set_horizon(at: u64) {
    with(|s| s.horizon = at);
}

pub fn horizon() -> u64 {
    with(|s| s.horizon)
}

/// `cpu`'s clock.
pub fn now_of(cpu: CpuId) -> u64 {
    with(|s| s.cpus[cpu.0 as usize].now)
}

/// Reads the current CPU's clock (and moves it on by 1 ns).
pub fn read_clock() -> u64 {
    with_cpu(|c, _| {
        c.now += 1;
        c.now
    })
}

/// Moves the current CPU's clock on by `ns`.
pub fn advance(ns: u64) {
    with_cpu(|c, _| c.now = c.now.saturating_add(ns));
}

pub fn set_deadline(at: Option<u64>) {
    with_cpu(|c, _| c.deadline = at);
}

/// The current CPU's armed timer deadline.
pub fn deadline() -> Option<u64> {
    with_cpu(|c, _| c.deadline)
}

/// `cpu`'s armed timer deadline.
pub fn deadline_of(cpu: CpuId) -> Option<u64> {
    with(|s| s.cpus[cpu.0 as usize].deadline)
}

pub fn set_enabled(irq: IrqNumber, on: bool) {
    if irq.0 >= NR_IRQS {
        return;
    }
    with_cpu(|c, _| {
        if on {
            c.enabled |= 1 << irq.0;
        } else {
            c.enabled &= !(1 << irq.0);
        }
    });
}

/// Makes `irq` pending on `cpu` (an IPI, or a device interrupt a test injects).
pub fn raise(cpu: CpuId, irq: IrqNumber) {
    if irq.0 >= NR_IRQS {
        return;
    }
    with(|s| {
        if let Some(c) = s.cpus.get_mut(cpu.0 as usize) {
            c.pending |= 1 << irq.0;
        }
    });
}

/// Whether `irq` is pending (raised, not yet acknowledged) on `cpu`, enabled or not.
pub fn is_raised(cpu: CpuId, irq: IrqNumber) -> bool {
    irq.0 < NR_IRQS && with(|s| s.cpus.get(cpu.0 as usize).is_some_and(|c| c.pending & (1 << irq.0) != 0))
}

/// Latches a due timer into the pending set (the deadline is one-shot).
fn latch_timer(c: &mut Cpu) {
    if c.deadline.is_some_and(|d| d <= c.now) {
        c.deadline = None;
        c.pending |= 1 << TIMER_IRQ.0;
    }
}

/// Whether an enabled interrupt is pending on the current CPU.
pub fn interrupt_pending() -> bool {
    with_cpu(|c, _| {
        latch_timer(c);
        c.pending & c.enabled != 0
    })
}

/// Takes the lowest-numbered pending enabled interrupt of the current CPU.
pub fn acknowledge() -> Option<IrqNumber> {
    with_cpu(|c, _| {
        latch_timer(c);
        let ready = c.pending & c.enabled;
        (ready != 0).then(|| {
            let irq = ready.trailing_zeros();
            c.pending &= !(1 << irq);
            IrqNumber(irq)
        })
    })
}

pub fn end_of_interrupt() {
    with_cpu(|c, _| c.eois += 1);
}

/// End-of-interrupts signalled on `cpu`.
pub fn eois_of(cpu: CpuId) -> u64 {
    with(|s| s.cpus[cpu.0 as usize].eois)
}

/// Waits for an interrupt: unless one is pending, the clock moves to the timer deadline
/// or the horizon, whichever comes first (nothing moves without either).
pub fn halt() {
    with_cpu(|c, horizon| {
        latch_timer(c);
        if c.pending & c.enabled != 0 {
            return;
        }
        let timer = c.deadline.filter(|_| c.enabled & (1 << TIMER_IRQ.0) != 0);
        let until = timer.map_or(horizon, |d| d.min(horizon));
        if until != u64::MAX {
            c.now = c.now.max(until);
        }
        latch_timer(c);
    });
}

/// Counts a vCPU load (a switch to a vCPU).
pub fn note_load() {
    with(|s| s.loads += 1);
}

/// vCPU loads since the last [`reset`].
pub fn loads() -> u64 {
    with(|s| s.loads)
}

/// Whether the current CPU's clock has reached the horizon.
pub fn past_horizon() -> bool {
    with_cpu(|c, h| c.now >= h)
}
