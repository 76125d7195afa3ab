//! Starting the application processors: INIT-SIPI-SIPI to every enabled CPU in the ACPI
//! MADT, one at a time, through the real-mode trampoline in `asm/trampoline.s`. Each AP
//! gets its own stack, GDT, TSS and per-CPU block, loads the shared IDT, enables its local
//! APIC and hardware virtualisation, and then runs the core's entry function.

use crate::cpu::{self, PerCpu, MAX_CPUS};
use crate::irq::{lapic, X86Irq};
use crate::regs::{self, efer, rdtsc};
use crate::{acpi, exceptions, gdt, timer, vcpu};
use alloc::boxed::Box;
use core::alloc::Layout;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, Ordering};
use keel_kernel::arch::{CpuId, InterruptController};
use spin::Once;

core::arch::global_asm!(
    include_str!("asm/segments.s"),
    include_str!("asm/trampoline.s"),
    t_gdtr = const offset_of!(TrampolineData, gdt_limit),
    t_far32 = const offset_of!(TrampolineData, far32_offset),
    t_far64 = const offset_of!(TrampolineData, far64_offset),
    t_cr3 = const offset_of!(TrampolineData, cr3),
    t_efer = const offset_of!(TrampolineData, efer),
    t_stack = const offset_of!(TrampolineData, stack_top),
    t_arg = const offset_of!(TrampolineData, arg),
    t_data_size = const core::mem::size_of::<TrampolineData>(),
    options(att_syntax)
);

extern "C" {
    static keel_trampoline_start: u8;
    static keel_trampoline_32: u8;
    static keel_trampoline_data: u8;
    static keel_trampoline_end: u8;
    fn keel_ap_entry64();
}

/// The block at the end of the trampoline: `asm/trampoline.s` takes every offset into it
/// from this struct (the `t_*` operands above). `lgdtl` reads the limit and base from
/// `gdt_limit`, so `gdt_base` follows it directly.
#[repr(C)]
struct TrampolineData {
    _pad0: u16,
    gdt_limit: u16,
    gdt_base: u32,
    far32_offset: u32,
    far32_selector: u16,
    _pad1: u16,
    far64_offset: u32,
    far64_selector: u16,
    _pad2: u16,
    cr3: u64,
    efer: u64,
    stack_top: u64,
    arg: u64,
    gdt: [u64; 4],
}

// The pseudo-descriptor LGDT reads: a 16-bit limit and the 32-bit base right after it;
// and `ljmpl *` reads a 32-bit offset then the 16-bit selector.
const _: () = {
    assert!(offset_of!(TrampolineData, gdt_base) == offset_of!(TrampolineData, gdt_limit) + 2);
    assert!(offset_of!(TrampolineData, far32_selector) == offset_of!(TrampolineData, far32_offset) + 4);
    assert!(offset_of!(TrampolineData, far64_selector) == offset_of!(TrampolineData, far64_offset) + 4);
};

/// The trampoline's GDT: null, 32-bit code (0x08), flat data (0x10), 64-bit code (0x18).
const TRAMPOLINE_GDT: [u64; 4] = [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0x00af_9a00_0000_ffff];
const STACK_SIZE: usize = 64 * 1024;

/// What an AP needs once it runs Rust code.
struct ApStart {
    cpu: &'static PerCpu,
    tables: &'static gdt::Tables,
    entry: fn(CpuId) -> !,
    alive: AtomicBool,
}

static BOOT_STATE: Once<(Option<u64>, u64)> = Once::new();

/// Records the trampoline page (if memory set-up found one) and the CR3 APs load.
pub fn set_boot_state(trampoline: Option<u64>, cr3: u64) {
    BOOT_STATE.call_once(|| (trampoline, cr3));
}

/// Allocates `size` zeroed bytes that live forever (large objects never touch the stack).
fn leak_zeroed<T>(size: usize) -> &'static mut T {
    let layout = Layout::from_size_align(size.max(core::mem::size_of::<T>()), 4096).expect("layout");
    // SAFETY: the layout has a non-zero size; all-zero bytes are a valid T for the types
    // used here (stacks, IST stacks).
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut T;
    assert!(!p.is_null(), "out of heap for an AP's stacks");
    // SAFETY: freshly allocated, suitably aligned and never freed.
    unsafe { &mut *p }
}

