//! Keel's arm64 backend: EL2 with or without the Virtualization Host Extensions,
//! stage-2 translation, GICv2/GICv3, the generic timer and PSCI.
//!
//! Boot: `asm/head.S` (Linux Image header, self-relocation, EL check) → [`boot`] (EL2
//! set-up, MMU, device tree, console, GIC) → `keel_main` in the platform crate. The
//! differences between VHE and nVHE are described in `docs/el2-modes.md`.
//!
//! # Safety
//! Everything here runs at EL2 with interrupts masked (a host interrupt ends a guest's run
//! as an exit, or ends a `wfi`). Keel's stage-1 tables identity-map all RAM (and the devices it uses), so a
//! physical address of RAM is a valid pointer; code that dereferences one names the reason
//! it is memory Keel may touch.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// Pure parts, also built and tested on the host.
pub mod layout;
pub mod loader;
pub mod syndrome;
pub mod vgic;
pub mod vpl011;
pub mod vpsci;
pub mod vsysreg;

// The hardware: built only for the bare-metal target.
macro_rules! hardware {
    ($($m:ident),* $(,)?) => { $( #[cfg(target_os = "none")] mod $m; )* };
}
hardware!(
    boot,
    cache,
    console,
    cpu,
    domain,
    dt,
    exceptions,
    irq,
    machine,
    memory,
    mmu,
    power,
    firmware_psci,
    regs,
    semihosting,
    smp,
    stage2,
    timer,
    uart,
    vcpu,
);

#[cfg(target_os = "none")]
pub use {
    cpu::Cpu, domain::Aarch64Domain, irq::Gic, machine::Aarch64, memory::HostRam, stage2::Stage2Tables,
    timer::GenericTimer, vcpu::Aarch64Vcpu,
};
