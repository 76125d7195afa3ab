//! The boot path: the multiboot2 entry (`asm/head.s`) reaches [`keel_boot_main`] in long
//! mode on the boot stack. It sets up the console, descriptor tables and per-CPU block,
//! reads the multiboot2 information and ACPI, picks VMX or SVM, builds Keel's page tables,
//! sets up the interrupt controllers and the timer, and hands a portable [`BootInfo`] to
//! `keel_main` (in `platform/`).

mod memory_map;
pub mod multiboot2;

use crate::{acpi, console, cpu, exceptions, gdt, irq, mmu, regs, timer, vcpu};
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use keel_kernel::arch::ExitStatus;
use keel_kernel::boot::{BootInfo, BootModule, Options};
use keel_kernel::mm::Region;
use spin::Once;
use x86_64::structures::tss::TaskStateSegment;

core::arch::global_asm!(include_str!("../asm/segments.s"), include_str!("../asm/head.s"), options(att_syntax));

extern "Rust" {
    /// The platform's entry into the portable core.
    fn keel_main(info: BootInfo) -> !;
}

extern "C" {
    static keel_entry_cr0: u32;
    static keel_entry_cr4: u32;
    static keel_entry_efer: u32;
}

static BSP: cpu::PerCpu = cpu::PerCpu::new(0);
static BSP_IST: gdt::IstStacks = gdt::IstStacks::new();
static BSP_TSS: Once<TaskStateSegment> = Once::new();
static BSP_TABLES: Once<gdt::Tables> = Once::new();
/// The modules the loader passed (reserved from free memory for Keel's lifetime).
static MODULES: Once<[Option<Region>; multiboot2::MAX_MODULES]> = Once::new();
static UEFI: AtomicBool = AtomicBool::new(false);

/// `uefi` if GRUB passed an EFI system table, else `bios`.
pub fn firmware() -> &'static str {
    if UEFI.load(Ordering::Relaxed) {
        "uefi"
    } else {
        "bios"
    }
}

/// Reports why booting cannot go on and powers off with a failure status.
fn fatal(args: fmt::Arguments<'_>) -> ! {
    log::error!("{args}");
    crate::power::power_off(crate::power::failure_exit_path(), ExitStatus::Failure)
}

/// The boot CPU's first Rust code, called by `asm/head.s` with the loader's EAX and EBX.
#[no_mangle]
extern "sysv64" fn keel_boot_main(magic: u32, info_addr: u32) -> ! {
    console::init();
    let tss = BSP_TSS.call_once(|| gdt::new_tss(&BSP_IST));
    gdt::load(BSP_TABLES.call_once(|| gdt::new_tables(tss)));
    // SAFETY: the boot CPU installs its block once, before anything reads GS.
    unsafe { cpu::install(&BSP) };
    keel_kernel::console::init(&console::UART, cpu::current_index, log::LevelFilter::Info);
    exceptions::load();

    // SAFETY: `magic` and `info_addr` are what the loader passed; the block is reserved
    // below (memory_map) and the early map covers it.
    let tags = match unsafe { multiboot2::parse(magic, info_addr) } {
        Ok(tags) => tags,
        Err(e) => fatal(format_args!("multiboot2: {e}; stopping")),
    };
    let (options, _) = Options::parse(tags.cmdline);
    crate::power::set_boot_exit_path(options.power_off);
    log::set_max_level(options.log_level.to_filter());
    UEFI.store(tags.uefi, Ordering::Relaxed);
    log_entry_state(&tags);

    let features = cpu::features();
    if features.nx {
        // SAFETY: CPUID says NX exists; enabling it only adds a page-table bit Keel may use.
        unsafe { regs::wrmsr(regs::msr::IA32_EFER, regs::read_efer() | regs::efer::NXE) };
    }
    if let Err(missing) = vcpu::detect() {
        fatal(format_args!("no usable hardware virtualisation: {missing}; stopping"));
    }

    let acpi = acpi::init(tags.rsdp_v2, tags.rsdp_v1);
    if let Some(a) = acpi {
        if a.cpus_ignored > 0 {
            log::warn!("ACPI lists {} more CPUs than Keel supports ({}); ignored", a.cpus_ignored, cpu::MAX_CPUS);
        }
    }
    let lapic_mode = irq::lapic::select_mode(features.x2apic);
    let mut plan = memory_map::plan(&tags, acpi, lapic_mode).unwrap_or_else(|e| fatal(format_args!("{e}; stopping")));
    let cr3 = mmu::build_and_load(&mut plan.free, plan.mapped.as_slice(), features.huge_1g, features.nx);
    crate::smp::set_boot_state(plan.trampoline, cr3);

    irq::init_boot_cpu(acpi.map(|a| a.ioapics()).unwrap_or(&[]).iter().copied(), acpi.is_none_or(|a| a.pcat_compat));
    timer::init(acpi.and_then(|a| a.pm_timer));
    crate::rtc::init(<timer::X86Timer as keel_kernel::arch::Timer>::now_ns());

    let info = boot_info(&tags, &plan);
    // SAFETY: `keel_main` is the platform's entry point with exactly this signature.
    unsafe { keel_main(info) }
}

