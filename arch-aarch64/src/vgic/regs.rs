//! The interrupt registers the GICv2 distributor, the GICv3 distributor and the GICv3
//! redistributors' SGI frames share: one field per interrupt (1, 2 or 8 bits), packed
//! into 32-bit registers. Accesses of any size are split into the interrupts they cover.

use super::model::{Irq, Vgic, NR_PRIVATE};

/// A per-interrupt register family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    Priority,
    Targets,
    Config,
}

impl Field {
    fn bits(self) -> u64 {
        match self {
            Field::Priority | Field::Targets => 8,
            Field::Config => 2,
            _ => 1,
        }
    }
}

/// The families at their offsets in a distributor or an SGI frame, and their lengths.
pub const FAMILIES: [(u64, u64, Field); 10] = [
    (0x080, 0x80, Field::Group),
    (0x100, 0x80, Field::SetEnable),
    (0x180, 0x80, Field::ClearEnable),
    (0x200, 0x80, Field::SetPending),
    (0x280, 0x80, Field::ClearPending),
    (0x300, 0x80, Field::SetActive),
    (0x380, 0x80, Field::ClearActive),
    (0x400, 0x400, Field::Priority),
    (0x800, 0x400, Field::Targets),
    (0xc00, 0x100, Field::Config),
];

/// The family `offset` falls in, and the offset within it.
pub fn family(offset: u64) -> Option<(Field, u64)> {
    FAMILIES.iter().find(|(base, len, _)| (*base..base + len).contains(&offset)).map(|&(b, _, f)| (f, offset - b))
}

/// Which interrupts an access through a view may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// The vCPU whose private interrupts the view shows.
    pub vcpu: u32,
    /// Lowest and one past the highest INTID it reaches.
    pub first: u32,
    pub end: u32,
}

impl View {
    /// GICv3 distributor of `g`: SPIs only (affinity routing: private ones are in the
    /// GICR).
    pub fn dist_v3(g: &Vgic, vcpu: u32) -> Self {
        View { vcpu, first: NR_PRIVATE, end: g.nr_irqs() }
    }
    /// GICv2 distributor of `g`: everything, private interrupts banked per vCPU.
    pub fn dist_v2(g: &Vgic, vcpu: u32) -> Self {
        View { vcpu, first: 0, end: g.nr_irqs() }
    }
    /// GICv3 redistributor SGI frame of `vcpu`.
    pub fn redist(vcpu: u32) -> Self {
        View { vcpu, first: 0, end: NR_PRIVATE }
    }
}

fn pending_state(irq: &Irq) -> bool {
    irq.pending || (!irq.edge && irq.level) || (irq.queued && !irq.active)
}

fn get(g: &Vgic, view: View, intid: u32, f: Field) -> u64 {
    let Some(irq) = g.irq(view.vcpu, intid) else { return 0 };
    match f {
        Field::Group => irq.group1 as u64,
        Field::SetEnable | Field::ClearEnable => irq.enabled as u64,
        Field::SetPending | Field::ClearPending => pending_state(irq) as u64,
        Field::SetActive | Field::ClearActive => irq.active as u64,
        Field::Priority => irq.priority as u64,
        Field::Targets if intid < NR_PRIVATE => 1 << view.vcpu.min(7),
        Field::Targets => g.targets_v2[(intid - NR_PRIVATE) as usize] as u64,
        Field::Config => (irq.edge as u64) << 1,
    }
}

/// Applies `bits` of field `f` to `intid`; returns the vCPU that now has something to
/// receive, if any.
fn set(g: &mut Vgic, view: View, intid: u32, f: Field, bits: u64) -> Option<u32> {
    if f == Field::Targets {
        if intid >= NR_PRIVATE {
            g.route_v2(intid, bits as u8);
        }
        return None;
    }
    let target = if intid < NR_PRIVATE { view.vcpu } else { g.spi_target(intid) };
    let irq = g.irq_mut(view.vcpu, intid)?;
    let on = bits & 1 != 0;
    match f {
        Field::Group => irq.group1 = on,
        Field::SetEnable if on => irq.enabled = true,
        Field::ClearEnable if on => irq.enabled = false,
        Field::SetPending if on => irq.pending = true,
        Field::ClearPending if on => irq.pending = false,
        Field::SetActive if on => irq.active = true,
        Field::ClearActive if on => irq.active = false,
        Field::Priority => irq.priority = bits as u8,
        // SGIs are always edge-triggered; bit 0 of each field is reserved.
        Field::Config if intid >= 16 => irq.edge = bits & 2 != 0,
        _ => {}
    }
    irq.wants_delivery().then_some(target)
}

