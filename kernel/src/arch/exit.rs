//! The portable reason a virtual CPU stopped running guest code.

use crate::addr::GuestPhysAddr;
use keel_abi::sched::ShutdownReason;

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
    /// The guest executed the architecture's hypercall instruction (`docs/abi.md`);
    /// read the call with [`Vcpu::hypercall_args`](super::Vcpu::hypercall_args).
    Hypercall,
    /// A guest access hit guest-physical memory that is not mapped with that right, and
    /// the backend will not have it executed again: the domain is crashed.
    MemoryFault { gpa: GuestPhysAddr, access: MemoryAccess },
    /// Stage 2 refused a guest access at `gpa` that no device of the backend claims. The
    /// tables may have been changing under the access (another CPU replacing a block by
    /// a table with break-before-make), so the fault says nothing yet: the core looks
    /// the page up in the domain's P2M under the domain's memory lock, which every change
    /// of the tables holds, and answers with
    /// [`Vcpu::settle_stage_fault`](super::Vcpu::settle_stage_fault) before the vCPU runs
    /// again. The backend has not moved the guest on: the access is executed again if
    /// the page is mapped for it by now.
    StageFault { gpa: GuestPhysAddr, access: MemoryAccess },
    /// The guest is idle until an interrupt.
    Halt,
    /// The guest yields its CPU (it spins, waiting for another CPU).
    Yield,
    /// A physical interrupt arrived for the host; the backend has not consumed it.
    Interrupt,
    /// The guest can make no further progress on its own; the domain must be crashed.
    GuestCrash,
    /// The guest asks, through the architecture's CPU start-up mechanism, to start its
    /// vCPU `target` (a vCPU index) at `entry` with `arg`. The core creates or resets
    /// that vCPU and reports the outcome with
    /// [`Vcpu::set_start_result`](super::Vcpu::set_start_result).
    StartVcpu { target: u32, entry: GuestPhysAddr, arg: u64 },
    /// The vCPU turns itself off through a platform interface, as `VCPUOP_down` would.
    StopVcpu,
    /// The guest asks the platform's firmware interface to stop or reset, as
    /// `SCHEDOP_shutdown` would.
    Shutdown(ShutdownReason),
    /// The guest acknowledged or completed the event upcall interrupt; the core re-reads
    /// the level and calls [`Vcpu::set_event_upcall`](super::Vcpu::set_event_upcall)
    /// before entering again.
    UpcallAck,
    /// The guest made virtual interrupts pending for other vCPUs of its domain through its
    /// virtual interrupt controller: bit *n* set means vCPU *n*. The core wakes each of them if it is halted or blocked and interrupts the
    /// CPU running it, so that its backend delivers the interrupt before it re-enters
    /// (see also [`GuestDomain::interrupt_pending`](super::GuestDomain::interrupt_pending)).
    Kick { vcpus: u128 },
    /// The calling vCPU's emulated device timer now expires at system
    /// time `deadline_ns` (none: stopped). The core wakes the vCPU then, even from a halt
    /// (after which [`GuestDomain::interrupt_pending`](super::GuestDomain::interrupt_pending)
    /// says whether it ends the halt), and interrupts the CPU running it, so the backend
    /// sees the expiry.
    DeviceTimer { deadline_ns: Option<u64> },
    /// The guest wrote `byte` to its emulated console UART; the core adds
    /// it to the domain's console output, which is printed line by line, tagged.
    ConsoleOutput(u8),
    /// The backend's fast path had the core answer a hypercall
    /// ([`FastPath::hypercall`](super::FastPath::hypercall)), whose result is in place,
    /// and the core has work before the next entry ([`FastAnswer::Exit`](super::FastAnswer::Exit)).
    /// Nothing else happened.
    Answered,
}
