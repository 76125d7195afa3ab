//! The machine as the device tree describes it: RAM and what is reserved in it, boot
//! modules, CPUs, PSCI, the interrupt controller and the hypervisor timer's interrupt.
//! Fixed capacity throughout: this runs before the heap exists.

use super::{compatible_with, is_okay, prop_str, prop_u32, prop_u64, regs};
use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;
use keel_kernel::boot::BootModule;
use keel_kernel::mm::{MemoryMap, Region};
use spin::Once;

/// CPUs Keel can manage.
pub const MAX_CPUS: usize = 256;
/// Boot modules Keel records (the size of `BootInfo::modules`).
pub const MAX_MODULES: usize = 16;

/// The CPUs in `/cpus`, in device-tree order.
#[derive(Clone, Debug)]
pub struct CpuList {
    /// Each CPU's MPIDR affinity (its `reg`).
    pub mpidr: [u64; MAX_CPUS],
    /// Whether the CPU's `enable-method` is `psci`.
    pub psci: [bool; MAX_CPUS],
    pub count: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

/// The interrupt controller's register frames.
#[derive(Clone, Copy, Debug)]
pub struct GicInfo {
    pub version: GicVersion,
    /// Distributor (GICD).
    pub dist: Region,
    /// GICv3 redistributor regions (GICR).
    pub redist: [Region; 4],
    pub redist_count: usize,
    /// GICv2 CPU interface (GICC).
    pub cpu_if: Option<Region>,
    /// GICv2 virtual interface control (GICH), if the GIC has the virtualization extensions.
    pub hyp_if: Option<Region>,
    /// GICv2 virtual CPU interface (GICV), mapped into guests at their GICC address.
    pub vcpu_if: Option<Region>,
}

static PLATFORM: Once<Platform> = Once::new();
static TREE: Once<&'static [u8]> = Once::new();

/// Keeps the host device tree's blob (once, before the core runs).
pub fn set_tree(tree: &'static [u8]) {
    TREE.call_once(|| tree);
}

/// The host device tree's blob, if boot kept it.
pub fn tree() -> Option<&'static [u8]> {
    TREE.get().copied()
}

/// Keeps the machine description boot read (once, before the core runs).
pub fn set_platform(platform: Platform) {
    PLATFORM.call_once(|| platform);
}

/// The machine description read at boot.
pub fn platform() -> &'static Platform {
    PLATFORM.get().expect("the platform is described before the core runs")
}

/// Everything Keel takes from the device tree at boot.
#[derive(Clone, Debug)]
pub struct Platform {
    pub cmdline: &'static str,
    pub loader: &'static str,
    /// RAM from the enabled `/memory` nodes.
    pub ram: MemoryMap,
    /// RAM that is in use: reserved memory, the memory-reservation block, the initrd and
    /// the modules (the backend adds Keel's image and the device tree).
    pub reserved: MemoryMap,
    /// Reserved memory marked `no-map`: never mapped, not even speculatively accessible.
    pub no_map: MemoryMap,
    pub modules: [Option<BootModule>; MAX_MODULES],
    pub cpus: CpuList,
    pub gic: GicInfo,
    /// INTID of the EL2 physical timer (`arm,armv8-timer`, fourth interrupt).
    pub hyp_timer_irq: Option<u32>,
}

