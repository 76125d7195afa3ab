//! What the guest learns from the device tree Keel generated for it, read once by the
//! boot CPU (MMU on) and kept in atomics for every CPU.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use fdt::Fdt;

/// The machine as the device tree describes it.
pub struct Board {
    cmdline: (AtomicUsize, AtomicUsize),
    pub cpus: AtomicU32,
    pub ram_start: AtomicU64,
    pub ram_end: AtomicU64,
    /// 2 or 3.
    pub gic_version: AtomicU32,
    pub gicd: AtomicU64,
    /// GICv3: the first redistributor; GICv2: the CPU interface.
    pub gicr_or_gicc: AtomicU64,
    /// The `/hypervisor` node's grant-table window and event interrupt (INTID).
    pub grant_window: AtomicU64,
    pub grant_window_size: AtomicU64,
    pub event_irq: AtomicU32,
}

pub static BOARD: Board = Board {
    cmdline: (AtomicUsize::new(0), AtomicUsize::new(0)),
    cpus: AtomicU32::new(1),
    ram_start: AtomicU64::new(0),
    ram_end: AtomicU64::new(0),
    gic_version: AtomicU32::new(0),
    gicd: AtomicU64::new(0),
    gicr_or_gicc: AtomicU64::new(0),
    grant_window: AtomicU64::new(0),
    grant_window_size: AtomicU64::new(0),
    event_irq: AtomicU32::new(0),
};

/// The command line (`/chosen/bootargs`).
pub fn cmdline() -> &'static str {
    let (ptr, len) = (BOARD.cmdline.0.load(Relaxed), BOARD.cmdline.1.load(Relaxed));
    if ptr == 0 {
        return "";
    }
    // SAFETY: `read` stored a string of the device tree, which stays in place and
    // unchanged for the guest's life.
    let bytes = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
    core::str::from_utf8(bytes).unwrap_or("")
}

fn first_reg(fdt: &Fdt<'_>, path: &str) -> Option<(u64, u64)> {
    let r = fdt.find_node(path)?.reg()?.next()?;
    Some((r.starting_address as u64, r.size.unwrap_or(0) as u64))
}

/// Reads the tree at `dtb` (boot CPU).
pub fn read(dtb: usize) {
    // SAFETY: Keel passes its generated tree in x0; it lies in our RAM and stays there.
    let Ok(fdt) = (unsafe { Fdt::from_ptr(dtb as *const u8) }) else { return };
    if let Some(args) = fdt.chosen().bootargs() {
        BOARD.cmdline.0.store(args.as_ptr() as usize, Relaxed);
        BOARD.cmdline.1.store(args.len(), Relaxed);
    }
    BOARD.cpus.store(fdt.cpus().count() as u32, Relaxed);
    if let Some(r) = fdt.memory().regions().next() {
        BOARD.ram_start.store(r.starting_address as u64, Relaxed);
        BOARD.ram_end.store(r.starting_address as u64 + r.size.unwrap_or(0) as u64, Relaxed);
    }
    if let Some(gic) = fdt.find_compatible(&["arm,gic-v3", "arm,cortex-a15-gic"]) {
        let v3 = gic.compatible().is_some_and(|c| c.all().any(|s| s == "arm,gic-v3"));
        let mut regs = gic.reg().into_iter().flatten();
        BOARD.gic_version.store(if v3 { 3 } else { 2 }, Relaxed);
        if let (Some(d), Some(second)) = (regs.next(), regs.next()) {
            BOARD.gicd.store(d.starting_address as u64, Relaxed);
            BOARD.gicr_or_gicc.store(second.starting_address as u64, Relaxed);
        }
    }
    if let Some((base, size)) = first_reg(&fdt, "/hypervisor") {
        BOARD.grant_window.store(base, Relaxed);
        BOARD.grant_window_size.store(size, Relaxed);
    }
    if let Some(irq) = fdt.find_node("/hypervisor").and_then(|h| h.property("interrupts")) {
        let cell = |i: usize| irq.value.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if let (Some(kind), Some(n)) = (cell(0), cell(1)) {
            BOARD.event_irq.store(if kind == 1 { n + 16 } else { n + 32 }, Relaxed);
        }
    }
}
