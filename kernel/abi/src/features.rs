//! `XENFEAT_*` bits reported by `XENVER_get_features` (submap 0, the only one).

/// Guest page tables may be written directly.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// PV only.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// The guest sees guest-physical frames; the hypervisor translates (stage-2/EPT/NPT).
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// PV only.
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// PV only.
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// PV only.
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// PV only.
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// PV only.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// x86: event upcalls may be delivered through an interrupt vector.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// x86: `vcpu_info.time` is maintained, so the PV clock and timers are usable.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// x86: physical interrupts as event channels (not offered).
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// The domain is Xen's dom0: Keel sets it for its initial domain only.
pub const XENFEAT_DOM0: u32 = 11;
/// Grant mappings are 1:1 (not offered).
pub const XENFEAT_GRANT_MAP_IDENTITY: u32 = 12;
/// `memory_op` accepts vNUMA node flags (not offered).
pub const XENFEAT_MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
/// arm: SMCCC 1.1 calls are supported over `hvc #0` (not offered by the core).
pub const XENFEAT_ARM_SMCCC_SUPPORTED: u32 = 14;
/// x86: Linux may use an RSDP anywhere.
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;
/// Guest-physical is not host-physical: bounce buffering for DMA is not needed.
pub const XENFEAT_NOT_DIRECT_MAPPED: u32 = 16;
/// Guest-physical equals host-physical.
pub const XENFEAT_DIRECT_MAPPED: u32 = 17;
/// `VCPUOP_register_runstate_phys_area` exists (not offered).
pub const XENFEAT_RUNSTATE_PHYS_AREA: u32 = 18;
/// `VCPUOP_register_vcpu_time_phys_area` exists (not offered).
pub const XENFEAT_VCPU_TIME_PHYS_AREA: u32 = 19;
/// Device-model detail (not offered).
pub const XENFEAT_DM_MSIX_ALL_WRITES: u32 = 20;
/// Number of feature submaps.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

const fn bits(list: &[u32]) -> u32 {
    let mut out = 0;
    let mut i = 0;
    while i < list.len() {
        out |= 1 << list[i];
        i += 1;
    }
    out
}

/// Submap 0 for arm64 guests: what Xen gives an arm domU, minus what Keel does not
/// implement (vNUMA flags, physical runstate areas, SMCCC via the core).
pub const FEATURES_AARCH64: u32 =
    bits(&[XENFEAT_WRITABLE_PAGE_TABLES, XENFEAT_AUTO_TRANSLATED_PHYSMAP, XENFEAT_NOT_DIRECT_MAPPED]);

/// Submap 0 for x86_64 PVH guests: what Xen gives a PVH domU, minus what Keel does not
/// implement (vNUMA flags, physical runstate/time areas, PIRQs, device-model bits).
pub const FEATURES_X86_64: u32 = bits(&[
    XENFEAT_WRITABLE_PAGE_TABLES,
    XENFEAT_AUTO_TRANSLATED_PHYSMAP,
    XENFEAT_HVM_CALLBACK_VECTOR,
    XENFEAT_HVM_SAFE_PVCLOCK,
    XENFEAT_NOT_DIRECT_MAPPED,
]);

const _: () = assert!(FEATURES_AARCH64 == 0x1_0005);
const _: () = assert!(FEATURES_X86_64 == 0x1_0305);
