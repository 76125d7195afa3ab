//! A vCPU's virtual CPU interface on the hardware: the list registers, the virtual
//! machine control register and the active-priority registers, GICv3 (`ICH_*_EL2`
//! system registers) or GICv2 (the GICH frame, banked per CPU). Loaded before an entry
//! and saved after an exit when the model and the hardware must agree (the vCPU code
//! decides when, `vcpu/run.rs`); between a save and the next load the interface is off,
//! so its maintenance interrupt only fires while a guest runs. Between a load without
//! overflow and the next save the interface stays on while Keel runs: with only `En` set
//! it raises no maintenance interrupt, and virtual interrupts only reach EL1.

use super::lr::{self, Completed, ListEntry, LrState};
use super::model::{GuestMask, Version, Vgic};
use crate::irq;
use aarch64_cpu::registers::*;
use tock_registers::interfaces::{Readable, Writeable};

/// Most list registers Keel uses (the architecture's maximum).
const MAX_LRS: usize = 16;
/// `ICH_HCR_EL2` / `GICH_HCR`: enable, and underflow maintenance interrupt.
const HCR_EN: u64 = 1;
const HCR_UIE: u64 = 1 << 1;
/// GICH frame offsets.
const GICH_HCR: usize = 0x000;
const GICH_VMCR: usize = 0x008;
const GICH_MISR: usize = 0x010;
const GICH_ELRSR0: usize = 0x030;
const GICH_APR: usize = 0x0f0;
const GICH_LR: usize = 0x100;

/// How many list registers this machine has (at most [`MAX_LRS`]).
pub fn nr_lrs() -> usize {
    (irq::list_registers().unwrap_or(0) as usize).min(MAX_LRS)
}

/// Active-priority registers per group: 1, 2 or 4 with 5, 6 or 7 priority bits.
fn nr_aprs() -> usize {
    let pri_bits = ((ICH_VTR_EL2.get() >> 29) & 7) as usize + 1;
    1 << pri_bits.saturating_sub(5).min(2)
}

fn gich(off: usize) -> *mut u32 {
    (irq::gich_base().unwrap_or(0) + off) as *mut u32
}

fn gich_read(off: usize) -> u32 {
    // SAFETY: this CPU's GICH frame (from the device tree, mapped as Device memory);
    // only reached when the host GIC is a GICv2 with virtualization extensions.
    unsafe { gich(off).read_volatile() }
}

fn gich_write(off: usize, v: u32) {
    // SAFETY: as for `gich_read`.
    unsafe { gich(off).write_volatile(v) }
}

macro_rules! lr_access {
    ($($n:literal => $reg:ident),*) => {
        fn lr_read(n: usize) -> u64 {
            match n { $($n => $reg.get(),)* _ => 0 }
        }
        fn lr_write(n: usize, v: u64) {
            match n { $($n => $reg.set(v),)* _ => {} }
        }
    };
}

lr_access!(0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2, 4 => ICH_LR4_EL2,
    5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2, 8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2,
    10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2, 12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2,
    15 => ICH_LR15_EL2);

fn apr_read(n: usize) -> (u64, u64) {
    match n {
        0 => (ICH_AP0R0_EL2.get(), ICH_AP1R0_EL2.get()),
        1 => (ICH_AP0R1_EL2.get(), ICH_AP1R1_EL2.get()),
        2 => (ICH_AP0R2_EL2.get(), ICH_AP1R2_EL2.get()),
        _ => (ICH_AP0R3_EL2.get(), ICH_AP1R3_EL2.get()),
    }
}

fn apr_write(n: usize, (g0, g1): (u64, u64)) {
    match n {
        0 => (ICH_AP0R0_EL2.set(g0), ICH_AP1R0_EL2.set(g1)),
        1 => (ICH_AP0R1_EL2.set(g0), ICH_AP1R1_EL2.set(g1)),
        2 => (ICH_AP0R2_EL2.set(g0), ICH_AP1R2_EL2.set(g1)),
        _ => (ICH_AP0R3_EL2.set(g0), ICH_AP1R3_EL2.set(g1)),
    };
}

/// A vCPU's virtual CPU interface between entries.
#[derive(Clone, Debug)]
pub struct CpuInterface {
    version: Version,
    /// What Keel put in each list register.
    lrs: [Option<ListEntry>; MAX_LRS],
    nr_lrs: usize,
    /// `ICH_VMCR_EL2` / `GICH_VMCR`: the guest's priority mask, binary points, enables.
    vmcr: u64,
    /// Active priorities, group 0 and group 1 (GICv2: one register, in `.0` of slot 0).
    aprs: [(u64, u64); 4],
    /// Active-priority registers per group on this machine.
    nr_aprs: usize,
    /// List registers the last [`CpuInterface::load`] filled (bit n: list register n).
    filled: u32,
    /// The last load left interrupts that did not fit (underflow interrupt requested).
    overflow: bool,
}

