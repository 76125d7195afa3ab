//! The host's physical interrupt controller: GICv3 or GICv2, as the device tree says,
//! chosen once at boot.

mod gicv2;
mod gicv3;
mod shared;

pub use shared::WAKEUP_SGI;

use shared::current_index;
use crate::dt::{GicInfo, GicVersion, MAX_CPUS};
use gicv2::GicV2;
use gicv3::GicV3;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use keel_kernel::arch::{CpuId, InterruptController, IrqNumber};
use spin::Once;

/// The virtual interface's maintenance interrupt (PPI 9), Keel's own business: the
/// vCPU code handles its cause, [`Gic::acknowledge`] never returns it.
pub const MAINTENANCE_IRQ: u32 = 25;
/// The EL1 virtual timer's interrupt (PPI 11): the running guest's, forwarded to it.
pub const VIRTUAL_TIMER_IRQ: u32 = 27;

/// Per CPU: an interrupt acknowledged by the vCPU code that belongs to the host
/// ([`take_guest_interrupts`]); [`Gic::acknowledge`] returns it first.
static STASHED: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(NONE) }; MAX_CPUS];
const NONE: u32 = u32::MAX;
/// Per CPU: whether the virtual timer's PPI was last made active by Keel.
static TIMER_ACTIVE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per CPU: a vCPU is loaded, its virtual timer live (between `Vcpu::load` and `put`).
static VTIMER_LIVE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per CPU: [`Gic::acknowledge`] took the loaded vCPU's virtual timer interrupt, which
/// it must receive ([`take_vtimer_fired`]).
static VTIMER_FIRED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

enum Driver {
    V2(GicV2),
    V3(GicV3),
}

static DRIVER: Once<Driver> = Once::new();

/// Sets up the distributor (boot CPU, once).
pub fn init(info: &GicInfo) -> Result<(), &'static str> {
    let driver = DRIVER.call_once(|| match info.version {
        GicVersion::V2 => Driver::V2(GicV2::new(info)),
        GicVersion::V3 => Driver::V3(GicV3::new(info)),
    });
    match driver {
        Driver::V2(g) => g.init(),
        Driver::V3(g) => g.init(),
    }
}

/// 2 or 3.
pub fn version() -> Option<u32> {
    DRIVER.get().map(|d| match d {
        Driver::V2(_) => 2,
        Driver::V3(_) => 3,
    })
}

/// The number of list registers of the virtual CPU interface, or why it is unknown.
pub fn list_registers() -> Result<u32, &'static str> {
    match DRIVER.get() {
        Some(Driver::V3(g)) => Ok(g.list_registers()),
        Some(Driver::V2(g)) => g.list_registers().ok_or("unknown (no GICH frame in the device tree)"),
        None => Err("unknown (no interrupt controller)"),
    }
}

/// How many INTIDs the distributor has (`GICD_TYPER.ITLinesNumber`, at most 1020).
pub fn lines() -> u32 {
    let lines = match DRIVER.get() {
        Some(Driver::V2(g)) => g.lines(),
        Some(Driver::V3(g)) => g.lines(),
        None => 0,
    };
    u32::try_from(lines).unwrap_or(0)
}

/// The highest-priority pending interrupt of the calling CPU, not acknowledged.
pub fn highest_pending() -> Option<u32> {
    match DRIVER.get()? {
        Driver::V2(g) => g.highest_pending(),
        Driver::V3(g) => g.highest_pending(),
    }
}

fn acknowledge_raw() -> Option<u32> {
    match DRIVER.get()? {
        Driver::V2(g) => g.acknowledge(),
        Driver::V3(g) => g.acknowledge(),
    }
}

/// What [`take_guest_interrupts`] found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Taken {
    /// The running guest's virtual timer fired: acknowledged and left active (a list
    /// register linked to it deactivates it when the guest completes it).
    pub timer: bool,
    /// A host interrupt waits (for the core: `VmExit::Interrupt`).
    pub host: bool,
}

/// After a guest exit by IRQ: takes the interrupts that belong to the guest (its virtual
/// timer) or to the vCPU code (the maintenance interrupt), and reports whether a host
/// interrupt waits.
pub fn take_guest_interrupts() -> Taken {
    let mut t = Taken::default();
    loop {
        match highest_pending() {
            Some(MAINTENANCE_IRQ | VIRTUAL_TIMER_IRQ) => {}
            other => {
                t.host |= other.is_some();
                return t;
            }
        }
        let Some(irq) = acknowledge_raw() else { return t };
        match irq {
            VIRTUAL_TIMER_IRQ => priority_drop(irq),
            MAINTENANCE_IRQ => Gic::end_of_interrupt(IrqNumber(irq)),
            _ => {
                STASHED[current_index()].store(irq, Relaxed);
                t.host = true;
                return t;
            }
        }
        if irq == VIRTUAL_TIMER_IRQ {
            TIMER_ACTIVE[current_index()].store(true, Relaxed);
            t.timer = true;
        }
    }
}

