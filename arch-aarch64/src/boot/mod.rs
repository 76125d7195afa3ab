//! From the loader to `keel_main`: the image header and entry code (`asm/head.S`), then
//! the boot CPU's early Rust — EL2 set-up, the MMU, the device tree, the console, the
//! interrupt controller — ending in a portable [`BootInfo`].
//!
//! Until the MMU is on, only plain loads and stores are used (no atomics that need
//! exclusive access, no locks): the data cache is off and memory is Device-typed.

mod wrong_el;

use crate::dt::{self, Platform};
use crate::mmu::{self, Mapping, MmuConfig, MmuError};
use crate::smp::SecondaryBoot;
use crate::{cache, console, cpu, irq, power, firmware_psci, stage2, timer, vgic};
use core::mem::offset_of;
use keel_kernel::arch::{ExitStatus, InterruptController, PowerOffPath};
use keel_kernel::boot::{BootInfo, Options};
use keel_kernel::mm::{MemoryMap, Region, PAGE_SIZE};

/// Stack of the boot CPU (in .bss).
const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Linux Image header flags: little-endian, 4 KiB pages, placeable anywhere in RAM.
const IMAGE_FLAGS: u64 = 0b1010;
const R_AARCH64_RELATIVE: u64 = 1027;

core::arch::global_asm!(
    include_str!("../asm/head.S"),
    IMAGE_FLAGS = const IMAGE_FLAGS,
    R_AARCH64_RELATIVE = const R_AARCH64_RELATIVE,
    SCTLR_BOOT_LO = const cpu::SCTLR_EL2_RES1 & 0xffff,
    SCTLR_BOOT_HI = const cpu::SCTLR_EL2_RES1 >> 16,
    BOOT_HCR = const offset_of!(SecondaryBoot, hcr),
    BOOT_VBAR = const offset_of!(SecondaryBoot, vbar),
    BOOT_CPU = const offset_of!(SecondaryBoot, cpu),
    BOOT_STACK = const offset_of!(SecondaryBoot, stack_top),
    BOOT_MMU = const offset_of!(SecondaryBoot, mmu),
    MMU_MAIR = const offset_of!(MmuConfig, mair),
    MMU_TCR = const offset_of!(MmuConfig, tcr),
    MMU_TTBR = const offset_of!(MmuConfig, ttbr0),
    MMU_SCTLR = const offset_of!(MmuConfig, sctlr),
    EC_HVC64 = const 0x16,
    EC_SMC64 = const 0x17,
    BOOT_STACK_SIZE = const BOOT_STACK_SIZE,
);

extern "Rust" {
    /// The platform's entry into the portable core (`platform/src/main.rs`).
    fn keel_main(info: BootInfo) -> !;
}

extern "C" {
    static _head: u8;
    static _etext: u8;
    static _erodata: u8;
    static _end: u8;
}

/// Keel's image in memory: code, read-only data, read-write data and .bss.
fn image() -> (Region, u64, u64) {
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: linker-script symbols; only their addresses are taken.
    let (head, etext, erodata, end) = unsafe { (addr(&_head), addr(&_etext), addr(&_erodata), addr(&_end)) };
    (Region { start: head, end }, etext, erodata)
}

/// Refuses to boot: says why (as an error record, not a panic: the machine, not Keel, is
/// at fault) on whatever console exists and powers off (the path is
/// chosen by [`power::power_off`] from what boot knows).
fn fail(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency(format_args!("[ERROR 0] {args}"));
    power::power_off(PowerOffPath::Firmware, ExitStatus::Failure)
}

fn map_or_fail(r: Region, m: Mapping, what: &str) {
    if let Err(e) = mmu::map(r.start, r.end, m) {
        let why = match e {
            MmuError::NoTables => "out of translation tables",
            MmuError::OutOfRange => "beyond 48-bit addresses",
            MmuError::Overlap(_) => "overlaps an earlier mapping",
        };
        fail(format_args!("cannot map {what} [{:#x}, {:#x}): {why}", r.start, r.end));
    }
}

fn pages_out(r: Region) -> Region {
    Region { start: r.start & !(PAGE_SIZE - 1), end: r.end.div_ceil(PAGE_SIZE) * PAGE_SIZE }
}

/// The boot CPU at EL2, MMU off, on the boot stack, .bss zeroed and relocations applied.
#[no_mangle]
extern "C" fn keel_primary_el2(dtb: usize, bad_relocations: usize) -> ! {
    cpu::select_mode();
    cpu::init_el2(stage2::vtcr());
    let dtb_size = dt::total_size(dtb).unwrap_or_else(|e| fail(format_args!("{e}")));
    let dtb_region = Region::new(dtb as u64, dtb_size as u64);
    let (image, dtb_pages) = first_map(dtb_region);

    // MMU and caches on: locks and atomics work from here.
    let tree = dt::prepare(dtb, dtb_size).unwrap_or_else(|e| fail(format_args!("{e}")));
    let fdt = dt::open(tree).unwrap_or_else(|| fail(format_args!("malformed device tree at {dtb:#x}")));
    start_console(&fdt);
    if bad_relocations != 0 {
        fail(format_args!("Keel's image has {bad_relocations} relocations of a kind other than R_AARCH64_RELATIVE"));
    }
    let mut platform = dt::parse_platform(&fdt).unwrap_or_else(|e| fail(format_args!("{e}")));
    platform.reserved.add(image);
    platform.reserved.add(dtb_pages);
    let mut free = map_ram(&platform, image, dtb_pages);
    map_gic(&platform);
    timer::set_irq(platform.hyp_timer_irq.unwrap_or(timer::irq()));
    cpu::record_boot_cpu();
    if let Err(e) = irq::init(&platform.gic) {
        fail(format_args!("{e}"));
    }
    irq::Gic::init_cpu();
    vgic::init_cpu();

    for r in platform.reserved.regions().iter().chain(platform.no_map.regions()) {
        free.remove(pages_out(*r));
    }
    log_memory(&platform, image, dtb_region, &free);
    let info = BootInfo {
        loader: platform.loader,
        cmdline: platform.cmdline,
        ram_bytes: platform.ram.total(),
        free_memory: free,
        modules: platform.modules,
        device_tree: Some(tree),
    };
    dt::set_platform(platform);
    dt::set_tree(tree);
    power::set_core_started();
    // SAFETY: `keel_main` is the platform's Rust entry point, called exactly once.
    unsafe { keel_main(info) }
}