/// What makes a device tree unusable for Keel.
#[derive(Clone, Copy, Debug)]
pub enum DtError {
    NoMemory,
    NoCpus,
    NoGic,
    UnsupportedGic(&'static str),
    GicFrameMissing(&'static str),
    MapFull(&'static str),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DtError::NoMemory => write!(f, "the device tree describes no RAM (no enabled /memory node with a reg)"),
            DtError::NoCpus => write!(f, "the device tree lists no CPUs (/cpus/cpu@* with a reg)"),
            DtError::NoGic => write!(f, "the device tree has no interrupt controller (arm,gic-v3 or a GICv2)"),
            DtError::UnsupportedGic(c) => {
                write!(f, "unsupported interrupt controller '{c}' (need arm,gic-v3 or a GICv2)")
            }
            DtError::GicFrameMissing(which) => write!(f, "the interrupt controller's reg lacks the {which}"),
            DtError::MapFull(what) => {
                write!(f, "too many {what} regions in the device tree (limit {})", MemoryMap::CAPACITY)
            }
        }
    }
}

/// Reads the machine description; `/chosen` and the console were read before.
pub fn parse_platform(fdt: &Fdt<'static>) -> Result<Platform, DtError> {
    let mut p = Platform {
        cmdline: super::cmdline(fdt),
        loader: "device tree",
        ram: MemoryMap::new(),
        reserved: MemoryMap::new(),
        no_map: MemoryMap::new(),
        modules: [None; MAX_MODULES],
        cpus: CpuList { mpidr: [0; MAX_CPUS], psci: [false; MAX_CPUS], count: 0 },
        gic: gic(fdt)?,
        hyp_timer_irq: hyp_timer_irq(fdt),
    };
    memory(fdt, &mut p)?;
    reservations(fdt, &mut p)?;
    cpus(fdt, &mut p.cpus)?;
    if let Some(chosen) = fdt.find_node("/chosen") {
        if chosen.property("u-boot,version").is_some() {
            p.loader = "U-Boot (device tree)";
        }
    }
    Ok(p)
}

fn memory(fdt: &Fdt<'static>, p: &mut Platform) -> Result<(), DtError> {
    let root = fdt.find_node("/").ok_or(DtError::NoMemory)?;
    for node in root.children() {
        let is_memory =
            prop_str(node, "device_type") == Some("memory") || node.name.split('@').next() == Some("memory");
        if is_memory && is_okay(node) {
            regs(node).for_each(|r| p.ram.add(r));
        }
    }
    if p.ram.overflowed() {
        return Err(DtError::MapFull("memory"));
    }
    if p.ram.total() == 0 {
        return Err(DtError::NoMemory);
    }
    Ok(())
}

/// `/reserved-memory`, the memory-reservation block, the initrd and boot modules.
fn reservations(fdt: &Fdt<'static>, p: &mut Platform) -> Result<(), DtError> {
    if let Some(rsv) = fdt.find_node("/reserved-memory") {
        for node in rsv.children().filter(|n| is_okay(*n)) {
            for r in regs(node) {
                p.reserved.add(r);
                if node.property("no-map").is_some() {
                    p.no_map.add(r);
                }
            }
        }
    }
    for r in fdt.memory_reservations() {
        p.reserved.add(Region::new(r.address() as u64, r.size() as u64));
    }
    if let Some(chosen) = fdt.find_node("/chosen") {
        if let (Some(start), Some(end)) = (prop_u64(chosen, "linux,initrd-start"), prop_u64(chosen, "linux,initrd-end"))
        {
            p.reserved.add(Region { start, end: end.max(start) });
        }
        // Modules sit in /chosen, or one level down in dom0less domain nodes; their `reg`
        // uses the cell counts their parent sets or inherits (as Xen reads them).
        let mut count = 0;
        let mut add_module = |node: FdtNode<'_, 'static>, cells: (u32, u32)| {
            if !compatible_with(node, &["multiboot,module"]) {
                return;
            }
            if let Some(r) = first_reg(node, cells) {
                p.reserved.add(r);
                if count < MAX_MODULES {
                    p.modules[count] = Some(BootModule { region: r, cmdline: node.name });
                } else {
                    log::warn!("ignoring boot module {}: more than {MAX_MODULES}", node.name);
                }
                count += 1;
            }
        };
        let root_cells = fdt.find_node("/").map_or(ROOT_CELLS, |r| cells_of(r, ROOT_CELLS));
        let chosen_cells = cells_of(chosen, root_cells);
        for child in chosen.children() {
            add_module(child, chosen_cells);
            let child_cells = cells_of(child, chosen_cells);
            child.children().for_each(|g| add_module(g, child_cells));
        }
    }
    if p.reserved.overflowed() || p.no_map.overflowed() {
        return Err(DtError::MapFull("reserved"));
    }
    Ok(())
}

/// `#address-cells` and `#size-cells` of the root when it sets none.
const ROOT_CELLS: (u32, u32) = (2, 1);

/// The cell counts `node` sets for its children, each falling back to `inherited`.
fn cells_of(node: FdtNode<'_, 'static>, inherited: (u32, u32)) -> (u32, u32) {
    (prop_u32(node, "#address-cells").unwrap_or(inherited.0), prop_u32(node, "#size-cells").unwrap_or(inherited.1))
}

/// The first (address, size) of `node`'s `reg`, read with its parent's `cells`.
fn first_reg(node: FdtNode<'_, 'static>, (address, size): (u32, u32)) -> Option<Region> {
    let raw = node.property("reg")?.value;
    let read = |at: usize, n: u32| -> Option<u64> {
        let bytes = raw.get(at..at + 4 * n as usize)?;
        (n <= 2).then(|| bytes.chunks(4).fold(0u64, |v, c| v << 32 | u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64))
    };
    let start = read(0, address)?;
    let len = read(4 * address as usize, size)?;
    Some(Region { start, end: start.checked_add(len)? })
}

fn cpus(fdt: &Fdt<'static>, list: &mut CpuList) -> Result<(), DtError> {
    let parent = fdt.find_node("/cpus").ok_or(DtError::NoCpus)?;
    let cells = prop_u32(parent, "#address-cells").unwrap_or(1);
    for node in parent.children() {
        if node.name.split('@').next() != Some("cpu") || !is_okay(node) {
            continue;
        }
        if prop_str(node, "device_type").is_some_and(|t| t != "cpu") {
            continue;
        }
        let Some(reg) = node.property("reg").map(|p| p.value) else {
            log::warn!("ignoring {}: no reg", node.name);
            continue;
        };
        let mpidr = match (cells, reg.len()) {
            (1, 4..) => u32::from_be_bytes([reg[0], reg[1], reg[2], reg[3]]) as u64,
            (2, 8..) => u64::from_be_bytes([reg[0], reg[1], reg[2], reg[3], reg[4], reg[5], reg[6], reg[7]]),
            _ => {
                log::warn!("ignoring {}: unreadable reg", node.name);
                continue;
            }
        };
        if list.count == MAX_CPUS {
            log::warn!("ignoring {}: Keel manages at most {MAX_CPUS} CPUs", node.name);
            continue;
        }
        list.mpidr[list.count] = mpidr;
        list.psci[list.count] = prop_str(node, "enable-method") == Some("psci");
        list.count += 1;
    }
    if list.count == 0 {
        return Err(DtError::NoCpus);
    }
    Ok(())
}

const GICV3: &[&str] = &["arm,gic-v3"];
const GICV2: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic", "arm,cortex-a9-gic"];

fn gic(fdt: &Fdt<'static>) -> Result<GicInfo, DtError> {
    // The root's interrupt parent is the GIC; else any node that says it is one.
    let node = fdt
        .find_node("/")
        .and_then(|root| root.interrupt_parent())
        .filter(|n| n.property("interrupt-controller").is_some())
        .or_else(|| fdt.find_compatible(GICV3))
        .or_else(|| fdt.find_compatible(GICV2))
        .ok_or(DtError::NoGic)?;
    let mut frames = regs(node);
    let none = Region::default();
    if compatible_with(node, GICV3) {
        let dist = frames.next().ok_or(DtError::GicFrameMissing("distributor (GICD)"))?;
        let wanted = prop_u32(node, "#redistributor-regions").unwrap_or(1).clamp(1, 4) as usize;
        let mut info =
            GicInfo { version: GicVersion::V3, dist, redist: [none; 4], redist_count: 0, cpu_if: None, hyp_if: None, vcpu_if: None };
        for slot in info.redist.iter_mut().take(wanted) {
            *slot = frames.next().ok_or(DtError::GicFrameMissing("redistributor (GICR)"))?;
            info.redist_count += 1;
        }
        return Ok(info);
    }
    if compatible_with(node, GICV2) {
        let dist = frames.next().ok_or(DtError::GicFrameMissing("distributor (GICD)"))?;
        let cpu_if = frames.next().ok_or(DtError::GicFrameMissing("CPU interface (GICC)"))?;
        let hyp_if = frames.next();
        let vcpu_if = frames.next();
        return Ok(GicInfo {
            version: GicVersion::V2,
            dist,
            redist: [none; 4],
            redist_count: 0,
            cpu_if: Some(cpu_if),
            hyp_if,
            vcpu_if,
        });
    }
    Err(DtError::UnsupportedGic(node.compatible().map(|c| c.first()).unwrap_or("(no compatible)")))
}

/// The fourth `arm,armv8-timer` interrupt is the EL2 physical timer (a PPI).
fn hyp_timer_irq(fdt: &Fdt<'static>) -> Option<u32> {
    let node = fdt.find_compatible(&["arm,armv8-timer"])?;
    let cells = node.interrupt_parent().and_then(|g| g.interrupt_cells()).unwrap_or(3);
    if cells != 3 {
        return None;
    }
    let raw = node.property("interrupts")?.value;
    let cell = |i: usize| raw.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let (kind, number) = (cell(9)?, cell(10)?);
    (kind == 1).then_some(number + 16)
}