/// Makes this CPU's virtual-timer PPI active (held: the guest about to run has its
/// previous firing in a list register, whose EOI deactivates it) or not (free to fire).
pub fn set_timer_active(active: bool) {
    let slot = &TIMER_ACTIVE[current_index()];
    if slot.swap(active, Relaxed) == active {
        return;
    }
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.set_private_active(VIRTUAL_TIMER_IRQ, active),
        Some(Driver::V3(g)) => g.set_private_active(VIRTUAL_TIMER_IRQ, active),
        None => {}
    }
}

/// Records whether a vCPU is loaded on this CPU (its virtual timer live while Keel runs).
pub fn set_vtimer_live(live: bool) {
    VTIMER_LIVE[current_index()].store(live, Relaxed);
}

/// Whether [`take_vtimer_fired`] would say yes.
pub fn vtimer_fired() -> bool {
    VTIMER_FIRED[current_index()].load(Relaxed)
}

/// Whether [`Gic::acknowledge`] took the loaded vCPU's virtual timer interrupt since the
/// last call (it is left active, as by [`take_guest_interrupts`]).
pub fn take_vtimer_fired() -> bool {
    VTIMER_FIRED[current_index()].swap(false, Relaxed)
}

fn priority_drop(irq: u32) {
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.priority_drop(irq),
        Some(Driver::V3(g)) => g.priority_drop(irq),
        None => {}
    }
}

/// The guest deactivated the timer PPI itself (its EOI of a linked list register).
pub fn timer_deactivated() {
    TIMER_ACTIVE[current_index()].store(false, Relaxed);
}

/// GICv2: the virtual interface control frame (GICH), banked per CPU.
pub fn gich_base() -> Option<usize> {
    match DRIVER.get()? {
        Driver::V2(g) => g.gich(),
        Driver::V3(_) => None,
    }
}

/// The interrupt controller, per calling CPU.
pub struct Gic;

/// GICv2 or GICv3, whichever the device tree describes; `send_ipi` raises SGI 0.
impl InterruptController for Gic {
    fn init_cpu() {
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.init_cpu(),
            Some(Driver::V3(g)) => g.init_cpu(),
            None => {}
        }
        Self::enable(IrqNumber(MAINTENANCE_IRQ));
        Self::enable(IrqNumber(VIRTUAL_TIMER_IRQ));
    }

    fn enable(irq: IrqNumber) {
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.enable(irq.0, true),
            Some(Driver::V3(g)) => g.enable(irq.0, true),
            None => {}
        }
    }

    fn disable(irq: IrqNumber) {
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.enable(irq.0, false),
            Some(Driver::V3(g)) => g.enable(irq.0, false),
            None => {}
        }
    }

    /// Skips (and completes) the maintenance interrupt, whose cause the vCPU that ran
    /// handled already.
    /// The virtual timer's PPI belongs to the vCPU loaded here, whose timer stays live
    /// while Keel runs: it is taken for it as [`take_guest_interrupts`] does (left
    /// active, [`take_vtimer_fired`]) and skipped. With no vCPU loaded (its timer was
    /// silenced when it was put) it is completed and skipped.
    fn acknowledge() -> Option<IrqNumber> {
        let stashed = STASHED[current_index()].swap(NONE, Relaxed);
        if stashed != NONE {
            return Some(IrqNumber(stashed));
        }
        loop {
            let irq = acknowledge_raw()?;
            if irq != MAINTENANCE_IRQ && irq != VIRTUAL_TIMER_IRQ {
                return Some(IrqNumber(irq));
            }
            if irq == VIRTUAL_TIMER_IRQ && VTIMER_LIVE[current_index()].load(Relaxed) {
                priority_drop(irq);
                TIMER_ACTIVE[current_index()].store(true, Relaxed);
                VTIMER_FIRED[current_index()].store(true, Relaxed);
                continue;
            }
            Self::end_of_interrupt(IrqNumber(irq));
            if irq == VIRTUAL_TIMER_IRQ {
                // Deactivated here: the next entry must make it active again if needed.
                timer_deactivated();
            }
        }
    }

    fn end_of_interrupt(irq: IrqNumber) {
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.end_of_interrupt(irq.0),
            Some(Driver::V3(g)) => g.end_of_interrupt(irq.0),
            None => {}
        }
    }

    /// Drops the running priority only (EOImode 1): the guest's EOI of the list
    /// register linked to it deactivates it.
    fn end_for_guest(irq: IrqNumber) {
        priority_drop(irq.0);
    }

    /// Masks it in the distributor and clears its active state there (any CPU).
    fn reclaim(irq: IrqNumber) {
        Self::disable(irq);
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.clear_active(irq.0),
            Some(Driver::V3(g)) => g.clear_active(irq.0),
            None => {}
        }
    }

    fn send_ipi(target: CpuId) {
        match DRIVER.get() {
            Some(Driver::V2(g)) => g.send_sgi(target, WAKEUP_SGI),
            Some(Driver::V3(g)) => g.send_sgi(target, WAKEUP_SGI),
            None => {}
        }
    }

    fn ipi_irq() -> IrqNumber {
        IrqNumber(WAKEUP_SGI)
    }
}
