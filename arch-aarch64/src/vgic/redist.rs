//! The GICv3 redistributors: one 128 KiB stride per vCPU (RD frame, then the SGI frame
//! with the vCPU's SGI and PPI registers), emulated on trapped accesses.

use super::dist::{Effect, IIDR};
use super::model::Vgic;
use super::regs::{self, View};
use crate::layout::GICR_STRIDE;

const SGI_FRAME: u64 = 0x1_0000;
const WAKER_SLEEP: u64 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;

/// An access of `size` bytes at `offset` in the redistributor region (the vCPU is the
/// frame's owner, whoever accesses it).
pub fn access(g: &mut Vgic, offset: u64, size: u64, value: Option<u64>) -> Effect {
    let vcpu = (offset / GICR_STRIDE) as u32;
    if vcpu >= g.vcpus() {
        return Effect::default();
    }
    let at = offset % GICR_STRIDE;
    if at >= SGI_FRAME {
        let Some((field, rel)) = regs::family(at - SGI_FRAME) else { return Effect::default() };
        let view = View::redist(vcpu);
        return match value {
            None => Effect { value: regs::read(g, view, field, rel, size), kick: 0 },
            Some(v) => Effect { value: 0, kick: regs::write(g, view, field, rel, size, v) },
        };
    }
    let read = |v: u64| Effect { value: v, kick: 0 };
    match (at, value) {
        (0x0004, None) => read(IIDR),
        (0x0008, None) => {
            let last = if vcpu + 1 == g.vcpus() { TYPER_LAST } else { 0 };
            let typer = Vgic::affinity(vcpu) << 32 | (vcpu as u64) << 8 | last;
            read(if size == 8 { typer } else { typer & 0xffff_ffff })
        }
        (0x000c, None) => read(Vgic::affinity(vcpu)),
        (0x0014, None) => read(if g.asleep[vcpu as usize] { WAKER_SLEEP | WAKER_CHILDREN_ASLEEP } else { 0 }),
        (0x0014, Some(v)) => {
            g.asleep[vcpu as usize] = v & WAKER_SLEEP != 0;
            Effect::default()
        }
        (0xffe8, None) => read(0x3b),
        _ => Effect::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Version;
    use super::*;

    #[test]
    fn frames_per_vcpu() {
        let mut g = Vgic::new(Version::V3, 18);
        let typer = access(&mut g, 17 * GICR_STRIDE + 8, 8, None).value;
        assert_eq!(typer >> 32, 0x101, "vCPU 17: Aff1 = 1, Aff0 = 1");
        assert_eq!((typer >> 8) & 0xffff, 17);
        assert_ne!(typer & TYPER_LAST, 0);
        assert_eq!(access(&mut g, 8, 8, None).value & TYPER_LAST, 0);
        assert_eq!(access(&mut g, 18 * GICR_STRIDE + 8, 8, None), Effect::default(), "no vCPU 18");
        assert_eq!(access(&mut g, 0xffe8, 4, None).value & 0xf0, 0x30);
        // Waking vCPU 1's redistributor.
        assert_ne!(access(&mut g, GICR_STRIDE + 0x14, 4, None).value & WAKER_CHILDREN_ASLEEP, 0);
        access(&mut g, GICR_STRIDE + 0x14, 4, Some(0));
        assert_eq!(access(&mut g, GICR_STRIDE + 0x14, 4, None).value, 0);
        // ISENABLER0 of vCPU 1 enables its PPI 31 only.
        access(&mut g, GICR_STRIDE + SGI_FRAME + 0x100, 4, Some(1 << 31));
        assert!(g.private[1][31].enabled && !g.private[0][31].enabled);
        assert_eq!(access(&mut g, GICR_STRIDE + SGI_FRAME + 0x180, 4, None).value, 1 << 31);
    }
}
