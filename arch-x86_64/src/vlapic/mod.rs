//! The virtual local APIC of each vCPU (Intel SDM vol. 3, chapter 11), in x2APIC mode:
//! its registers are MSRs 0x800..0x8ff (every access exits). It has what PVH guests use:
//! the ID, version, task priority, EOI, spurious-vector, in-service, request and error
//! registers, the local vector table, IPIs through the ICR and the self-IPI register, and
//! the timer in one-shot, periodic and TSC-deadline modes ([`timer`]). In xAPIC mode the
//! same registers are reached through the MMIO page ([`xapic`]: `mmio_read`,
//! `mmio_write`). There is no I/O APIC, and interrupts are edge-triggered only.
//!
//! The request register ([`Irr`]) is shared: another vCPU sending an IPI sets a bit in
//! it. Everything else belongs to the vCPU and is changed only by it.

mod entry;
pub mod icr;
pub mod timer;
mod xapic;

#[cfg(test)]
mod entry_tests;
#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use timer::LapicTimer;

/// x2APIC register MSRs (0x800 + the xAPIC offset / 16).
pub mod reg {
    pub const FIRST: u32 = 0x800;
    pub const LAST: u32 = 0x8ff;
    pub const ID: u32 = 0x802;
    pub const VERSION: u32 = 0x803;
    pub const TPR: u32 = 0x808;
    pub const PPR: u32 = 0x80a;
    pub const EOI: u32 = 0x80b;
    pub const LDR: u32 = 0x80d;
    pub const SVR: u32 = 0x80f;
    pub const ISR0: u32 = 0x810;
    pub const TMR0: u32 = 0x818;
    pub const IRR0: u32 = 0x820;
    pub const ESR: u32 = 0x828;
    pub const LVT_CMCI: u32 = 0x82f;
    pub const ICR: u32 = 0x830;
    pub const LVT_TIMER: u32 = 0x832;
    pub const LVT_THERMAL: u32 = 0x833;
    pub const LVT_PMC: u32 = 0x834;
    pub const LVT_LINT0: u32 = 0x835;
    pub const LVT_LINT1: u32 = 0x836;
    pub const LVT_ERROR: u32 = 0x837;
    pub const TIMER_INITIAL: u32 = 0x838;
    pub const TIMER_CURRENT: u32 = 0x839;
    pub const TIMER_DIVIDE: u32 = 0x83e;
    pub const SELF_IPI: u32 = 0x83f;
    /// IA32_TSC_DEADLINE.
    pub const TSC_DEADLINE: u32 = 0x6e0;
}

/// Version 0x14, seven LVT entries (CMCI, timer, thermal, PMC, LINT0, LINT1, error).
const VERSION: u64 = 0x0006_0014;
const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
/// APIC_BASE: BSP, x2APIC mode, global enable.
pub const BASE_BSP: u64 = 1 << 8;
pub const BASE_X2APIC: u64 = 1 << 10;
pub const BASE_ENABLE: u64 = 1 << 11;
pub const BASE_ADDRESS: u64 = 0xfee0_0000;
/// ESR: "send illegal vector", "received illegal vector".
const ESR_SEND_ILLEGAL: u32 = 1 << 5;
const ESR_RECEIVE_ILLEGAL: u32 = 1 << 6;

/// A vCPU's interrupt request register, which other vCPUs set bits of.
pub struct Irr {
    words: [AtomicU64; 4],
    /// The APIC is enabled globally (IA32_APIC_BASE): it accepts interrupts. While it is
    /// disabled by software (SVR), they wait here, as Xen's virtual APIC holds them.
    accepting: AtomicBool,
    /// A vector was requested since the owner last took the changes ([`entry`]).
    changed: AtomicBool,
}

impl Irr {
    pub const fn new() -> Self {
        Irr {
            words: [const { AtomicU64::new(0) }; 4],
            accepting: AtomicBool::new(true),
            changed: AtomicBool::new(true),
        }
    }

    /// Requests `vector` if the APIC accepts interrupts; true if it was newly requested.
    pub fn raise(&self, vector: u8) -> bool {
        if !self.accepting.load(Ordering::Acquire) {
            return false;
        }
        let bit = 1u64 << (vector % 64);
        let old = self.words[vector as usize / 64].fetch_or(bit, Ordering::SeqCst);
        // After the bit: an owner that takes this mark reads the words after it.
        self.changed.store(true, Ordering::Release);
        old & bit == 0
    }

