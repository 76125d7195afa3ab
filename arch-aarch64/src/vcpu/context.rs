//! A guest's register state: general-purpose registers, PC and PSTATE (saved by the
//! world switch in `asm/vectors.S` at every exit), and the EL1/EL0 system registers and
//! timers (an [`El1Context`]: loaded onto the CPU when the vCPU takes it, saved when it
//! leaves, live in the CPU in between; Keel reads or changes single ones in place).
//!
//! Registers that VHE redirects (E2H = 1 makes `*_EL1` names reach `*_EL2` registers)
//! are reached through their `*_EL12`/`*_EL02` aliases in VHE mode.

use crate::regs::*;
use aarch64_cpu::registers::*;
use tock_registers::interfaces::{Readable, Writeable};

/// General-purpose registers, PC (ELR_EL2) and PSTATE (SPSR_EL2); the layout is used by
/// `keel_guest_enter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
}

/// EL1h with D, A, I and F masked: the Linux arm64 boot state.
pub const PSTATE_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 RES1 bits (v8.0) with the MMU, caches and alignment checks off, little-endian.
const SCTLR_EL1_BOOT: u64 = 0x30d0_0800;

macro_rules! el1_context {
    (redirected { $($r:ident: $el1:expr, $el12:expr;)* } direct { $($d:ident: $reg:expr;)* }) => {
        /// The guest's EL1/EL0 system registers.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct El1Context {
            $(pub $r: u64,)*
            $(pub $d: u64,)*
        }

        impl El1Context {
            /// Reads the guest's registers from this CPU.
            pub fn read(&mut self, vhe: bool) {
                if vhe {
                    $(self.$r = $el12.get();)*
                } else {
                    $(self.$r = $el1.get();)*
                }
                $(self.$d = $reg.get();)*
            }

            /// Writes the guest's registers to this CPU.
            pub fn load(&self, vhe: bool) {
                if vhe {
                    $($el12.set(self.$r);)*
                } else {
                    $($el1.set(self.$r);)*
                }
                $($reg.set(self.$d);)*
            }
        }
    };
}

// Timer comparators come before their controls, so a restored timer cannot fire early.
el1_context! {
    redirected {
        sctlr: SCTLR_EL1, SctlrEl12;
        cpacr: CPACR_EL1, CpacrEl12;
        ttbr0: TTBR0_EL1, Ttbr0El12;
        ttbr1: TTBR1_EL1, Ttbr1El12;
        tcr: TCR_EL1, TcrEl12;
        mair: MAIR_EL1, MairEl12;
        amair: AMAIR_EL1, AmairEl12;
        vbar: VBAR_EL1, VbarEl12;
        contextidr: CONTEXTIDR_EL1, ContextidrEl12;
        esr: ESR_EL1, EsrEl12;
        far: FAR_EL1, FarEl12;
        afsr0: AFSR0_EL1, Afsr0El12;
        afsr1: AFSR1_EL1, Afsr1El12;
        elr: ELR_EL1, ElrEl12;
        spsr: SPSR_EL1, SpsrEl12;
        cntkctl: CNTKCTL_EL1, CntkctlEl12;
        cntp_cval: CNTP_CVAL_EL0, CntpCvalEl02;
        cntp_ctl: CNTP_CTL_EL0, CntpCtlEl02;
        cntv_cval: CNTV_CVAL_EL0, CntvCvalEl02;
        cntv_ctl: CNTV_CTL_EL0, CntvCtlEl02;
    }
    direct {
        sp_el1: SP_EL1;
        sp_el0: SP_EL0;
        tpidr_el0: TPIDR_EL0;
        tpidrro_el0: TPIDRRO_EL0;
        tpidr_el1: TPIDR_EL1;
        par: PAR_EL1;
        csselr: CSSELR_EL1;
        actlr: ACTLR_EL1;
        mdscr: MDSCR_EL1;
    }
}

/// The loaded guest's `SCTLR_EL1`.
pub fn live_sctlr(vhe: bool) -> u64 {
    if vhe {
        SctlrEl12.get()
    } else {
        SCTLR_EL1.get()
    }
}

/// The loaded guest's `VBAR_EL1`.
pub fn live_vbar(vhe: bool) -> u64 {
    if vhe {
        VbarEl12.get()
    } else {
        VBAR_EL1.get()
    }
}

/// The loaded guest's virtual timer: `CNTV_CTL_EL0`, `CNTV_CVAL_EL0`.
pub fn live_vtimer(vhe: bool) -> (u64, u64) {
    if vhe {
        (CntvCtlEl02.get(), CntvCvalEl02.get())
    } else {
        (CNTV_CTL_EL0.get(), CNTV_CVAL_EL0.get())
    }
}

impl El1Context {
    /// The state a booting guest finds: MMU and caches off, everything else zero.
    pub fn boot_state() -> Self {
        El1Context { sctlr: SCTLR_EL1_BOOT, ..Default::default() }
    }

    /// Saves the guest's registers and stops its timers, whose interrupts must not reach
    /// the host while the vCPU is not loaded.
    pub fn save(&mut self, vhe: bool) {
        self.read(vhe);
        if vhe {
            CntpCtlEl02.set(0);
            CntvCtlEl02.set(0);
        } else {
            CNTP_CTL_EL0.set(0);
            CNTV_CTL_EL0.set(0);
        }
    }
}
