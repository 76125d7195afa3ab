//! The guest-physical translation format, chosen at boot with the vendor: Intel EPT
//! (SDM vol. 3, 29.3.2) or AMD nested paging, whose tables are ordinary x86-64 page tables
//! walked as user accesses (APM vol. 2, 15.25.5). Both have 4 levels (48-bit GPAs); the
//! portable walker (`keel_kernel::mm::PageTable`) builds and walks them.
//!
//! TLB upkeep: every vCPU drops its cached translations (INVEPT/INVVPID, or TLB_CONTROL
//! on VMRUN) before an entry once the stage-2 generation moved since it last did. The
//! generation and what each CPU runs live in a [`FlushGate`]: an entry publishes its
//! address space and generation ([`enter_guest`]), an exit clears it ([`exit_guest`]),
//! and [`Stage2::flush`] advances the generation, sends the wake-up IPI to every other CPU
//! in guest mode for that space at an older generation (a host interrupt always exits:
//! SVM's INTR intercept, VMX's external-interrupt exiting) and spins until each has left
//! guest mode, as Xen's `flush_tlb_mask`. So when `flush` returns, no CPU can reach a
//! frame unmapped before it, and the frame may be freed.

use crate::cpu::{self, MAX_CPUS};
use crate::irq::X86Irq;
use crate::vcpu::extension::{extension, Extension};
use core::sync::atomic::{AtomicBool, Ordering};
use keel_kernel::arch::{CpuId, Entry, InterruptController, MemType, Perms, SpaceId, Stage2};
use keel_kernel::mm::{FlushGate, PhysAddr};

static GATE: FlushGate<MAX_CPUS> = FlushGate::new();
/// The first flush that had to kick another CPU is logged (once per boot).
static FIRST_KICK_LOGGED: AtomicBool = AtomicBool::new(false);

/// The current stage-2 generation (see the module documentation).
pub fn generation() -> u64 {
    GATE.generation()
}

/// Right before this CPU enters guest mode for `space` (interrupts masked, no lock held
/// until the entry): returns the generation the vCPU's cached translations must be
/// flushed to before it enters.
pub fn enter_guest(space: SpaceId) -> u64 {
    GATE.enter(cpu::current_index() as usize, space)
}

/// Right after this CPU left guest mode, before it takes any lock.
pub fn exit_guest() {
    GATE.exit(cpu::current_index() as usize);
}

const LAST_LEVEL: usize = 3;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const LARGE: u64 = 1 << 7;

mod ept {
    pub const READ: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const EXECUTE: u64 = 1 << 2;
    pub const MEMTYPE_SHIFT: u32 = 3;
    pub const MEMTYPE_UC: u64 = 0;
    pub const MEMTYPE_WB: u64 = 6;
    pub const IGNORE_PAT: u64 = 1 << 6;
}

mod npt {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITABLE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const WRITE_THROUGH: u64 = 1 << 3;
    pub const CACHE_DISABLE: u64 = 1 << 4;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    pub const NO_EXECUTE: u64 = 1 << 63;
}

fn is_ept() -> bool {
    matches!(extension(), Extension::Vmx(_))
}

/// The address bits of an entry at `level` (a block's low bits hold flags, e.g. PAT).
fn address(raw: u64, level: usize) -> PhysAddr {
    let block = 12 + 9 * (LAST_LEVEL - level) as u32;
    PhysAddr(raw & ADDRESS & !((1u64 << block) - 1))
}

/// The stage-2 format of this backend.
pub struct X86Stage2;

/// EPT (VMX, tagged by VPID) or NPT (SVM, tagged by ASID), as `extension()`
/// reports, four levels.
impl Stage2 for X86Stage2 {
    fn levels() -> usize {
        4
    }

    fn block_allowed(level: usize) -> bool {
        match (level, extension()) {
            (LAST_LEVEL, _) => true,
            (2, Extension::Vmx(c)) => c.ept_2m(),
            (1, Extension::Vmx(c)) => c.ept_1g(),
            (2, Extension::Svm(_)) => true,
            (1, Extension::Svm(_)) => crate::cpu::features().huge_1g,
            _ => false,
        }
    }

    fn table_entry(next: PhysAddr) -> u64 {
        if is_ept() {
            next.0 | ept::READ | ept::WRITE | ept::EXECUTE
        } else {
            next.0 | npt::PRESENT | npt::WRITABLE | npt::USER | npt::ACCESSED
        }
    }

    fn leaf_entry(level: usize, pa: PhysAddr, perms: Perms, mem: MemType) -> u64 {
        let large = if level < LAST_LEVEL { LARGE } else { 0 };
        if is_ept() {
            let bit = |on: bool, b: u64| if on { b } else { 0 };
            let rights = bit(perms.read, ept::READ) | bit(perms.write, ept::WRITE) | bit(perms.execute, ept::EXECUTE);
            let memtype = match mem {
                MemType::Normal => ept::MEMTYPE_WB << ept::MEMTYPE_SHIFT,
                MemType::Device => ept::MEMTYPE_UC << ept::MEMTYPE_SHIFT | ept::IGNORE_PAT,
            };
            return if rights == 0 { 0 } else { pa.0 | rights | memtype | large };
        }
        // Nested page tables cannot express "no read": any right makes the page readable.
        if perms == Perms::NONE {
            return 0;
        }
        let write = if perms.write { npt::WRITABLE } else { 0 };
        let no_exec = if !perms.execute && crate::cpu::features().nx { npt::NO_EXECUTE } else { 0 };
        let cache = match mem {
            MemType::Normal => 0,
            MemType::Device => npt::CACHE_DISABLE | npt::WRITE_THROUGH,
        };
        pa.0 | npt::PRESENT | npt::USER | npt::ACCESSED | npt::DIRTY | write | no_exec | cache | large
    }

    fn decode(raw: u64, level: usize) -> Entry {
        if is_ept() {
            if raw & (ept::READ | ept::WRITE | ept::EXECUTE) == 0 {
                return Entry::Invalid;
            }
            if level < LAST_LEVEL && raw & LARGE == 0 {
                return Entry::Table(PhysAddr(raw & ADDRESS));
            }
            let perms =
                Perms { read: raw & ept::READ != 0, write: raw & ept::WRITE != 0, execute: raw & ept::EXECUTE != 0 };
            let mem =
                if (raw >> ept::MEMTYPE_SHIFT) & 7 == ept::MEMTYPE_WB { MemType::Normal } else { MemType::Device };
            return Entry::Leaf { pa: address(raw, level), perms, mem };
        }
        if raw & npt::PRESENT == 0 {
            return Entry::Invalid;
        }
        if level < LAST_LEVEL && raw & LARGE == 0 {
            return Entry::Table(PhysAddr(raw & ADDRESS));
        }
        let perms = Perms { read: true, write: raw & npt::WRITABLE != 0, execute: raw & npt::NO_EXECUTE == 0 };
        let mem = if raw & npt::CACHE_DISABLE != 0 { MemType::Device } else { MemType::Normal };
        Entry::Leaf { pa: address(raw, level), perms, mem }
    }

    fn flush(space: SpaceId) {
        let mut kicked = None;
        let kick = |c: usize| {
            kicked = Some(c);
            X86Irq::send_ipi(CpuId(c as u32));
        };
        GATE.flush(cpu::current_index() as usize, space, kick, core::hint::spin_loop);
        if let Some(c) = kicked {
            if !FIRST_KICK_LOGGED.swap(true, Ordering::Relaxed) {
                log::info!("stage-2 flush of space {}: cpu{c} left guest mode before the frames are freed", space.0);
            }
        }
    }
}
