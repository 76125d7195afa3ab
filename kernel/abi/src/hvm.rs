//! `hvm_op`: sub-ops, HVM parameters, argument structs.

/// Write an HVM parameter.
pub const HVMOP_SET_PARAM: u64 = 0;
/// Read an HVM parameter.
pub const HVMOP_GET_PARAM: u64 = 1;
/// x86 probe (unsupported: -ENOSYS, which Linux accepts).
pub const HVMOP_PAGETABLE_DYING: u64 = 9;
/// x86: per-vCPU upcall vector ([`XenHvmEvtchnUpcallVector`]).
pub const HVMOP_SET_EVTCHN_UPCALL_VECTOR: u64 = 23;

/// How event upcalls are delivered (`type << 56 | value`).
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// Xenstore ring frame (0: none).
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// Xenstore event channel (0: none).
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// x86 VM86 TSS.
pub const HVM_PARAM_VM86_TSS: u32 = 15;
/// PV console ring frame (0: none).
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// PV console event channel (0: none).
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// ACPI I/O port layout.
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
/// Toolstack only.
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
/// Toolstack only.
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
/// VM generation id address.
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
/// Alternate p2m mode.
pub const HVM_PARAM_ALTP2M: u32 = 35;
/// x87 FIP width.
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
/// x86 VM86 TSS with size.
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
/// Number of HVM parameters; higher indices are -EINVAL.
pub const HVM_NR_PARAMS: u32 = 39;

/// Parameters a guest may read about itself (others: -EPERM).
pub const GUEST_READABLE_PARAMS: &[u32] = &[
    HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_STORE_PFN,
    HVM_PARAM_STORE_EVTCHN,
    HVM_PARAM_VM86_TSS,
    HVM_PARAM_CONSOLE_PFN,
    HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_ALTP2M,
    HVM_PARAM_X87_FIP_WIDTH,
    HVM_PARAM_VM86_TSS_SIZED,
];

/// Parameters a guest may write for itself (others: -EPERM).
pub const GUEST_WRITABLE_PARAMS: &[u32] = &[
    HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_STORE_EVTCHN,
    HVM_PARAM_VM86_TSS,
    HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_X87_FIP_WIDTH,
    HVM_PARAM_VM86_TSS_SIZED,
];

/// `HVM_PARAM_CALLBACK_IRQ` type in bits 63..56.
pub const HVM_PARAM_CALLBACK_TYPE_SHIFT: u32 = 56;
/// Callback type: GSI.
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// Callback type: PCI INTx.
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// Callback type: x86 vector in bits 7..0 / arm PPI.
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;

wire_struct! {
    /// `xen_hvm_param`.
    pub struct XenHvmParam: 16 {
        pub domid: u16 = 0,
        pub _pad: [u8; 2] = 2,
        pub index: u32 = 4,
        pub value: u64 = 8,
    }
}

wire_struct! {
    /// `xen_hvm_evtchn_upcall_vector` (x86 only).
    pub struct XenHvmEvtchnUpcallVector: 8 {
        pub vcpu: u32 = 0,
        /// At least 0x10.
        pub vector: u8 = 4,
        pub _pad: [u8; 3] = 5,
    }
}
