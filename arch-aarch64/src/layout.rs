//! Xen's arm64 guest memory map and interrupt numbers (`xen/include/public/arch-arm.h`),
//! which Keel's guests get too: the device tree Keel writes for each guest names these
//! addresses, and the virtual GIC and PL011 answer there.

/// GICv2 distributor and CPU interface (the latter backed by the host's GICV frame).
pub const GICD_BASE: u64 = 0x0300_1000;
pub const GICD_V2_SIZE: u64 = 0x1000;
pub const GICC_BASE: u64 = 0x0300_2000;
pub const GICC_SIZE: u64 = 0x2000;
/// GICv3 distributor.
pub const GICD_V3_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors: one 128 KiB stride (RD and SGI frames) per vCPU, for up to 128.
pub const GICR_BASE: u64 = 0x0302_0000;
pub const GICR_STRIDE: u64 = 0x2_0000;
pub const GICR_REGION_SIZE: u64 = 0x100_0000;

/// The virtual PL011 (`vpl011`) and its interrupt.
pub const PL011_BASE: u64 = 0x2200_0000;
pub const PL011_SIZE: u64 = 0x1000;
pub const PL011_SPI: u32 = 32;

/// Where guests map grant-table frames (16 MiB: 4096 frames).
pub const GNTTAB_BASE: u64 = 0x3800_0000;
pub const GNTTAB_SIZE: u64 = 0x100_0000;
/// Xen's "magic" pages: +0 the PV console ring, +1 xenstore.
pub const MAGIC_BASE: u64 = 0x3900_0000;
pub const MAGIC_SIZE: u64 = 0x100_0000;

/// RAM banks: 3 GiB at 1 GiB, then 1016 GiB at 8 GiB.
pub const RAM_BANKS: [(u64, u64); 2] = [(0x4000_0000, 0xc000_0000), (0x2_0000_0000, 0xfe_0000_0000)];

/// PPIs (INTIDs) a guest sees.
pub const PPI_MAINTENANCE: u32 = 25;
pub const PPI_HYP_TIMER: u32 = 26;
pub const PPI_VIRT_TIMER: u32 = 27;
pub const PPI_PHYS_TIMER_S: u32 = 29;
pub const PPI_PHYS_TIMER_NS: u32 = 30;
/// The event-channel upcall (`GUEST_EVTCHN_PPI`), level-sensitive.
pub const PPI_EVTCHN: u32 = 31;

/// SPIs a guest's distributor starts with (INTIDs 32..32 + this): enough for the
/// virtual devices Keel emulates; a domain given a host device's SPIs gets more
/// (`Vgic::add_hw_spis`).
pub const NR_SPIS: u32 = 32;

/// The MPIDR affinity of vCPU `id` (Aff0 = id % 16, Aff1 = id / 16, as Xen's
/// `vcpuid_to_vaffinity`: 16 vCPUs per cluster, for GICv3 target lists).
pub const fn vcpu_affinity(id: u32) -> u64 {
    let id = id as u64;
    ((id >> 4) & 0xff) << 8 | (id & 0xf)
}

/// The vCPU an affinity names, if it is one `vcpu_affinity` gives.
pub const fn vcpu_of_affinity(aff: u64) -> Option<u32> {
    if aff & !0xff0f != 0 {
        return None;
    }
    Some(((aff >> 8) & 0xff) as u32 * 16 + (aff & 0xf) as u32)
}
