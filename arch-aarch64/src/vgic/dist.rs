//! The distributor (GICD), GICv2 or GICv3, emulated on trapped accesses. Unknown and
//! reserved registers read as zero and ignore writes.

use super::model::{Version, Vgic, NR_PRIVATE};
use super::regs::{self, Field, View};

/// GICD_CTLR (GICv3, single security state): ARE and DS always set.
const CTLR_ARE: u64 = 1 << 4;
const CTLR_DS: u64 = 1 << 6;
/// Implementer "Keel" (not a JEP106 code any erratum matches), product 0.
pub const IIDR: u64 = 0x0000_0b4b;
/// Offsets of the identification register PIDR2 (ArchRev in bits 7:4).
const PIDR2_V3: u64 = 0xffe8;
const PIDR2_V2: u64 = 0xfe8;
/// GICv3 `GICD_IROUTER<n>` for SPIs: 0x6000 + 8 n.
const IROUTER: u64 = 0x6000;

/// An emulated access's outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effect {
    /// What a read returns.
    pub value: u64,
    /// vCPUs (bit n = vCPU n) with something new to receive.
    pub kick: u128,
}

/// `GICD_TYPER`: interrupt lines, CPUs (GICv2 / legacy), INTID bits (GICv3).
fn typer(g: &Vgic) -> u64 {
    let lines = (g.nr_irqs().div_ceil(32) - 1) as u64;
    let cpus = (g.vcpus().min(8) - 1) as u64;
    match g.version {
        Version::V3 => lines | cpus << 5 | 9 << 19,
        Version::V2 => lines | cpus << 5,
    }
}

/// A read (`value` = None) or write of `size` bytes at `offset` by vCPU `vcpu`.
pub fn access(g: &mut Vgic, vcpu: u32, offset: u64, size: u64, value: Option<u64>) -> Effect {
    let v3 = g.version == Version::V3;
    let view = if v3 { View::dist_v3(g, vcpu) } else { View::dist_v2(g, vcpu) };
    if let Some((field, at)) = regs::family(offset) {
        if v3 && field == Field::Targets {
            return Effect::default();
        }
        return match value {
            None => Effect { value: regs::read(g, view, field, at, size), kick: 0 },
            Some(v) => Effect { value: 0, kick: regs::write(g, view, field, at, size, v) },
        };
    }
    let read = |v: u64| Effect { value: v, kick: 0 };
    match (offset, value) {
        (0x000, None) if v3 => read(g.ctlr as u64 | CTLR_ARE | CTLR_DS),
        (0x000, None) => read(g.ctlr as u64),
        (0x000, Some(v)) => {
            g.ctlr = (v & 3) as u32;
            // Enabling a group may make waiting interrupts deliverable on any vCPU.
            Effect { value: 0, kick: all_with_pending(g) }
        }
        (0x004, None) => read(typer(g)),
        (0x008, None) => read(IIDR),
        (0xf00, Some(v)) if !v3 => sgir(g, vcpu, v),
        (o, None) if o == PIDR2_V3 && v3 => read(0x3b),
        (o, None) if o == PIDR2_V2 && !v3 => read(0x2b),
        (o, _) if v3 && o >= IROUTER + 8 * NR_PRIVATE as u64 && o < IROUTER + 8 * g.nr_irqs() as u64 => {
            irouter(g, o - IROUTER, size, value)
        }
        _ => Effect::default(),
    }
}

/// `GICD_IROUTER<n>`, 64-bit or either 32-bit half.
fn irouter(g: &mut Vgic, at: u64, size: u64, value: Option<u64>) -> Effect {
    let intid = (at / 8) as u32;
    let shift = (at % 8) * 8;
    let current = g.irouter[(intid - NR_PRIVATE) as usize];
    match value {
        None => Effect { value: current >> shift & if size == 8 { u64::MAX } else { 0xffff_ffff }, kick: 0 },
        Some(v) => {
            let new = if size == 8 {
                v
            } else {
                let mask = 0xffff_ffffu64 << shift;
                (current & !mask) | ((v << shift) & mask)
            };
            g.route_v3(intid, new);
            Effect::default()
        }
    }
}

/// GICv2 `GICD_SGIR`: target-list filter 0 (the list), 1 (all but self), 2 (self).
fn sgir(g: &mut Vgic, vcpu: u32, v: u64) -> Effect {
    let list = ((v >> 16) & 0xff) as u128;
    let all = (1u128 << g.vcpus().min(8)) - 1;
    let targets = match (v >> 24) & 3 {
        0 => list & all,
        1 => all & !(1u128 << vcpu),
        2 => 1u128 << vcpu,
        _ => 0,
    };
    Effect { value: 0, kick: g.send_sgi(vcpu, targets, (v & 0xf) as u32) }
}

fn all_with_pending(g: &Vgic) -> u128 {
    (0..g.vcpus()).filter(|&v| !g.candidates(v).is_empty()).fold(0, |m, v| m | 1u128 << v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gicv3_identification_and_control() {
        let mut g = Vgic::new(Version::V3, 4);
        assert_eq!(access(&mut g, 0, 0xffe8, 4, None).value & 0xf0, 0x30);
        assert_eq!(access(&mut g, 0, 0, 4, None).value, CTLR_ARE | CTLR_DS);
        access(&mut g, 0, 0, 4, Some(0x13));
        assert_eq!(g.ctlr, 3);
        let t = access(&mut g, 0, 4, 4, None).value;
        assert_eq!((t & 0x1f, (t >> 5) & 7, (t >> 19) & 0x1f), (1, 3, 9));
        // IROUTER33 = affinity of vCPU 2.
        access(&mut g, 0, 0x6000 + 8 * 33, 8, Some(2));
        assert_eq!(g.spi_target(33), 2);
        assert_eq!(access(&mut g, 0, 0x6000 + 8 * 33, 8, None).value, 2);
        // ITARGETSR is RAZ/WI with affinity routing.
        access(&mut g, 0, 0x820, 4, Some(u32::MAX as u64));
        assert_eq!(access(&mut g, 0, 0x820, 4, None).value, 0);
        // A passed-through SPI 79 makes 96 lines, and its IROUTER reachable.
        g.add_hw_spis(&[79]);
        assert_eq!(access(&mut g, 0, 4, 4, None).value & 0x1f, 2);
        access(&mut g, 0, 0x6000 + 8 * 79, 8, Some(1));
        assert_eq!(g.spi_target(79), 1);
        assert_eq!(access(&mut g, 0, 0x6000 + 8 * 96, 8, None).value, 0, "beyond the lines");
        // Unknown registers.
        assert_eq!(access(&mut g, 0, 0x5000, 4, None), Effect::default());
    }

    #[test]
    fn gicv2_sgir() {
        let mut g = Vgic::new(Version::V2, 3);
        let e = access(&mut g, 0, 0xf00, 4, Some(0b110 << 16 | 5));
        assert_eq!(e.kick, 0b110);
        assert!(g.private[1][5].pending && g.private[2][5].pending && !g.private[0][5].pending);
        assert_eq!(access(&mut g, 1, 0xf00, 4, Some(1 << 24 | 2)).kick, 0b101);
        assert_eq!(access(&mut g, 1, 0xf00, 4, Some(2 << 24 | 2)).kick, 0b010);
        assert_eq!(g.private[0][2].source, 1);
    }
}