fn log_entry_state(tags: &multiboot2::BootTags) {
    // SAFETY: written once by the entry code before Rust ran; read-only since.
    let (cr0, cr4, efer) = unsafe { (keel_entry_cr0, keel_entry_cr4, keel_entry_efer) };
    log::debug!("entry state: CR0={cr0:#x} CR4={cr4:#x} EFER={efer:#x}");
    let types = &tags.tag_types[..tags.tag_count.min(tags.tag_types.len())];
    log::debug!(
        "multiboot2: info at {:#x} ({} bytes), tags {types:?}, loader '{}', cmdline '{}'",
        tags.region.start,
        tags.region.size(),
        tags.loader,
        tags.cmdline
    );
    if let Some((lower, upper)) = tags.basic_meminfo {
        log::debug!("multiboot2: basic memory information {lower} KiB low, {upper} KiB above 1 MiB");
    }
    if tags.map_is_efi() {
        log::info!("no multiboot2 memory map: using the EFI memory map ({} entries)", tags.efi_map_entries);
    }
    if tags.dropped_modules > 0 {
        log::warn!("{} modules beyond the first {} ignored", tags.dropped_modules, multiboot2::MAX_MODULES);
    }
}

/// The flattened-device-tree magic (big-endian 0xd00dfeed).
const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// The bytes of `region`, if it lies inside one of the modules the boot loader passed.
pub fn module_bytes(region: Region) -> Option<&'static [u8]> {
    let inside = MODULES.get()?.iter().flatten().any(|m| m.start <= region.start && region.end <= m.end);
    if !inside || region.is_empty() {
        return None;
    }
    // SAFETY: modules are loader-placed RAM, identity-mapped and reserved from the free
    // memory for Keel's lifetime (memory_map::plan); nothing writes them.
    Some(unsafe { core::slice::from_raw_parts(region.start as usize as *const u8, region.size() as usize) })
}

fn boot_info(tags: &multiboot2::BootTags, plan: &memory_map::Plan) -> BootInfo {
    let mut recorded = [None; multiboot2::MAX_MODULES];
    for (slot, m) in recorded.iter_mut().zip(tags.modules()) {
        *slot = Some(m.region);
    }
    MODULES.call_once(|| recorded);
    let mut modules = [None; 16];
    for (i, (slot, m)) in modules.iter_mut().zip(tags.modules()).enumerate() {
        log::debug!("module {i}: {:#x}..{:#x} '{}'", m.region.start, m.region.end, m.cmdline);
        *slot = Some(BootModule { region: m.region, cmdline: m.cmdline });
    }
    let device_tree = tags.modules().find_map(|m| {
        let len = m.region.size() as usize;
        if len < 8 {
            return None;
        }
        // SAFETY: modules are loader-placed RAM, identity-mapped and reserved from the
        // free memory for Keel's lifetime; nothing writes them.
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(m.region.start as usize as *const u8, len) };
        if bytes[..4] != FDT_MAGIC {
            return None;
        }
        let total = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        log::debug!("device tree: module '{}' ({total} bytes)", m.cmdline);
        Some(&bytes[..total.clamp(8, len)])
    });
    BootInfo {
        loader: tags.loader,
        cmdline: tags.cmdline,
        ram_bytes: plan.ram_bytes,
        free_memory: plan.free.clone(),
        modules,
        device_tree,
    }
}
