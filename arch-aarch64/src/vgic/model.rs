//! The state of a domain's virtual GIC, independent of how it reaches the guest: per
//! interrupt enable, pending, level, active, priority, group, trigger and routing, for
//! each vCPU's SGIs and PPIs (0-31) and the domain's SPIs. The distributor and
//! redistributor emulations read and write it; the list-register code ([`super::lr`])
//! moves pending interrupts into a vCPU's list registers and back.

use crate::layout::{vcpu_affinity, vcpu_of_affinity, NR_SPIS, PPI_VIRT_TIMER};
use alloc::vec;
use alloc::vec::Vec;

/// The architecture the guest sees (the host's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// Interrupts private to each vCPU: SGIs 0-15, PPIs 16-31.
pub const NR_PRIVATE: u32 = 32;
/// One past the highest INTID a domain's distributor has at most (GICv2 and GICv3
/// number SPIs below 1020; 1020-1023 are special).
pub const MAX_IRQS: u32 = 1020;

/// One interrupt's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irq {
    pub enabled: bool,
    /// Latched pending state (an edge, a write to ISPENDR, an SGI).
    pub pending: bool,
    /// The input line of a level-sensitive interrupt (the event upcall, a device).
    pub level: bool,
    pub active: bool,
    /// Edge-triggered (ICFGR); else level-sensitive.
    pub edge: bool,
    pub group1: bool,
    pub priority: u8,
    /// In a list register of its vCPU (which holds its pending/active state then).
    pub queued: bool,
    /// SPI: the vCPU it is delivered to.
    pub target: u32,
    /// GICv2 SGI: the vCPU that sent it.
    pub source: u32,
    /// Linked to the same physical interrupt (the virtual timer's PPI, a passed-through
    /// device's SPI): the guest's EOI deactivates the physical one, which Keel
    /// acknowledged and left active.
    pub hw: bool,
}

impl Irq {
    /// Whether it wants to be delivered (pending by latch or line, not yet in an LR).
    pub fn wants_delivery(&self) -> bool {
        self.enabled && !self.queued && (self.pending || (!self.edge && self.level))
    }
}

/// What a vCPU's virtual CPU interface lets through, from `ICH_VMCR_EL2` / `GICH_VMCR` as
/// last saved: the priority mask and the group enables. A pending interrupt it does not
/// signal does not end a WFI (as on hardware), so a guest idling with interrupts masked
/// at its interface sleeps instead of spinning through WFI exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestMask {
    /// Interrupts of priority values below it are signalled (0: none).
    pub pmr: u8,
    pub group0: bool,
    pub group1: bool,
}

impl GuestMask {
    pub fn from_vmcr(version: Version, vmcr: u64) -> Self {
        let pmr = match version {
            Version::V3 => (vmcr >> 24) as u8,
            // GICH_VMCR.VMPriMask: the top five bits of the mask.
            Version::V2 => ((vmcr >> 27) as u8 & 0x1f) << 3,
        };
        GuestMask { pmr, group0: vmcr & 1 != 0, group1: vmcr & 2 != 0 }
    }

    /// Whether an interrupt of `priority` in group 1 (else 0) is signalled. The full
    /// eight bits are compared: where the GIC implements fewer, this errs towards
    /// signalling (a spurious wake-up, never a missed one).
    pub fn signals(&self, priority: u8, group1: bool) -> bool {
        (if group1 { self.group1 } else { self.group0 }) && priority < self.pmr
    }
}

/// A domain's virtual GIC.
#[derive(Clone, Debug)]
pub struct Vgic {
    pub version: Version,
    /// GICD_CTLR group enables: bit 0 group 0, bit 1 group 1.
    pub ctlr: u32,
    /// Per vCPU: SGIs and PPIs.
    pub private: Vec<[Irq; NR_PRIVATE as usize]>,
    /// Per vCPU: GICR_WAKER.ProcessorSleep (GICv3).
    pub asleep: Vec<bool>,
    /// Per vCPU: interrupts in its list registers in the pending state that its
    /// interface signals (for halts).
    pub lr_pending: Vec<u32>,
    /// Per vCPU: what its interface signals, as last saved.
    pub masks: Vec<GuestMask>,
    pub spis: Vec<Irq>,
    /// Per SPI: GICv2 GICD_ITARGETSR byte.
    pub targets_v2: Vec<u8>,
    /// Per SPI: GICv3 GICD_IROUTER.
    pub irouter: Vec<u64>,
}