/// Maps Keel's image (code, read-only data, read-write data) and the device tree, then
/// switches the MMU on. Returns the image and the device tree's pages.
fn first_map(dtb: Region) -> (Region, Region) {
    let (image, etext, erodata) = image();
    if image.start % PAGE_SIZE != 0 {
        fail(format_args!("Keel was loaded at {:#x}, which is not 4 KiB aligned", image.start));
    }
    let dtb_pages = pages_out(dtb);
    if dtb_pages.start < image.end && image.start < dtb_pages.end {
        fail(format_args!("the device tree at {:#x} overlaps Keel's image", dtb.start));
    }
    map_or_fail(Region { start: image.start, end: etext }, Mapping::Text, "Keel's code");
    map_or_fail(Region { start: etext, end: erodata }, Mapping::ReadOnly, "Keel's read-only data");
    map_or_fail(Region { start: erodata, end: image.end }, Mapping::ReadWrite, "Keel's data");
    // Writable: `FDT_NOP` tokens are removed in place once the MMU is on.
    map_or_fail(dtb_pages, Mapping::ReadWrite, "the device tree");
    let config = mmu::compute_config(cpu::vhe());
    // Drop stale cache lines over everything written with the caches off.
    cache::invalidate_to_poc(image.start as usize, image.size() as usize);
    cache::invalidate_to_poc(dtb.start as usize, dtb.size() as usize);
    mmu::enable(&config);
    (image, dtb_pages)
}

/// Maps and installs the console UART, then reads what boot needs from the command line
/// (log level, how to power off) and the PSCI conduit.
fn start_console(fdt: &fdt::Fdt<'static>) {
    let uart = dt::console(fdt).unwrap_or_else(|e| fail(format_args!("{e}")));
    map_or_fail(Region::new(uart.base() as u64, uart.span() as u64), Mapping::Device, "the console UART");
    console::install(uart);
    console::set_irq(dt::console_irq(fdt));
    console::init_kernel_console(|| cpu::current().0);
    let (options, _) = Options::parse(dt::cmdline(fdt));
    power::set_boot_exit_path(options.power_off);
    log::set_max_level(options.log_level.to_filter());
    firmware_psci::set_conduit(dt::psci_conduit(fdt));
    if firmware_psci::conduit() == Some(firmware_psci::Conduit::Hvc) {
        log::warn!("the device tree's PSCI conduit is hvc, which from EL2 reaches Keel itself: no secondary CPUs, no PSCI power-off");
    }
    if let Some((major, minor)) = firmware_psci::version() {
        log::debug!("PSCI {major}.{minor} over {}", firmware_psci::conduit().map_or("?", |c| c.name()));
    }
}

/// Maps all RAM except `no-map` reservations and what the first map covers; returns the
/// RAM that is mapped read-write (the candidates for free memory).
fn map_ram(p: &Platform, image: Region, dtb_pages: Region) -> MemoryMap {
    let mut ram = MemoryMap::new();
    for r in p.ram.regions() {
        ram.add(Region { start: r.start.div_ceil(PAGE_SIZE) * PAGE_SIZE, end: r.end & !(PAGE_SIZE - 1) });
    }
    for r in p.no_map.regions() {
        ram.remove(pages_out(*r));
    }
    ram.remove(image);
    ram.remove(dtb_pages);
    let mut mapped = MemoryMap::new();
    for r in ram.regions() {
        match mmu::map(r.start, r.end, Mapping::ReadWrite) {
            Ok(()) => mapped.add(*r),
            Err(MmuError::OutOfRange) => {
                log::warn!("RAM [{:#x}, {:#x}) lies beyond 48-bit addresses; not used", r.start, r.end)
            }
            Err(_) => map_or_fail(*r, Mapping::ReadWrite, "RAM"),
        }
    }
    mapped
}

fn map_gic(p: &Platform) {
    let g = &p.gic;
    map_or_fail(g.dist, Mapping::Device, "the GIC distributor");
    for r in &g.redist[..g.redist_count] {
        map_or_fail(*r, Mapping::Device, "a GIC redistributor region");
    }
    for r in [g.cpu_if, g.hyp_if, g.vcpu_if].into_iter().flatten() {
        map_or_fail(r, Mapping::Device, "a GIC CPU interface");
    }
}

fn log_memory(p: &Platform, image: Region, dtb: Region, free: &MemoryMap) {
    let show = |what: &str, m: &MemoryMap| {
        for r in m.regions() {
            log::debug!("{what} [{:#x}, {:#x})", r.start, r.end);
        }
    };
    log::debug!("image [{:#x}, {:#x}), device tree [{:#x}, {:#x})", image.start, image.end, dtb.start, dtb.end);
    show("ram", &p.ram);
    show("reserved", &p.reserved);
    show("no-map", &p.no_map);
    for m in p.modules.iter().flatten() {
        log::debug!("module {} [{:#x}, {:#x})", m.cmdline, m.region.start, m.region.end);
    }
    show("free", free);
}
