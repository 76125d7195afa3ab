//! Hypercall numbers (Xen's `__HYPERVISOR_*`) and the per-architecture call conventions.
//!
//! arm64: `hvc #0xEA1`, number in x16, arguments in x0..x4, result in x0.
//! x86_64: `vmcall` or `vmmcall` (both accepted on every CPU), number in rax, arguments in
//! rdi, rsi, rdx, r10, r8, result in rax; 32-bit guests use eax and ebx, ecx, edx, esi, edi.
//! Keel and its test guests take these registers from [`crate::hypercall_registers`].
//! Failing calls return a negated [`Errno`](crate::Errno). See `docs/abi.md`.

/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_set_timer_op`.
pub const SET_TIMER_OP: u64 = 15;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io`.
pub const CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_vm_assist`.
pub const VM_ASSIST: u64 = 21;
/// `__HYPERVISOR_vcpu_op`.
pub const VCPU_OP: u64 = 24;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: u64 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_physdev_op`: recognised, no sub-op supported (every call fails -ENOSYS).
pub const PHYSDEV_OP: u64 = 33;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: u64 = 34;

/// Size of the hypercall table: numbers at or above this are unknown (-ENOSYS).
pub const TABLE_SIZE: u64 = 64;

/// The immediate of the arm64 hypercall instruction: `hvc #0xEA1` (`XEN_HYPERCALL_TAG`).
/// Other `hvc` immediates are not Xen hypercalls (`hvc #0` is an SMCCC/PSCI call).
pub const AARCH64_HVC_IMM: u16 = 0xEA1;

/// x86: the MSR a guest writes with a page's guest-physical address to have the
/// hypercall page filled in (CPUID leaf 0x40000002 EBX).
pub const X86_HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;
/// x86: bytes per hypercall-page stub; stub `n` is `mov $n, %eax; vmcall|vmmcall; ret`.
pub const X86_HYPERCALL_STUB_SIZE: usize = 32;
