//! Emulated device accesses of a vCPU: loads and stores to the virtual GIC's
//! distributor and redistributors and to the virtual PL011, and trapped GIC system
//! registers (SGI generation).

use super::exit::{Mmio, Sysreg, ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1};
use crate::cpu;
use crate::vsysreg::{self, Emulation};
use super::{Aarch64Vcpu, GuestRegs};
use crate::domain::Aarch64Domain;
use crate::layout::{GICD_BASE, GICD_V2_SIZE, GICD_V3_SIZE, GICR_BASE, GICR_STRIDE, PL011_BASE, PL011_SIZE};
use crate::vgic::dist::Effect;
use crate::vgic::{dist, redist, Version};

/// What an emulated access did, beyond its effect on the guest's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Done {
    /// vCPUs of the domain with something new to receive (bit n = vCPU n).
    pub kick: u128,
    /// A byte the guest wrote to its console UART.
    pub output: Option<u8>,
}

impl Aarch64Vcpu {
    /// Reads general register `n` (31: the zero register).
    pub(super) fn reg(&self, n: u8) -> u64 {
        reg(&self.regs, n)
    }

    /// Writes general register `n` (31: discarded).
    pub(super) fn set_reg(&mut self, n: u8, v: u64) {
        set_reg(&mut self.regs, n, v);
    }

    /// Emulates `m` if a virtual device lies there; `None`: nothing is there.
    pub(super) fn emulate_mmio(&mut self, m: &Mmio) -> Option<Done> {
        emulate_mmio(&self.domain, self.vcpu_id, &mut self.regs, m)
    }

    /// Emulates a trapped system-register access: `Some(vcpus)` as for
    /// [`Aarch64Vcpu::emulate_mmio`], `None` if the guest must get an undefined-instruction
    /// exception.
    pub(super) fn emulate_sysreg(&mut self, s: &Sysreg) -> Option<u128> {
        match s.encoding {
            ICC_SGI1R_EL1 if !s.read => {
                let value = self.reg(s.reg);
                let mut g = self.domain.vgic.lock();
                let targets = g.sgi1r_targets(self.vcpu_id, value);
                Some(g.send_sgi(self.vcpu_id, targets, ((value >> 24) & 0xf) as u32))
            }
            // Group 0 and alternate-group SGIs: a single-security guest has none to send.
            ICC_SGI0R_EL1 | ICC_ASGI1R_EL1 if !s.read => Some(0),
            enc => {
                let Some(value) = plain_sysreg(enc, self.gic.version()) else {
                    log::debug!("d{}v{}: system register {enc:?} trapped: undefined", self.domain.init().id, self.vcpu_id);
                    return None;
                };
                if s.read {
                    self.set_reg(s.reg, value);
                }
                Some(0)
            }
        }
    }
}

/// Emulates `m` for vCPU `id` of `domain`, whose general registers are `regs`, if a
/// virtual device lies there; `None`: nothing is there.
pub(super) fn emulate_mmio(domain: &Aarch64Domain, id: u32, regs: &mut GuestRegs, m: &Mmio) -> Option<Done> {
    let value = m.write.then(|| reg(regs, m.reg) & mask(m.size));
    let mut output = None;
    let effect = if is_vpl011(m) {
        let uart = domain.uart.as_ref()?;
        let mut u = uart.lock();
        let line = u.line();
        let a = u.access(m.gpa - PL011_BASE, value.map(|v| v as u32));
        output = a.output;
        // The vGIC holds the line's level (every change goes through update_uart_line,
        // under the UART's lock): an access that leaves the line as it was changes
        // nothing there.
        let kick = if u.line() == line { 0 } else { domain.update_uart_line(&u) };
        Effect { value: a.value as u64, kick }
    } else {
        let mut g = domain.vgic.lock();
        let v3 = g.version == Version::V3;
        let dist_size = if v3 { GICD_V3_SIZE } else { GICD_V2_SIZE };
        let redist_size = GICR_STRIDE * g.vcpus() as u64;
        if (GICD_BASE..GICD_BASE + dist_size).contains(&m.gpa) {
            dist::access(&mut g, id, m.gpa - GICD_BASE, m.size, value)
        } else if v3 && (GICR_BASE..GICR_BASE + redist_size).contains(&m.gpa) {
            redist::access(&mut g, m.gpa - GICR_BASE, m.size, value)
        } else {
            return None;
        }
    };
    if !m.write {
        let mut v = effect.value & mask(m.size);
        if m.sign_extend && m.size < 8 && v >> (m.size * 8 - 1) & 1 != 0 {
            v |= !mask(m.size);
        }
        if !m.sixty_four {
            v &= 0xffff_ffff;
        }
        set_reg(regs, m.reg, v);
    }
    Some(Done { kick: effect.kick, output })
}
/// Whether `m` is an access the virtual PL011 answers (its registers are at most 32 bits).
pub(super) fn is_vpl011(m: &Mmio) -> bool {
    (PL011_BASE..PL011_BASE + PL011_SIZE).contains(&m.gpa) && m.size <= 4
}

/// What a read of a trapped system register that is not a GIC one gives (writes are
/// ignored), for a guest whose virtual GIC is `gic`; `None`: the guest takes an
/// undefined-instruction exception.
pub(super) fn plain_sysreg(enc: (u8, u8, u8, u8, u8), gic: Version) -> Option<u64> {
    Some(match vsysreg::classify(enc) {
        Emulation::RazWi => 0,
        Emulation::ReadOnly(v) => v,
        Emulation::Id { crm, op2 } => vsysreg::sanitize_id(crm, op2, cpu::id_register(crm, op2), gic == Version::V3),
        Emulation::Undefined => return None,
    })
}

/// General register `n` of `regs` (31: the zero register).
pub(super) fn reg(regs: &GuestRegs, n: u8) -> u64 {
    regs.x.get(usize::from(n)).copied().unwrap_or(0)
}

/// Writes general register `n` (31: discarded).
pub(super) fn set_reg(regs: &mut GuestRegs, n: u8, v: u64) {
    if let Some(r) = regs.x.get_mut(usize::from(n)) {
        *r = v;
    }
}

fn mask(size: u64) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1 << (size * 8)) - 1
    }
}
