//! The portable reason a virtual CPU stopped running guest code.

use crate::addr::GuestPhysAddr;
use crate::domain::ShutdownReason;

/// The kind of guest access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryAccess {
    Read,
    Write,
    Execute,
}

/// Why [`Vcpu::run`](super::Vcpu::run) returned.
///
/// On every exit the backend has already moved the guest past the instruction that
/// caused it where the architecture requires that (a hypercall returns to the next
/// instruction), so the core resumes the guest by calling `run` again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    /// The guest executed the hypercall instruction (`hvc #0xEA1`, `vmcall`, `vmmcall`);
    /// read the call with [`Vcpu::hypercall_args`](super::Vcpu::hypercall_args).
    Hypercall,
    /// A guest access hit guest-physical memory that is not mapped with that right.
    MemoryFault { gpa: GuestPhysAddr, access: MemoryAccess },
    /// The guest is idle until an interrupt (WFI, HLT).
    Halt,
    /// The guest yields its CPU (WFE, PAUSE loops).
    Yield,
    /// A physical interrupt arrived for the host; the backend has not consumed it.
    Interrupt,
    /// The guest can make no further progress on its own (triple fault, unrecoverable
    /// exception state); the domain must be crashed.
    GuestCrash,
    /// The guest asks to start its vCPU `target` at `entry` with `arg` (arm64 PSCI
    /// `CPU_ON`, `target` decoded from the MPIDR; x86 INIT/SIPI through the virtual
    /// local APIC). The core creates or resets that vCPU and reports the outcome with
    /// [`Vcpu::set_start_result`](super::Vcpu::set_start_result).
    StartVcpu { target: u32, entry: GuestPhysAddr, arg: u64 },
    /// The vCPU turns itself off (arm64 PSCI `CPU_OFF`), as `VCPUOP_down` would.
    StopVcpu,
    /// The guest asks the platform to stop (arm64 PSCI `SYSTEM_OFF`/`SYSTEM_RESET`, x86
    /// ACPI sleep or reset registers), as `SCHEDOP_shutdown` would.
    Shutdown(ShutdownReason),
    /// The guest acknowledged or completed the event upcall interrupt; the core re-reads
    /// the level and calls [`Vcpu::set_event_upcall`](super::Vcpu::set_event_upcall)
    /// before entering again.
    UpcallAck,
    /// The guest made virtual interrupts pending for other vCPUs of its domain (an SGI
    /// through the virtual GIC, an IPI through the virtual local APIC): bit *n* set means
    /// vCPU *n*. The core wakes each of them if it is halted or blocked and interrupts the
    /// CPU running it, so that its backend delivers the interrupt before it re-enters
    /// (see also [`GuestDomain::interrupt_pending`](super::GuestDomain::interrupt_pending)).
    Kick { vcpus: u128 },
    /// The calling vCPU's device timer (the x86 local APIC timer) now expires at system
    /// time `deadline_ns` (none: stopped). The core wakes the vCPU then, even from a halt
    /// (after which [`GuestDomain::interrupt_pending`](super::GuestDomain::interrupt_pending)
    /// says whether it ends the halt), and interrupts the CPU running it, so the backend
    /// sees the expiry.
    DeviceTimer { deadline_ns: Option<u64> },
    /// The guest wrote `byte` to its emulated console UART (arm64 `vpl011`); the core adds
    /// it to the domain's console output, which is printed line by line, tagged.
    ConsoleOutput(u8),
}
