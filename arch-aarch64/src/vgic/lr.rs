//! List registers: the encoding of GICv3 `ICH_LR<n>_EL2` and GICv2 `GICH_LR<n>`, and
//! moving interrupts between the model and a vCPU's list registers — [`fill`] before
//! entering the guest, [`sync`] after it exits.
//!
//! An interrupt in a list register is `queued` in the model; the list register holds its
//! pending/active state until the guest completes it (the state becomes invalid), after
//! which a level-sensitive interrupt whose line is still high is delivered again.
//! Level-sensitive interrupts ask for an EOI maintenance interrupt, so that Keel sees the
//! completion at once (the event upcall's level is re-read then: `VmExit::UpcallAck`).

use super::model::{Version, Vgic};

/// A list register's state field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LrState {
    #[default]
    Invalid,
    Pending,
    Active,
    PendingActive,
}

impl LrState {
    fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }

    fn bits(self) -> u64 {
        self as u64
    }
}

/// What Keel put in one list register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListEntry {
    pub intid: u32,
    pub state: LrState,
    pub priority: u8,
    pub group1: bool,
    /// A maintenance interrupt when the guest completes it.
    pub eoi: bool,
    /// GICv2 SGIs: the sending vCPU (the guest reads it from GICC_IAR).
    pub source: u32,
    /// Linked to the physical interrupt of the same number (no EOI maintenance then).
    pub hw: bool,
}

/// `ICH_LR<n>_EL2` fields.
const V3_EOI: u64 = 1 << 41;
const V3_GROUP: u64 = 1 << 60;
const V3_HW: u64 = 1 << 61;
/// `GICH_LR<n>` fields.
const V2_EOI: u64 = 1 << 19;
const V2_GROUP: u64 = 1 << 30;
const V2_HW: u64 = 1 << 31;

impl ListEntry {
    pub fn encode(&self, v: Version) -> u64 {
        match v {
            Version::V3 => {
                let link = if self.hw {
                    V3_HW | (self.intid as u64) << 32
                } else if self.eoi {
                    V3_EOI
                } else {
                    0
                };
                self.state.bits() << 62
                    | if self.group1 { V3_GROUP } else { 0 }
                    | (self.priority as u64) << 48
                    | link
                    | self.intid as u64
            }
            Version::V2 => {
                let link = if self.hw {
                    V2_HW | (self.intid as u64 & 0x3ff) << 10
                } else if self.intid < 16 {
                    (self.source as u64 & 7) << 10 | if self.eoi { V2_EOI } else { 0 }
                } else if self.eoi {
                    V2_EOI
                } else {
                    0
                };
                self.state.bits() << 28
                    | if self.group1 { V2_GROUP } else { 0 }
                    | (self.priority as u64 >> 3) << 23
                    | link
                    | (self.intid as u64 & 0x3ff)
            }
        }
    }

    /// The state field of a list register's value.
    pub fn state_of(raw: u64, v: Version) -> LrState {
        match v {
            Version::V3 => LrState::from_bits(raw >> 62),
            Version::V2 => LrState::from_bits(raw >> 28),
        }
    }
}

/// Moves the interrupts vCPU `vcpu` should receive into its free list registers
/// (`lrs[i] == None`), highest priority first. Returns whether some did not fit: then
/// Keel asks for an underflow maintenance interrupt to come back and fill again.
pub fn fill(g: &mut Vgic, vcpu: u32, lrs: &mut [Option<ListEntry>]) -> bool {
    let mut overflow = false;
    for (priority, intid) in g.candidates(vcpu) {
        if lrs.iter().flatten().any(|e| e.intid == intid) {
            continue; // never twice in the list registers; it waits for the first
        }
        let Some(slot) = lrs.iter_mut().find(|s| s.is_none()) else {
            overflow = true;
            break;
        };
        let Some(irq) = g.irq_mut(vcpu, intid) else { continue };
        *slot = Some(ListEntry {
            intid,
            state: LrState::Pending,
            priority,
            group1: irq.group1,
            eoi: !irq.edge && !irq.hw,
            source: irq.source,
            hw: irq.hw,
        });
        irq.queued = true;
        irq.pending = false;
    }
    count_pending(g, vcpu, lrs);
    overflow
}

/// What the guest completed since the last entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completed {
    /// The guest completed interrupt `upcall` (the event PPI).
    pub upcall: bool,
    /// How many interrupts it completed.
    pub count: u32,
}

