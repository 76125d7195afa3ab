//! Keel's x86_64 backend: multiboot2 entry, long mode with Keel's own identity map,
//! 16550 console, ACPI (MADT, FADT), local APIC (x2APIC or xAPIC), TSC timer, SMP start-up,
//! and hardware virtualisation with Intel VT-x (VMX + EPT) or AMD SVM (NPT), chosen at run
//! time so that one image runs on both.
//!
//! # Safety
//! Everything here runs at CPL 0 in long mode with interrupts disabled except where
//! [`irq`] opens a window. Keel's page tables identity-map all RAM, so a physical address
//! of RAM is a valid pointer; code that dereferences one names the reason it is RAM Keel
//! may touch.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod boot;
pub mod console;
pub mod console_input;
pub mod cpu;
pub mod domain;
pub mod exceptions;
pub mod gdt;
pub mod irq;
pub mod layout;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod mmu;
pub mod power;
pub mod probe;
pub mod regs;
pub mod rtc;
pub mod smp;
pub mod stage2;
pub mod timer;
pub mod vcpu;
pub mod vlapic;

/// The x86_64 architecture: [`keel_kernel::arch::Arch`] is implemented in [`machine`]. The
/// type is declared here, below every module, because the vCPU's own reads of guest memory
/// (`vcpu/guest_cpu.rs`, `vcpu/mmio/memory.rs`) name it for `keel_kernel::mm::translate`,
/// which takes the whole architecture (`docs/architecture.md`, "The backends' layout").
pub struct X86_64;
