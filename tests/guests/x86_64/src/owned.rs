//! The registers an x86 guest owns that Keel may keep in the CPU across exits and switch
//! only when another vCPU takes the CPU (`switching` scenario,
//! [`keel_test_guest::Platform::owned_regs_fill`]): the FS, GS and kernel GS bases, the
//! SYSCALL and SYSENTER MSRs, PAT, EFER.SCE, DR0–DR3, DR6 and DR7. Each gets a value of
//! the seed that changes nothing this guest relies on: canonical addresses no code
//! jumps to, memory types in PAT entries 4–7 (the guest's tables select only 0), debug
//! addresses with every breakpoint disabled, and a GS base that still reaches this CPU's
//! index (the same slot through the alias of the low 4 GiB for odd seeds).

use crate::platform::ALIAS_BASE;
use crate::traps;
use core::arch::asm;

const EFER: u32 = 0xc000_0080;
const EFER_SCE: u64 = 1 << 0;
const GS_BASE: u32 = 0xc000_0101;

/// An MSR the scenario fills, and how a value of the seed becomes a valid one.
struct OwnedMsr {
    name: &'static str,
    index: u32,
    make: fn(u64) -> u64,
}

fn canonical(v: u64) -> u64 {
    v & 0x0000_7fff_ffff_fff0
}

/// PAT entries 0–3 as at reset (WB, WT, UC-, UC); 4–7 a permutation of valid types.
fn pat(v: u64) -> u64 {
    const TYPES: [u64; 6] = [0, 1, 4, 5, 6, 7];
    let high = (0..4).fold(0u64, |acc, i| acc | TYPES[((v >> (8 * i)) % 6) as usize] << (32 + 8 * i));
    0x0007_0406 | high
}

const MSRS: [OwnedMsr; 10] = [
    OwnedMsr { name: "FS_BASE", index: 0xc000_0100, make: canonical },
    OwnedMsr { name: "KERNEL_GS_BASE", index: 0xc000_0102, make: canonical },
    OwnedMsr { name: "STAR", index: 0xc000_0081, make: |v| v },
    OwnedMsr { name: "LSTAR", index: 0xc000_0082, make: canonical },
    OwnedMsr { name: "CSTAR", index: 0xc000_0083, make: canonical },
    OwnedMsr { name: "SFMASK", index: 0xc000_0084, make: |v| v & 0xffff_ffff },
    OwnedMsr { name: "SYSENTER_CS", index: 0x174, make: |v| v & 0xffff },
    OwnedMsr { name: "SYSENTER_ESP", index: 0x175, make: canonical },
    OwnedMsr { name: "SYSENTER_EIP", index: 0x176, make: canonical },
    OwnedMsr { name: "PAT", index: 0x277, make: pat },
];

/// After the MSRs: EFER, GS_BASE, DR0–DR3, DR6, DR7.
const OTHERS: [&str; 8] = ["EFER", "GS_BASE", "DR0", "DR1", "DR2", "DR3", "DR6", "DR7"];

pub const COUNT: usize = MSRS.len() + OTHERS.len();

fn pattern(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7 * i as u32) ^ (i as u64) << 4
}

fn wrmsr(index: u32, value: u64, name: &str) {
    if let Err(v) = traps::wrmsr(index, value) {
        panic!("switching: WRMSR {name} {value:#x} raised vector {v}");
    }
}

fn rdmsr(index: u32) -> u64 {
    traps::rdmsr(index).unwrap_or(u64::MAX)
}

/// Fills the registers with values of `seed`; returns [`COUNT`].
pub fn fill(seed: u64) -> usize {
    for (i, m) in MSRS.iter().enumerate() {
        wrmsr(m.index, (m.make)(pattern(seed, i)), m.name);
    }
    let efer = rdmsr(EFER);
    wrmsr(EFER, if seed & 1 != 0 { efer | EFER_SCE } else { efer & !EFER_SCE }, "EFER");
    let gs = rdmsr(GS_BASE) % ALIAS_BASE;
    wrmsr(GS_BASE, if seed & 1 != 0 { gs + ALIAS_BASE } else { gs }, "GS_BASE");
    let d: [u64; 4] = core::array::from_fn(|i| canonical(pattern(seed, 20 + i)));
    // DR6: B0–B3 of the seed (the rest reads as the architecture fixes it); DR7: only
    // LE/GE of the seed, every breakpoint disabled.
    let dr6 = 0xffff_0ff0 | (seed & 0xf);
    let dr7 = 0x400 | (seed & 3) << 8;
    // SAFETY: debug registers with no breakpoint enabled (DR7's L0–G3 clear) change
    // nothing but what the checks read back.
    unsafe {
        asm!("mov dr0, {}", in(reg) d[0], options(nostack));
        asm!("mov dr1, {}", in(reg) d[1], options(nostack));
        asm!("mov dr2, {}", in(reg) d[2], options(nostack));
        asm!("mov dr3, {}", in(reg) d[3], options(nostack));
        asm!("mov dr6, {}", in(reg) dr6, options(nostack));
        asm!("mov dr7, {}", in(reg) dr7, options(nostack));
    }
    COUNT
}

/// Reads them, in [`fill`]'s order.
pub fn read(out: &mut [u64]) {
    let mut all = [0u64; COUNT];
    for (i, m) in MSRS.iter().enumerate() {
        all[i] = rdmsr(m.index);
    }
    let n = MSRS.len();
    all[n] = rdmsr(EFER);
    all[n + 1] = rdmsr(GS_BASE);
    let d = &mut all[n + 2..];
    // SAFETY: reading debug registers has no side effect at CPL 0.
    unsafe {
        asm!("mov {}, dr0", out(reg) d[0], options(nostack, nomem));
        asm!("mov {}, dr1", out(reg) d[1], options(nostack, nomem));
        asm!("mov {}, dr2", out(reg) d[2], options(nostack, nomem));
        asm!("mov {}, dr3", out(reg) d[3], options(nostack, nomem));
        asm!("mov {}, dr6", out(reg) d[4], options(nostack, nomem));
        asm!("mov {}, dr7", out(reg) d[5], options(nostack, nomem));
    }
    for (o, v) in out.iter_mut().zip(all) {
        *o = v;
    }
}

pub fn name(i: usize) -> &'static str {
    match MSRS.get(i) {
        Some(m) => m.name,
        None => OTHERS.get(i - MSRS.len()).copied().unwrap_or("?"),
    }
}