/// Takes the list registers' states after an exit (`states[i]` for `lrs[i]`): completed
/// interrupts leave the list registers; the others keep their state there.
pub fn sync(g: &mut Vgic, vcpu: u32, lrs: &mut [Option<ListEntry>], states: &[LrState], upcall: u32) -> Completed {
    let mut done = Completed::default();
    for (slot, &state) in lrs.iter_mut().zip(states) {
        let Some(entry) = slot.as_mut() else { continue };
        entry.state = state;
        let Some(irq) = g.irq_mut(vcpu, entry.intid) else { continue };
        if state == LrState::Invalid {
            irq.queued = false;
            irq.active = false;
            done.count += 1;
            done.upcall |= entry.intid == upcall;
            *slot = None;
        } else {
            irq.active = matches!(state, LrState::Active | LrState::PendingActive);
        }
    }
    count_pending(g, vcpu, lrs);
    done
}

/// Counts the list registers holding a pending interrupt that the interface signals
/// (the running priority is not considered: that errs towards waking).
fn count_pending(g: &mut Vgic, vcpu: u32, lrs: &[Option<ListEntry>]) {
    let mask = g.masks.get(vcpu as usize).copied().unwrap_or_default();
    let pending = |e: &&ListEntry| matches!(e.state, LrState::Pending | LrState::PendingActive);
    let n = lrs.iter().flatten().filter(pending).filter(|e| mask.signals(e.priority, e.group1)).count();
    if let Some(c) = g.lr_pending.get_mut(vcpu as usize) {
        *c = n as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::GuestMask;
    use super::*;

    #[test]
    fn encodings() {
        let e = ListEntry {
            intid: 31,
            state: LrState::Pending,
            priority: 0xa0,
            group1: true,
            eoi: true,
            source: 0,
            hw: false,
        };
        assert_eq!(e.encode(Version::V3), 1 << 62 | 1 << 60 | 0xa0 << 48 | 1 << 41 | 31);
        assert_eq!(ListEntry::state_of(e.encode(Version::V3), Version::V3), LrState::Pending);
        let sgi = ListEntry {
            intid: 3,
            state: LrState::Pending,
            priority: 0xa0,
            group1: false,
            eoi: false,
            source: 1,
            hw: false,
        };
        assert_eq!(sgi.encode(Version::V2), 1 << 28 | (0xa0 >> 3) << 23 | 1 << 10 | 3);
        let timer = ListEntry { intid: 27, hw: true, ..e };
        assert_eq!(timer.encode(Version::V3), 1 << 62 | 1 << 61 | 1 << 60 | 0xa0 << 48 | 27 << 32 | 27);
        assert_eq!(timer.encode(Version::V2) & (1 << 31 | 0x3ff << 10), 1 << 31 | 27 << 10);
        assert_eq!(ListEntry::state_of(3 << 28, Version::V2), LrState::PendingActive);
    }

    /// More pending interrupts than list registers: the rest wait, and go in as the
    /// guest completes the first ones; none is lost or delivered twice.
    #[test]
    fn more_pending_than_list_registers() {
        let mut g = Vgic::new(Version::V3, 1);
        g.ctlr = 2;
        g.masks[0] = GuestMask { pmr: 0xff, group0: false, group1: true };
        for sgi in 0..8 {
            g.private[0][sgi].enabled = true;
            g.private[0][sgi].pending = true;
        }
        let mut lrs = [None; 4];
        assert!(fill(&mut g, 0, &mut lrs), "8 interrupts do not fit in 4 list registers");
        let first: Vec<u32> = lrs.iter().flatten().map(|e| e.intid).collect();
        assert_eq!(first, [0, 1, 2, 3]);
        assert!(g.has_pending(0));
        // The guest takes and completes two of them.
        let states = [LrState::Invalid, LrState::Active, LrState::Invalid, LrState::Pending];
        assert_eq!(sync(&mut g, 0, &mut lrs, &states, 31).count, 2);
        assert!(g.private[0][1].active && !g.private[0][0].queued);
        assert!(fill(&mut g, 0, &mut lrs), "two still wait");
        let now: Vec<u32> = lrs.iter().flatten().map(|e| e.intid).collect();
        assert_eq!(now, [4, 1, 5, 3]);
        let all_done = [LrState::Invalid; 4];
        sync(&mut g, 0, &mut lrs, &all_done, 31);
        assert!(!fill(&mut g, 0, &mut lrs));
        sync(&mut g, 0, &mut lrs, &all_done, 31);
        assert!(!g.has_pending(0) && lrs.iter().all(|l| l.is_none()));
        assert!((0..8).all(|i| !g.private[0][i].pending && !g.private[0][i].queued));
    }

    /// The level-sensitive upcall stays in the LR until completed, then comes back
    /// while its line is high.
    #[test]
    fn level_interrupt_is_redelivered_while_high() {
        let mut g = Vgic::new(Version::V3, 1);
        g.ctlr = 2;
        g.private[0][31].enabled = true;
        g.set_private_level(0, 31, true);
        let mut lrs = [None; 2];
        fill(&mut g, 0, &mut lrs);
        assert!(lrs[0].is_some_and(|e| e.eoi && e.intid == 31));
        fill(&mut g, 0, &mut lrs);
        assert_eq!(lrs.iter().flatten().count(), 1, "not twice");
        let done = sync(&mut g, 0, &mut lrs, &[LrState::Invalid, LrState::Invalid], 31);
        assert!(done.upcall);
        fill(&mut g, 0, &mut lrs);
        assert_eq!(lrs.iter().flatten().count(), 1, "the line is still high");
        sync(&mut g, 0, &mut lrs, &[LrState::Invalid, LrState::Invalid], 31);
        g.set_private_level(0, 31, false);
        fill(&mut g, 0, &mut lrs);
        assert!(lrs.iter().all(|l| l.is_none()));
    }

    /// A pending interrupt wakes a WFI only if the guest's interface signals it: its group
    /// enabled and its priority above the mask (GICv3 VPMR, GICv2 VMPriMask).
    #[test]
    fn what_the_guest_masks_does_not_end_a_wfi() {
        for version in [Version::V3, Version::V2] {
            let mut g = Vgic::new(version, 1);
            g.ctlr = 3;
            let group1 = version == Version::V3;
            g.private[0][5].enabled = true;
            g.private[0][5].pending = true;
            assert!(!g.has_pending(0), "{version:?}: everything masked at reset");
            let vmcr_open = match version {
                Version::V3 => 0xf0 << 24 | 3,
                Version::V2 => (0xf0 >> 3) << 27 | 3,
            };
            g.masks[0] = GuestMask::from_vmcr(version, vmcr_open);
            assert_eq!(g.masks[0], GuestMask { pmr: 0xf0, group0: true, group1: true });
            assert!(g.has_pending(0), "{version:?}: priority 0xa0 under mask 0xf0");
            g.private[0][5].priority = 0xf0;
            assert!(!g.has_pending(0), "{version:?}: priority at the mask");
            g.private[0][5].priority = 0xa0;
            g.masks[0] = GuestMask::from_vmcr(version, vmcr_open & !if group1 { 2 } else { 1 });
            assert!(!g.has_pending(0), "{version:?}: its group disabled");
            // In a list register: counted only while signalled.
            g.masks[0] = GuestMask::from_vmcr(version, vmcr_open);
            let mut lrs = [None; 4];
            fill(&mut g, 0, &mut lrs);
            sync(&mut g, 0, &mut lrs, &[LrState::Pending, LrState::Invalid, LrState::Invalid, LrState::Invalid], 31);
            assert!(g.has_pending(0));
            g.masks[0].pmr = 0x80;
            sync(&mut g, 0, &mut lrs, &[LrState::Pending, LrState::Invalid, LrState::Invalid, LrState::Invalid], 31);
            assert!(!g.has_pending(0), "{version:?}: masked in its list register");
        }
    }

    /// The virtual timer fires before the guest enabled its PPI (Linux arms the timer
    /// first): the firing is held, so the physical PPI stays active and cannot interrupt
    /// every entry; it is delivered once enabled, or dropped if the line falls first.
    #[test]
    fn a_timer_firing_the_guest_cannot_take_yet_is_held() {
        use crate::layout::PPI_VIRT_TIMER as T;
        let mut g = Vgic::new(Version::V3, 1);
        g.ctlr = 2;
        g.masks[0] = GuestMask { pmr: 0xff, group0: false, group1: true };
        let mut lrs = [None; 4];
        g.timer_fired(0);
        fill(&mut g, 0, &mut lrs);
        assert!(g.timer_held(0) && !g.timer_queued(0), "disabled: latched, not in a list register");
        g.timer_line_low(0);
        assert!(!g.timer_held(0), "the line fell before the guest took it: dropped");
        g.timer_fired(0);
        g.private[0][T as usize].enabled = true;
        fill(&mut g, 0, &mut lrs);
        assert!(g.timer_queued(0) && g.timer_held(0));
        g.timer_line_low(0);
        assert!(g.timer_queued(0), "in a list register it stays until the guest completes it");
        sync(&mut g, 0, &mut lrs, &[LrState::Invalid; 4], 31);
        assert!(!g.timer_held(0));
    }
}
