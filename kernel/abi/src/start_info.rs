//! x86 PVH boot: `hvm_start_info` v1 and its tables (the guest receives its address in
//! `ebx`).

/// `hvm_start_info.magic`.
pub const HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// The version Keel writes.
pub const HVM_START_INFO_VERSION: u32 = 1;
/// Memory-map entry types.
pub const HVM_MEMMAP_TYPE_RAM: u32 = 1;
/// Reserved.
pub const HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
/// ACPI tables.
pub const HVM_MEMMAP_TYPE_ACPI: u32 = 3;
/// ACPI NVS.
pub const HVM_MEMMAP_TYPE_NVS: u32 = 4;
/// Unusable.
pub const HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
/// Disabled.
pub const HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
/// Persistent memory.
pub const HVM_MEMMAP_TYPE_PMEM: u32 = 7;
/// `hvm_start_info.flags`: the domain is privileged (Xen's `SIF_PRIVILEGED`).
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `hvm_start_info.flags`: the initial domain (Xen's `SIF_INITDOMAIN`); Linux then acts
/// as dom0 (`xen_initial_domain()`: console through `CONSOLEIO`, its own xenstore page
/// until one is handed over, privcmd unrestricted).
pub const SIF_INITDOMAIN: u32 = 1 << 1;

wire_struct! {
    /// `hvm_start_info`.
    pub struct HvmStartInfo: 56 {
        pub magic: u32 = 0,
        pub version: u32 = 4,
        /// `SIF_*`: 0 for an unprivileged domain, `SIF_PRIVILEGED | SIF_INITDOMAIN` for
        /// the initial domain (as Xen's PVH dom0 builder writes it).
        pub flags: u32 = 8,
        pub nr_modules: u32 = 12,
        pub modlist_paddr: u64 = 16,
        pub cmdline_paddr: u64 = 24,
        pub rsdp_paddr: u64 = 32,
        pub memmap_paddr: u64 = 40,
        pub memmap_entries: u32 = 48,
        pub reserved: u32 = 52,
    }
}

wire_struct! {
    /// `hvm_memmap_table_entry`.
    pub struct HvmMemmapTableEntry: 24 {
        pub addr: u64 = 0,
        pub size: u64 = 8,
        pub kind: u32 = 16,
        pub reserved: u32 = 20,
    }
}

wire_struct! {
    /// `hvm_modlist_entry`; the first module is the initrd.
    pub struct HvmModlistEntry: 32 {
        pub paddr: u64 = 0,
        pub size: u64 = 8,
        pub cmdline_paddr: u64 = 16,
        pub reserved: u64 = 24,
    }
}