/// Starts every other enabled CPU of the MADT; returns how many reached Rust code.
pub fn start_secondaries(entry: fn(CpuId) -> !) -> u32 {
    let Some(&(Some(page), cr3)) = BOOT_STATE.get() else {
        log::warn!("no free page below 1 MiB for the AP trampoline: running on the boot CPU only");
        return 0;
    };
    let Some(acpi) = acpi::info() else {
        log::warn!("no ACPI MADT: running on the boot CPU only");
        return 0;
    };
    let (start, end) = (&raw const keel_trampoline_start as u64, &raw const keel_trampoline_end as u64);
    let data = &raw const keel_trampoline_data as u64;
    // SAFETY: `page` is RAM below 1 MiB reserved for the trampoline (mapped, never
    // allocated); the code is shorter than a page (checked).
    unsafe {
        assert!(end - start <= 4096, "AP trampoline larger than a page");
        core::ptr::copy_nonoverlapping(start as *const u8, page as *mut u8, (end - start) as usize);
    }
    let data = (page + data - start) as *mut TrampolineData;
    let bsp = lapic::id();
    let mut started = 0u32;
    for &apic_id in acpi.cpu_apic_ids().iter().filter(|&&id| id != bsp) {
        let index = started + 1;
        if index as usize >= MAX_CPUS {
            break;
        }
        if start_one(page, data, cr3, apic_id, index, entry) {
            started += 1;
        }
    }
    started
}

fn start_one(page: u64, data: *mut TrampolineData, cr3: u64, apic_id: u32, index: u32, entry: fn(CpuId) -> !) -> bool {
    let cpu: &'static PerCpu = Box::leak(Box::new(PerCpu::new(index)));
    let ist: &'static gdt::IstStacks = leak_zeroed(core::mem::size_of::<gdt::IstStacks>());
    let tss = Box::leak(Box::new(gdt::new_tss(ist)));
    let tables = Box::leak(Box::new(gdt::new_tables(tss)));
    let stack: &'static mut [u8; STACK_SIZE] = leak_zeroed(STACK_SIZE);
    let ap: &'static ApStart = Box::leak(Box::new(ApStart { cpu, tables, entry, alive: AtomicBool::new(false) }));
    let (start, prot32) = (&raw const keel_trampoline_start as u64, &raw const keel_trampoline_32 as u64);
    let gdt_base = page + offset_of!(TrampolineData, gdt) as u64 + (data as u64 - page);
    let efer = efer::LME | if cpu::features().nx { efer::NXE } else { 0 };
    let block = TrampolineData {
        _pad0: 0,
        gdt_limit: (TRAMPOLINE_GDT.len() * 8 - 1) as u16,
        gdt_base: gdt_base as u32,
        far32_offset: (page + prot32 - start) as u32,
        far32_selector: 0x08,
        _pad1: 0,
        far64_offset: keel_ap_entry64 as *const () as u32,
        far64_selector: 0x18,
        _pad2: 0,
        cr3,
        efer,
        stack_top: stack.as_ptr() as u64 + STACK_SIZE as u64,
        arg: ap as *const ApStart as u64,
        gdt: TRAMPOLINE_GDT,
    };
    // SAFETY: `data` is inside the reserved trampoline page; no AP runs the trampoline now
    // (the previous one signalled that it left it, or was parked with INIT).
    unsafe { core::ptr::write_volatile(data, block) };
    core::sync::atomic::fence(Ordering::SeqCst);

    lapic::send_init(apic_id);
    timer::delay_us(10_000);
    let vector = (page >> 12) as u8;
    for _ in 0..2 {
        lapic::send_startup(apic_id, vector);
        if wait_alive(ap, 200) {
            return true;
        }
    }
    if wait_alive(ap, 2_000_000) {
        return true;
    }
    log::warn!("CPU with APIC id {apic_id} did not start; parked with INIT");
    lapic::send_init(apic_id);
    false
}

fn wait_alive(ap: &ApStart, us: u64) -> bool {
    let end = rdtsc() + timer::tsc_hz() / 1_000_000 * us;
    loop {
        if ap.alive.load(Ordering::Acquire) {
            return true;
        }
        if rdtsc() >= end {
            return false;
        }
        core::hint::spin_loop();
    }
}

/// An AP's first Rust code, on its own stack (called by `keel_ap_entry64`).
#[no_mangle]
extern "sysv64" fn keel_ap_main(ap: &'static ApStart) -> ! {
    gdt::load(ap.tables);
    // SAFETY: this AP installs its own, fresh block once, before anything reads GS.
    unsafe { cpu::install(ap.cpu) };
    exceptions::load();
    ap.alive.store(true, Ordering::Release); // the trampoline page is free for the next AP
                                             // SAFETY: the same PAT the boot CPU uses; Keel's page tables rely on entry 3 being UC.
    unsafe { regs::wrmsr(regs::msr::IA32_PAT, regs::PAT_DEFAULT) };
    X86Irq::init_cpu();
    if let Err(e) = vcpu::enable_this_cpu() {
        log::error!("hardware virtualisation unavailable on this CPU: {e}");
    }
    (ap.entry)(CpuId(ap.cpu.index()))
}