    pub fn contains(&self, vector: u8) -> bool {
        self.words[vector as usize / 64].load(Ordering::SeqCst) & 1 << (vector % 64) != 0
    }

    fn clear(&self, vector: u8) {
        self.words[vector as usize / 64].fetch_and(!(1u64 << (vector % 64)), Ordering::SeqCst);
    }

    /// The highest requested vector (asked before every entry: it reads from the top
    /// word down and stops at the first that is not empty).
    pub fn highest(&self) -> Option<u8> {
        (0..4).rev().find_map(|i| {
            let w = self.words[i].load(Ordering::SeqCst);
            (w != 0).then(|| (i * 64 + 63 - w.leading_zeros() as usize) as u8)
        })
    }

    fn word(&self, i: usize) -> u64 {
        self.words[i].load(Ordering::SeqCst)
    }
}

impl Default for Irr {
    fn default() -> Self {
        Self::new()
    }
}

fn highest(words: &[u64; 4]) -> Option<u8> {
    (0..4).rev().find(|&i| words[i] != 0).map(|i| (i * 64 + 63 - words[i].leading_zeros() as usize) as u8)
}

/// What other CPUs may know of a vCPU's APIC: its request register, and (published by
/// the vCPU before it enters or halts) its priority and timer deadline, so that a
/// halted vCPU is woken only for an interrupt it would take.
pub struct Shared {
    pub irr: Irr,
    /// The processor priority, with bit 8 set while the APIC is enabled.
    priority: AtomicU32,
    /// The timer's next expiry (TSC), 0 if none.
    deadline: AtomicU64,
}

const PUBLISHED_ENABLED: u32 = 1 << 8;

impl Shared {
    pub const fn new() -> Self {
        Shared { irr: Irr::new(), priority: AtomicU32::new(0), deadline: AtomicU64::new(0) }
    }

    /// Whether the vCPU has an interrupt it would take (a requested vector above its
    /// published priority) or a timer due at TSC `now`.
    pub fn pending(&self, now: u64) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        let p = self.priority.load(Ordering::Acquire);
        let irr = self.irr.highest().is_some_and(|v| p & PUBLISHED_ENABLED != 0 && v >> 4 > (p as u8) >> 4);
        let d = self.deadline.load(Ordering::Acquire);
        irr || (d != 0 && d <= now)
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// What a register write asks of the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// An IPI to deliver (resolve the targets with [`icr::targets`]).
    pub ipi: Option<icr::Icr>,
    /// The vector an EOI completed.
    pub eoi: Option<u8>,
    /// The timer's deadline changed.
    pub timer: bool,
}

/// One vCPU's local APIC.
pub struct Vlapic {
    id: u32,
    base: u64,
    tpr: u8,
    isr: [u64; 4],
    svr: u32,
    /// CMCI, thermal, PMC, LINT0, LINT1, error.
    lvt: [u32; 6],
    esr: u32,
    esr_pending: u32,
    /// xAPIC mode's own registers: logical destination, destination format, and the
    /// ICR's halves (the destination is in the high half's top byte).
    xapic: xapic::XapicRegs,
    pub timer: LapicTimer,
    /// Something that decides the next interrupt (TPR, ISR, SVR, APIC base, the timer, an
    /// LVT entry) changed, or the last evaluation left work, since the changes were
    /// last taken ([`entry`]).
    changed: bool,
}

fn lvt_slot(index: u32) -> Option<usize> {
    Some(match index {
        reg::LVT_CMCI => 0,
        reg::LVT_THERMAL => 1,
        reg::LVT_PMC => 2,
        reg::LVT_LINT0 => 3,
        reg::LVT_LINT1 => 4,
        reg::LVT_ERROR => 5,
        _ => return None,
    })
}