/// The vCPU (bit n = vCPU n) an SPI's change gave something to receive: it wants
/// delivery now but did not `before`, and the distributor (`GICD_CTLR` = `ctlr`)
/// delivers its group.
fn newly_deliverable(ctlr: u32, irq: &Irq, before: bool) -> u128 {
    let group_on = ctlr & if irq.group1 { 2 } else { 1 } != 0;
    if !before && irq.wants_delivery() && group_on && irq.target < 128 {
        1u128 << irq.target
    } else {
        0
    }
}

/// Priority interrupts start with (the guest programs its own).
const DEFAULT_PRIORITY: u8 = 0xa0;

impl Vgic {
    pub fn new(version: Version, vcpus: u32) -> Self {
        // GICv3 guests are single-security: everything is group 1 (group 0 would be FIQs).
        let group1 = version == Version::V3;
        let private_irq = |i: u32| Irq {
            edge: i < 16,
            group1,
            priority: DEFAULT_PRIORITY,
            hw: i == PPI_VIRT_TIMER,
            ..Irq::default()
        };
        let private: [Irq; NR_PRIVATE as usize] = core::array::from_fn(|i| private_irq(i as u32));
        let spi = Irq { group1, priority: DEFAULT_PRIORITY, ..Irq::default() };
        Vgic {
            version,
            ctlr: 0,
            private: vec![private; vcpus as usize],
            asleep: vec![true; vcpus as usize],
            lr_pending: vec![0; vcpus as usize],
            masks: vec![GuestMask::default(); vcpus as usize],
            spis: vec![spi; NR_SPIS as usize],
            targets_v2: vec![1; NR_SPIS as usize],
            irouter: vec![0; NR_SPIS as usize],
        }
    }

    pub fn vcpus(&self) -> u32 {
        self.private.len() as u32
    }

    /// Interrupt `intid` as vCPU `vcpu` sees it.
    pub fn irq(&self, vcpu: u32, intid: u32) -> Option<&Irq> {
        if intid < NR_PRIVATE {
            self.private.get(vcpu as usize).map(|p| &p[intid as usize])
        } else {
            self.spis.get((intid - NR_PRIVATE) as usize)
        }
    }

    pub fn irq_mut(&mut self, vcpu: u32, intid: u32) -> Option<&mut Irq> {
        if intid < NR_PRIVATE {
            self.private.get_mut(vcpu as usize).map(|p| &mut p[intid as usize])
        } else {
            self.spis.get_mut((intid - NR_PRIVATE) as usize)
        }
    }

    /// Whether the distributor delivers `irq`'s group.
    fn group_enabled(&self, irq: &Irq) -> bool {
        self.ctlr & if irq.group1 { 2 } else { 1 } != 0
    }

    /// One past the highest INTID the distributor has: 32 private interrupts and the
    /// SPIs, a multiple of 32 (`GICD_TYPER.ITLinesNumber`).
    pub fn nr_irqs(&self) -> u32 {
        NR_PRIVATE + self.spis.len() as u32
    }

    /// Gives the domain the host SPIs `intids` as hardware-linked SPIs of the same
    /// numbers (device passthrough): the distributor grows to cover the highest (rounded
    /// up to 32 lines, at most [`MAX_IRQS`]), and each is marked `hw`, so its list
    /// register names the physical INTID and the guest's EOI deactivates it. Returns the
    /// INTIDs it could not give (not SPIs, beyond [`MAX_IRQS`]); the others are given.
    pub fn add_hw_spis(&mut self, intids: &[u32]) -> Vec<u32> {
        let (good, bad): (Vec<u32>, Vec<u32>) = intids.iter().partition(|&&i| (NR_PRIVATE..MAX_IRQS).contains(&i));
        if let Some(&top) = good.iter().max() {
            let lines = (top + 1).div_ceil(32) * 32;
            let spis = lines.min(MAX_IRQS) - NR_PRIVATE;
            if spis as usize > self.spis.len() {
                let spi = Irq { group1: self.version == Version::V3, priority: DEFAULT_PRIORITY, ..Irq::default() };
                self.spis.resize(spis as usize, spi);
                self.targets_v2.resize(spis as usize, 1);
                self.irouter.resize(spis as usize, 0);
            }
        }
        for &intid in &good {
            if let Some(irq) = self.spis.get_mut((intid - NR_PRIVATE) as usize) {
                irq.hw = true;
            }
        }
        bad
    }

