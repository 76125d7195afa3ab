//! Virtual CPUs.

use super::{SpaceId, VmExit};
use crate::mm::{GuestPhysAddr, PhysAddr};

/// Where and how a new virtual CPU starts.
///
/// The initial state is the architecture's boot entry for guests: on arm64, EL1h with
/// the MMU off and `x0 = arg` (Linux Image protocol); on x86_64, 32-bit protected mode
/// with paging off and `ebx = arg` (Xen PVH entry).
#[derive(Clone, Copy, Debug)]
pub struct VcpuInit {
    /// First instruction.
    pub entry: GuestPhysAddr,
    /// Boot argument (device tree, start-info address).
    pub arg: u64,
    /// Root of the guest-physical translation tables.
    pub stage2_root: PhysAddr,
    /// TLB tag of the address space.
    pub space: SpaceId,
}

/// The arguments of a guest hypercall, decoded from the architecture's convention
/// (arm64: x16 and x0..x4; x86_64: rax and rdi, rsi, rdx, r10, r8; 32-bit x86: eax and
/// ebx, ecx, edx, esi, edi).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypercallArgs {
    pub number: u64,
    pub args: [u64; 5],
}

/// Why a virtual CPU could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuError {
    /// The hardware has no usable virtualisation extension on this CPU.
    NoVirtualization,
    /// Out of memory for the control structures.
    NoMemory,
}

/// A virtual CPU bound to the physical CPU that created it.
pub trait Vcpu: Sized {
    /// Creates a virtual CPU in the initial state described by `init`.
    fn new(init: &VcpuInit) -> Result<Self, VcpuError>;
    /// Runs guest code until the next exit the core must see.
    fn run(&mut self) -> VmExit;
    /// The arguments of the hypercall that caused the last [`VmExit::Hypercall`].
    fn hypercall_args(&self) -> HypercallArgs;
    /// Sets the hypercall's return value (arm64 x0, x86 rax/eax).
    fn set_hypercall_result(&mut self, value: u64);

    /// Translates a guest virtual address with the vCPU's current translation regime
    /// (identity while its MMU is off), for a read or a `write`. Hypercall pointer
    /// arguments and the runstate area are virtual addresses, so a backend must
    /// implement this for guests that enable their MMU; the default translates nothing
    /// (every pointer argument then fails with -EFAULT).
    fn translate_gva(&self, gva: u64, write: bool) -> Option<GuestPhysAddr> {
        let _ = (gva, write);
        None
    }
}