impl CpuInterface {
    /// A reset interface: nothing in the list registers, everything masked.
    pub fn new(version: Version) -> Self {
        let nr_aprs = if version == Version::V3 { nr_aprs() } else { 1 };
        CpuInterface {
            version,
            lrs: [None; MAX_LRS],
            nr_lrs: nr_lrs(),
            vmcr: 0,
            aprs: [(0, 0); 4],
            nr_aprs,
            filled: 0,
            overflow: false,
        }
    }

    /// Before entering: moves what vCPU `vcpu` should receive into free list registers
    /// and loads the interface; asks for an underflow interrupt if some did not fit.
    pub fn load(&mut self, g: &mut Vgic, vcpu: u32) {
        let n = self.nr_lrs;
        let overflow = lr::fill(g, vcpu, &mut self.lrs[..n]);
        self.overflow = overflow;
        self.filled = self.lrs[..n].iter().enumerate().filter(|(_, e)| e.is_some()).fold(0, |m, (i, _)| m | 1 << i);
        // The timer PPI stays active while its last firing waits for the guest.
        irq::set_timer_active(g.timer_held(vcpu));
        let hcr = HCR_EN | if overflow { HCR_UIE } else { 0 };
        match self.version {
            Version::V3 => {
                for (i, e) in self.lrs[..n].iter().enumerate() {
                    lr_write(i, e.map_or(0, |e| e.encode(Version::V3)));
                }
                for (i, &apr) in self.aprs.iter().take(self.nr_aprs).enumerate() {
                    apr_write(i, apr);
                }
                ICH_VMCR_EL2.set(self.vmcr);
                ICH_HCR_EL2.set(hcr);
            }
            Version::V2 => {
                for (i, e) in self.lrs[..n].iter().enumerate() {
                    gich_write(GICH_LR + 4 * i, e.map_or(0, |e| e.encode(Version::V2)) as u32);
                }
                gich_write(GICH_APR, self.aprs[0].0 as u32);
                gich_write(GICH_VMCR, self.vmcr as u32);
                gich_write(GICH_HCR, hcr as u32);
            }
        }
    }

    /// Whether the interface may stay loaded across an exit Keel handles without the
    /// model: the last load fitted everything (no underflow interrupt can fire while
    /// Keel runs), the guest emptied none of the list registers it filled, and no
    /// maintenance condition holds (an EOI of a list register that asked for one, such
    /// as the event upcall's): it completed nothing the model must learn of. Two register
    /// reads (`ICH_ELRSR_EL2`, `ICH_MISR_EL2` / `GICH_ELRSR0`, `GICH_MISR`).
    /// The GIC version it drives.
    pub fn version(&self) -> Version {
        self.version
    }

    #[inline]
    pub fn may_stay_loaded(&self) -> bool {
        if self.overflow {
            return false;
        }
        let (empty, maintenance) = match self.version {
            Version::V3 => (crate::regs::IchElrsrEl2.get(), ICH_MISR_EL2.get()),
            Version::V2 => (u64::from(gich_read(GICH_ELRSR0)), u64::from(gich_read(GICH_MISR))),
        };
        empty & u64::from(self.filled) == 0 && maintenance == 0
    }

    /// Right after an exit: turns the interface off, so that its maintenance interrupt
    /// drops while Keel runs.
    pub fn quiesce(&self) {
        match self.version {
            Version::V3 => ICH_HCR_EL2.set(0),
            Version::V2 => gich_write(GICH_HCR, 0),
        }
    }

    /// After an exit: saves the interface (turned off by [`CpuInterface::quiesce`]) and hands what the guest
    /// completed back to the model (`upcall`: the event PPI's INTID).
    pub fn save(&mut self, g: &mut Vgic, vcpu: u32, upcall: u32) -> Completed {
        let n = self.nr_lrs;
        let mut states = [LrState::Invalid; MAX_LRS];
        match self.version {
            Version::V3 => {
                for (i, s) in states[..n].iter_mut().enumerate() {
                    *s = ListEntry::state_of(lr_read(i), Version::V3);
                }
                for i in 0..self.nr_aprs {
                    self.aprs[i] = apr_read(i);
                }
                self.vmcr = ICH_VMCR_EL2.get();
            }
            Version::V2 => {
                for (i, s) in states[..n].iter_mut().enumerate() {
                    *s = ListEntry::state_of(gich_read(GICH_LR + 4 * i) as u64, Version::V2);
                }
                self.aprs[0].0 = gich_read(GICH_APR) as u64;
                self.vmcr = gich_read(GICH_VMCR) as u64;
            }
        }
        if let Some(m) = g.masks.get_mut(vcpu as usize) {
            *m = GuestMask::from_vmcr(self.version, self.vmcr);
        }
        let timer_was_queued = g.timer_queued(vcpu);
        let done = lr::sync(g, vcpu, &mut self.lrs[..n], &states[..n], upcall);
        if timer_was_queued && !g.timer_queued(vcpu) {
            irq::timer_deactivated();
        }
        done
    }
}

/// Per-CPU set-up of the GICv3 guest view: guests use the system-register interface.
pub fn init_cpu() {
    if irq::version() == Some(3) {
        crate::regs::IccSreEl1.set(0x7); // SRE, DFB, DIB
    }
}