    /// The physical interrupt of hardware-linked SPI `intid` fired (Keel acknowledged it
    /// and left it active): latch it pending, to be delivered once with the hardware
    /// link. Returns the vCPU (bit n = vCPU n) that now has it to receive, if it just
    /// became deliverable; while the guest keeps the SPI disabled it stays latched (and
    /// the physical one active, so its device cannot interrupt again meanwhile).
    /// Ignored for an SPI that is not hardware-linked.
    pub fn hw_spi_fired(&mut self, intid: u32) -> u128 {
        let ctlr = self.ctlr;
        let Some(irq) = intid.checked_sub(NR_PRIVATE).and_then(|i| self.spis.get_mut(i as usize)) else { return 0 };
        if !irq.hw {
            return 0;
        }
        let before = irq.wants_delivery();
        irq.pending = true;
        newly_deliverable(ctlr, irq, before)
    }

    /// The vCPU an SPI goes to.
    pub fn spi_target(&self, intid: u32) -> u32 {
        self.spis.get((intid - NR_PRIVATE) as usize).map_or(0, |i| i.target)
    }

    /// Interrupts vCPU `vcpu` should receive, highest priority (lowest value) first.
    pub fn candidates(&self, vcpu: u32) -> Vec<(u8, u32)> {
        let mut out = Vec::new();
        if let Some(private) = self.private.get(vcpu as usize) {
            for (i, irq) in private.iter().enumerate() {
                if irq.wants_delivery() && self.group_enabled(irq) {
                    out.push((irq.priority, i as u32));
                }
            }
        }
        for (i, irq) in self.spis.iter().enumerate() {
            if irq.target == vcpu && irq.wants_delivery() && self.group_enabled(irq) {
                out.push((irq.priority, NR_PRIVATE + i as u32));
            }
        }
        out.sort_unstable();
        out
    }

    /// Whether something would wake vCPU `vcpu` from WFI: an interrupt waiting for it or
    /// one in its list registers, pending, that its interface signals ([`GuestMask`]).
    pub fn has_pending(&self, vcpu: u32) -> bool {
        let mask = self.masks.get(vcpu as usize).copied().unwrap_or_default();
        self.lr_pending.get(vcpu as usize).is_some_and(|&n| n > 0)
            || self
                .candidates(vcpu)
                .iter()
                .any(|&(priority, intid)| self.irq(vcpu, intid).is_some_and(|irq| mask.signals(priority, irq.group1)))
    }

    /// Sets the input line of a level-sensitive private interrupt (the event upcall).
    pub fn set_private_level(&mut self, vcpu: u32, intid: u32, level: bool) {
        if let Some(irq) = self.irq_mut(vcpu, intid).filter(|_| intid < NR_PRIVATE) {
            irq.level = level;
        }
    }

    /// Sets the input line of SPI `intid` (a virtual device's interrupt). Returns the
    /// vCPU (bit n = vCPU n) that now has it to receive, if it just became deliverable.
    pub fn set_spi_level(&mut self, intid: u32, level: bool) -> u128 {
        let ctlr = self.ctlr;
        let Some(irq) = intid.checked_sub(NR_PRIVATE).and_then(|i| self.spis.get_mut(i as usize)) else { return 0 };
        let before = irq.wants_delivery();
        irq.level = level;
        newly_deliverable(ctlr, irq, before)
    }

    /// A new interface for `vcpu` (created or restarted by PSCI `CPU_ON`): nothing of it
    /// is in list registers any more.
    pub fn reset_cpu_interface(&mut self, vcpu: u32) {
        if let Some(p) = self.private.get_mut(vcpu as usize) {
            for irq in p.iter_mut() {
                irq.queued = false;
                irq.active = false;
            }
        }
        for irq in self.spis.iter_mut().filter(|i| i.target == vcpu) {
            irq.queued = false;
            irq.active = false;
        }
        if let Some(n) = self.lr_pending.get_mut(vcpu as usize) {
            *n = 0;
        }
        if let Some(m) = self.masks.get_mut(vcpu as usize) {
            *m = GuestMask::default();
        }
    }

    /// The virtual timer of `vcpu` fired (its physical PPI is acknowledged and active):
    /// deliver it once.
    pub fn timer_fired(&mut self, vcpu: u32) {
        if let Some(irq) = self.irq_mut(vcpu, PPI_VIRT_TIMER) {
            irq.pending = true;
        }
    }

    /// Whether `vcpu`'s virtual timer interrupt sits in its list registers.
    pub fn timer_queued(&self, vcpu: u32) -> bool {
        self.irq(vcpu, PPI_VIRT_TIMER).is_some_and(|i| i.queued)
    }