/// Reads `size` bytes at `offset` of family `f` through `view`.
pub fn read(g: &Vgic, view: View, f: Field, offset: u64, size: u64) -> u64 {
    let bits = f.bits();
    let first = offset * 8 / bits;
    let mut value = 0u64;
    for i in 0..size * 8 / bits {
        let intid = (first + i) as u32;
        if (view.first..view.end).contains(&intid) {
            value |= get(g, view, intid, f) << (i * bits);
        }
    }
    value
}

/// Writes `value` of `size` bytes at `offset` of family `f` through `view`; returns the
/// vCPUs (bit n = vCPU n) that have something new to receive.
pub fn write(g: &mut Vgic, view: View, f: Field, offset: u64, size: u64, value: u64) -> u128 {
    let bits = f.bits();
    let first = offset * 8 / bits;
    let mask = (1u64 << bits) - 1;
    let mut kick = 0u128;
    for i in 0..size * 8 / bits {
        let intid = (first + i) as u32;
        if (view.first..view.end).contains(&intid) {
            if let Some(v) = set(g, view, intid, f, (value >> (i * bits)) & mask) {
                kick |= 1u128 << v;
            }
        }
    }
    kick
}

#[cfg(test)]
mod tests {
    use super::super::model::Version;
    use super::*;

    #[test]
    fn bitmaps_priorities_and_config() {
        let mut g = Vgic::new(Version::V3, 2);
        let view = View::dist_v3(&g, 0);
        // ISENABLER1 covers SPIs 32-63: enable 32 and 35.
        write(&mut g, view, Field::SetEnable, 4, 4, 0b1001);
        assert!(g.spis[0].enabled && g.spis[3].enabled && !g.spis[1].enabled);
        assert_eq!(read(&g, view, Field::ClearEnable, 4, 4), 0b1001);
        // Private interrupts are not reachable through the GICv3 distributor.
        write(&mut g, view, Field::SetEnable, 0, 4, u32::MAX as u64);
        assert!(!g.private[0][0].enabled);
        // Byte-wide priority of SPI 34, then a 32-bit read of IPRIORITYR8.
        write(&mut g, view, Field::Priority, 34, 1, 0x40);
        assert_eq!(read(&g, view, Field::Priority, 32, 4), 0xa0_40_a0_a0);
        // ICFGR2: SPI 33 edge-triggered.
        write(&mut g, view, Field::Config, 8, 4, 0b10 << 2);
        assert!(g.spis[1].edge && !g.spis[0].edge);
    }

    #[test]
    fn pending_an_enabled_spi_kicks_its_target() {
        let mut g = Vgic::new(Version::V3, 4);
        g.route_v3(40, 2);
        let view = View::dist_v3(&g, 0);
        assert_eq!(write(&mut g, view, Field::SetPending, 4, 4, 1 << 8), 0, "not enabled yet");
        assert_eq!(write(&mut g, view, Field::SetEnable, 4, 4, 1 << 8), 1 << 2);
        assert_eq!(read(&g, view, Field::SetPending, 4, 4), 1 << 8);
        write(&mut g, view, Field::ClearPending, 4, 4, 1 << 8);
        assert_eq!(read(&g, view, Field::SetPending, 4, 4), 0);
    }

    #[test]
    fn gicv2_banks_private_interrupts() {
        let mut g = Vgic::new(Version::V2, 2);
        let (v0, v1) = (View::dist_v2(&g, 0), View::dist_v2(&g, 1));
        write(&mut g, v1, Field::SetEnable, 0, 4, 1 << 27);
        assert!(g.private[1][27].enabled && !g.private[0][27].enabled);
        // ITARGETSR0-7 read as the reading CPU's own bit.
        assert_eq!(read(&g, v1, Field::Targets, 0, 4), 0x02020202);
        write(&mut g, v0, Field::Targets, 32, 1, 0b10);
        assert_eq!(g.spi_target(32), 1);
        // SGIs stay edge-triggered.
        write(&mut g, v0, Field::Config, 0, 4, 0);
        assert!(g.private[0][3].edge);
    }
}