impl Vlapic {
    /// The state after reset: xAPIC mode, enabled globally, disabled by software (SVR
    /// 0xff), every LVT entry masked.
    pub fn new(id: u32) -> Self {
        let bsp = if id == 0 { BASE_BSP } else { 0 };
        Vlapic {
            id,
            base: BASE_ADDRESS | BASE_ENABLE | bsp,
            tpr: 0,
            isr: [0; 4],
            svr: 0xff,
            lvt: [LVT_MASKED; 6],
            esr: 0,
            esr_pending: 0,
            xapic: xapic::XapicRegs::new(),
            timer: LapicTimer::new(),
            changed: true,
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn x2apic(&self) -> bool {
        self.base & BASE_X2APIC != 0
    }

    fn enabled(&self) -> bool {
        self.base & BASE_ENABLE != 0 && self.svr & SVR_ENABLE != 0
    }

    /// A write to IA32_APIC_BASE: the base address cannot move; the allowed mode changes
    /// are disabled → xAPIC → x2APIC → disabled (SDM 11.12.5). `false` means #GP.
    pub fn write_base(&mut self, value: u64, irr: &Irr) -> bool {
        self.changed = true;
        let bsp = self.base & BASE_BSP;
        let modes = value & (BASE_ENABLE | BASE_X2APIC);
        if value & !(BASE_ENABLE | BASE_X2APIC | BASE_BSP) != BASE_ADDRESS || value & BASE_BSP != bsp {
            return false;
        }
        let old = self.base & (BASE_ENABLE | BASE_X2APIC);
        let ok = match (old, modes) {
            (a, b) if a == b => true,
            (_, BASE_X2APIC) => false, // x2APIC without enable
            (o, BASE_ENABLE) if o == BASE_ENABLE | BASE_X2APIC => false, // x2APIC → xAPIC
            (0, m) if m == BASE_ENABLE | BASE_X2APIC => false, // disabled → x2APIC
            _ => true,
        };
        if ok {
            self.base = value;
            irr.accepting.store(value & BASE_ENABLE != 0, Ordering::Release);
        }
        ok
    }

    pub fn tpr(&self) -> u8 {
        self.tpr
    }

    pub fn set_tpr(&mut self, tpr: u8) {
        self.changed = true;
        self.tpr = tpr;
    }

    /// The processor priority: the task priority or the class of the highest vector in
    /// service, whichever is higher.
    pub fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// The highest requested vector whose priority class is above the processor
    /// priority, while the APIC is enabled: the next interrupt to deliver.
    pub fn deliverable(&self, irr: &Irr) -> Option<u8> {
        irr.highest().filter(|&v| self.enabled() && v >> 4 > self.ppr() >> 4)
    }

    /// The guest takes `vector`: it moves from requested to in service.
    pub fn accept(&mut self, irr: &Irr, vector: u8) {
        self.changed = true;
        irr.clear(vector);
        self.isr[vector as usize / 64] |= 1 << (vector % 64);
    }

    pub fn in_service(&self, vector: u8) -> bool {
        self.isr[vector as usize / 64] & 1 << (vector % 64) != 0
    }

    /// Publishes the priority and timer deadline other CPUs check ([`Shared::pending`]).
    pub fn publish(&self, shared: &Shared) {
        let enabled = if self.enabled() { PUBLISHED_ENABLED } else { 0 };
        shared.priority.store(self.ppr() as u32 | enabled, Ordering::Release);
        shared.deadline.store(self.timer.deadline().unwrap_or(0), Ordering::Release);
    }

    /// Fires the timer if it is due; true if its deadline changed.
    pub fn tick(&mut self, irr: &Irr, now: u64) -> bool {
        let before = self.timer.deadline();
        if let Some(v) = self.timer.expire(now) {
            self.changed = true;
            self.request(irr, v);
        }
        let moved = before != self.timer.deadline();
        self.changed |= moved;
        moved
    }

    /// Requests a local interrupt (timer, self-IPI): vectors below 16 are illegal.
    fn request(&mut self, irr: &Irr, vector: u8) {
        if vector < 16 {
            self.esr_pending |= ESR_RECEIVE_ILLEGAL;
        } else {
            irr.raise(vector);
        }
    }

    /// Reads register MSR `index` (x2APIC mode only); `None` means #GP.
    pub fn read(&self, irr: &Irr, index: u32, now: u64) -> Option<u64> {
        if index == reg::TSC_DEADLINE {
            return Some(self.timer.tsc_deadline());
        }
        if !self.x2apic() {
            return None;
        }
        self.register(irr, index, now)
    }

    /// Reads register `index` (an x2APIC MSR number) in either mode.
    fn register(&self, irr: &Irr, index: u32, now: u64) -> Option<u64> {
        let word = |w: &[u64; 4], n: u32| (w[n as usize / 2] >> (32 * (n % 2))) & 0xffff_ffff;
        Some(match index {
            reg::ID => self.id as u64,
            reg::VERSION => VERSION,
            reg::TPR => self.tpr as u64,
            reg::PPR => self.ppr() as u64,
            reg::LDR => icr::logical_id(self.id) as u64,
            reg::SVR => self.svr as u64,
            reg::ISR0..=0x817 => word(&self.isr, index - reg::ISR0),
            reg::TMR0..=0x81f => 0,
            reg::IRR0..=0x827 => {
                let n = index - reg::IRR0;
                (irr.word(n as usize / 2) >> (32 * (n % 2))) & 0xffff_ffff
            }
            reg::ESR => self.esr as u64,
            reg::LVT_TIMER => self.timer.lvt as u64,
            reg::TIMER_INITIAL => self.timer.initial as u64,
            reg::TIMER_CURRENT => self.timer.current(now) as u64,
            reg::TIMER_DIVIDE => self.timer.divide as u64,
            i => self.lvt[lvt_slot(i)?] as u64,
        })
    }

    /// Writes register MSR `index`; `None` means #GP (read-only, reserved, not in x2APIC
    /// mode, or reserved bits set where x2APIC checks them).
    pub fn write(&mut self, irr: &Irr, index: u32, value: u64, now: u64) -> Option<Effects> {
        let mut fx = Effects::default();
        if index == reg::TSC_DEADLINE {
            self.changed = true;
            self.timer.set_tsc_deadline(value);
            fx.timer = true;
            return Some(fx);
        }
        if !self.x2apic() {
            return None;
        }
        self.write_register(irr, index, value, now)
    }

    /// Writes register `index` (an x2APIC MSR number other than TSC_DEADLINE) in either
    /// mode; `None` for read-only, reserved or malformed writes.
    fn write_register(&mut self, irr: &Irr, index: u32, value: u64, now: u64) -> Option<Effects> {
        self.changed = true;
        let mut fx = Effects::default();
        let v32 = value as u32;
        if index != reg::ICR && value >> 32 != 0 {
            return None;
        }
        match index {
            reg::TPR => self.tpr = v32 as u8,
            reg::EOI => {
                if value != 0 {
                    return None;
                }
                if let Some(v) = highest(&self.isr) {
                    self.isr[v as usize / 64] &= !(1 << (v % 64));
                    fx.eoi = Some(v);
                }
            }
            reg::SVR => {
                self.svr = v32 & (0xff | SVR_ENABLE);
                if !self.enabled() {
                    self.lvt.iter_mut().for_each(|l| *l |= LVT_MASKED);
                    self.timer.lvt |= LVT_MASKED;
                }
            }
            reg::ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            reg::ICR => {
                let i = icr::Icr::decode(value);
                let illegal = matches!(i.delivery, icr::DELIVERY_FIXED | icr::DELIVERY_LOWEST) && i.vector < 16;
                if illegal {
                    self.esr_pending |= ESR_SEND_ILLEGAL;
                } else if !i.deassert {
                    fx.ipi = Some(i);
                }
            }
            reg::LVT_TIMER => {
                let masked = if self.enabled() { 0 } else { LVT_MASKED };
                self.timer.set_lvt((v32 & 0x7_10ff) | masked);
                fx.timer = true;
            }
            reg::TIMER_INITIAL => {
                self.timer.set_initial(v32, now);
                fx.timer = true;
            }
            reg::TIMER_DIVIDE => self.timer.divide = v32 & 0b1011,
            reg::SELF_IPI => {
                if value > 0xff {
                    return None;
                }
                self.request(irr, v32 as u8);
            }
            i => {
                let slot = lvt_slot(i)?;
                let masked = if self.enabled() { 0 } else { LVT_MASKED };
                self.lvt[slot] = (v32 & 0x1_f7ff) | masked;
            }
        }
        Some(fx)
    }
}