    /// Whether `vcpu` has a firing of its virtual timer it has not completed: in its list
    /// registers, or latched while the guest cannot take it (its PPI disabled). The
    /// physical PPI must stay active meanwhile, or the still-asserted timer would
    /// interrupt every entry into the guest.
    pub fn timer_held(&self, vcpu: u32) -> bool {
        self.irq(vcpu, PPI_VIRT_TIMER).is_some_and(|i| i.queued || i.pending)
    }

    /// `vcpu`'s virtual timer no longer asserts its line (the guest reprogrammed, masked
    /// or stopped it): a firing it never took is dropped, as for any level-sensitive
    /// interrupt whose line fell.
    pub fn timer_line_low(&mut self, vcpu: u32) {
        if let Some(irq) = self.irq_mut(vcpu, PPI_VIRT_TIMER) {
            if !irq.queued {
                irq.pending = false;
            }
        }
    }

    /// Makes SGI `sgi` pending on every vCPU in `targets` (bit n = vCPU n), sent by
    /// `from`. Returns the vCPUs that got it.
    pub fn send_sgi(&mut self, from: u32, targets: u128, sgi: u32) -> u128 {
        let mut hit = 0u128;
        for v in 0..self.vcpus() {
            if targets & (1u128 << v) != 0 {
                if let Some(irq) = self.irq_mut(v, sgi & 0xf) {
                    irq.pending = true;
                    irq.source = from;
                    hit |= 1u128 << v;
                }
            }
        }
        hit
    }

    /// GICv3 SGI target list from `ICC_SGI1R_EL1`: vCPUs whose affinity matches, or
    /// every vCPU but `from` (IRM).
    pub fn sgi1r_targets(&self, from: u32, value: u64) -> u128 {
        let all = if self.vcpus() >= 128 { u128::MAX } else { (1u128 << self.vcpus()) - 1 };
        if value & (1 << 40) != 0 {
            return all & !(1u128 << from);
        }
        let aff1 = (value >> 16) & 0xff;
        let (aff2, aff3, rs) = ((value >> 32) & 0xff, (value >> 48) & 0xff, (value >> 44) & 0xf);
        if aff2 != 0 || aff3 != 0 {
            return 0;
        }
        let mut out = 0u128;
        for bit in 0..16u64 {
            if value & (1 << bit) != 0 {
                if let Some(v) = vcpu_of_affinity(aff1 << 8 | (rs * 16 + bit)) {
                    if v < self.vcpus() {
                        out |= 1u128 << v;
                    }
                }
            }
        }
        out
    }

    /// Routes SPI `intid` by its GICv3 `IROUTER` value (1-of-N routing goes to vCPU 0;
    /// an affinity that names no vCPU too).
    pub fn route_v3(&mut self, intid: u32, irouter: u64) {
        let i = (intid - NR_PRIVATE) as usize;
        if i < self.spis.len() {
            self.irouter[i] = irouter & 0xff_80ff_ffff;
            let target = if irouter & (1 << 31) != 0 {
                0
            } else {
                vcpu_of_affinity(irouter & 0xff_ffff).filter(|&v| v < self.vcpus()).unwrap_or(0)
            };
            self.spis[i].target = target;
        }
    }

    /// Routes SPI `intid` by its GICv2 `ITARGETSR` byte (the lowest CPU named).
    pub fn route_v2(&mut self, intid: u32, targets: u8) {
        let i = (intid - NR_PRIVATE) as usize;
        if i < self.spis.len() {
            let mask = if self.vcpus() >= 8 { 0xff } else { ((1u32 << self.vcpus()) - 1) as u8 };
            self.targets_v2[i] = targets & mask;
            self.spis[i].target = (targets & mask).trailing_zeros().min(7);
        }
    }

