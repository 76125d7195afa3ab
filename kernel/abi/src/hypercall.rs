//! Hypercall numbers (Xen's `__HYPERVISOR_*`) and the per-architecture call conventions.

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
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: u64 = 34;

/// The immediate of the arm64 hypercall instruction: `hvc #0xEA1` (`XEN_HYPERCALL_TAG`).
/// Other `hvc` immediates are not Xen hypercalls (`hvc #0` is an SMCCC/PSCI call).
pub const AARCH64_HVC_IMM: u16 = 0xEA1;