    /// The affinity GICR_TYPER reports for vCPU `vcpu`.
    pub fn affinity(vcpu: u32) -> u64 {
        vcpu_affinity(vcpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_enabled_pending_and_in_priority_order() {
        let mut g = Vgic::new(Version::V3, 2);
        g.ctlr = 2;
        g.private[0][5].pending = true;
        g.private[0][31].level = true;
        assert!(g.candidates(0).is_empty(), "nothing is enabled");
        g.private[0][5].enabled = true;
        g.private[0][31].enabled = true;
        g.private[0][31].priority = 0x80;
        assert_eq!(g.candidates(0), [(0x80, 31), (0xa0, 5)]);
        assert!(g.candidates(1).is_empty());
        g.private[0][31].queued = true;
        assert_eq!(g.candidates(0), [(0xa0, 5)]);
        g.ctlr = 0;
        assert!(g.candidates(0).is_empty(), "group 1 disabled");
    }

    #[test]
    fn sgi_target_lists() {
        let g = Vgic::new(Version::V3, 20);
        // Aff1 = 1, target list bits 0 and 3: vCPUs 16 and 19.
        assert_eq!(g.sgi1r_targets(0, 1 << 16 | 0b1001), 1 << 16 | 1 << 19);
        assert_eq!(g.sgi1r_targets(0, 0b11), 0b11);
        assert_eq!(g.sgi1r_targets(3, 1 << 40), ((1u128 << 20) - 1) & !(1 << 3));
        assert_eq!(g.sgi1r_targets(0, 1 << 32 | 1), 0, "Aff2 names no vCPU");
        let mut g = Vgic::new(Version::V3, 2);
        assert_eq!(g.send_sgi(1, 0b11, 7), 0b11);
        assert!(g.private[0][7].pending && g.private[1][7].pending);
        assert_eq!(g.private[0][7].source, 1);
    }

    #[test]
    fn spi_routing() {
        let mut g = Vgic::new(Version::V3, 4);
        g.route_v3(40, 0x3);
        assert_eq!(g.spi_target(40), 3);
        g.route_v3(40, 0x7);
        assert_eq!(g.spi_target(40), 0, "no such vCPU");
        let mut g = Vgic::new(Version::V2, 2);
        g.route_v2(33, 0b10);
        assert_eq!(g.spi_target(33), 1);
        g.route_v2(33, 0b1100);
        assert_eq!(g.targets_v2[1], 0, "CPUs that do not exist are dropped");
    }

    #[test]
    fn a_device_line_reaches_the_spi_target_once_enabled() {
        let mut g = Vgic::new(Version::V3, 2);
        g.ctlr = 2;
        g.route_v3(32, 0x1);
        assert_eq!(g.set_spi_level(32, true), 0, "disabled: nobody to kick");
        g.set_spi_level(32, false);
        g.spis[0].enabled = true;
        assert_eq!(g.set_spi_level(32, true), 0b10);
        assert_eq!(g.candidates(1), [(DEFAULT_PRIORITY, 32)]);
        assert_eq!(g.set_spi_level(32, true), 0, "already high");
        g.set_spi_level(32, false);
        assert!(g.candidates(1).is_empty());
        assert_eq!(g.set_spi_level(7, true), 0, "not an SPI");
        assert_eq!(g.set_spi_level(32 + NR_SPIS, true), 0);
    }

    /// A passed-through SPI beyond the 32 the domain starts with: the distributor grows
    /// to cover it (GICD_TYPER follows), it is hardware-linked, and its firing reaches
    /// the vCPU it is routed to once enabled, once.
    #[test]
    fn a_passed_through_spi_grows_the_distributor_and_is_hardware_linked() {
        let mut g = Vgic::new(Version::V3, 2);
        assert_eq!(g.nr_irqs(), 64);
        assert_eq!(g.add_hw_spis(&[79, 78, 27, 1020, 5000]), [27, 1020, 5000], "not SPIs, or beyond the GIC");
        assert_eq!(g.nr_irqs(), 96);
        assert!(g.irq(0, 79).is_some_and(|i| i.hw) && g.irq(0, 78).is_some_and(|i| i.hw));
        assert!(!g.irq(0, 77).is_some_and(|i| i.hw), "only what was given");
        assert_eq!(g.hw_spi_fired(40), 0, "not hardware-linked: ignored");
        assert!(!g.spis[8].pending);
        g.ctlr = 2;
        g.route_v3(79, 1);
        assert_eq!(g.hw_spi_fired(79), 0, "disabled: latched, nobody to kick");
        assert!(g.irq(0, 79).is_some_and(|i| i.pending));
        g.irq_mut(0, 79).unwrap().enabled = true;
        assert_eq!(g.candidates(1), [(DEFAULT_PRIORITY, 79)]);
        let mut lrs = [None; 4];
        super::super::lr::fill(&mut g, 1, &mut lrs);
        let entry = lrs[0].expect("in a list register");
        assert!(entry.hw && !entry.eoi && entry.intid == 79, "hardware-linked, no EOI maintenance");
        assert_eq!(g.hw_spi_fired(79), 0, "in a list register: latched for after the guest's EOI");
        g.add_hw_spis(&[33]);
        assert_eq!(g.nr_irqs(), 96, "never shrinks");
        g.add_hw_spis(&[1019]);
        assert_eq!(g.nr_irqs(), MAX_IRQS);
    }
}
