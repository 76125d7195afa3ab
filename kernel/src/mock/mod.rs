//! The mock architecture: every boundary trait implemented on the host, for tests.
//!
//! State is per test thread. Memory is a sparse map of 4 KiB pages. The virtual CPU
//! interprets a tiny byte-coded instruction set fetched through the guest's translation
//! tables, so a test exercises the same mapping code a real guest depends on.

mod fifo_guest;
mod isa;

pub use fifo_guest::FifoGuest;
pub use isa::{assemble, Insn};

use crate::arch::{
    Arch, CpuId, CpuOps, Entry, ExitStatus, HostMemory, HypercallArgs, InterruptController, IrqNumber, MemType,
    MemoryAccess, Perms, PowerOffPath, SpaceId, Stage2, Timer, Vcpu, VcpuError, VcpuInit, VmExit,
};
use crate::mm::{translate, GuestPhysAddr, PhysAddr, PAGE_SIZE};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use std::cell::{Cell, RefCell};

extern crate std;

std::thread_local! {
    static MEMORY: RefCell<BTreeMap<u64, Box<[u8; PAGE_SIZE as usize]>>> = const { RefCell::new(BTreeMap::new()) };
    static CLOCK: Cell<u64> = const { Cell::new(0) };
    static FLUSHES: Cell<u64> = const { Cell::new(0) };
    static ACCESSES: Cell<u64> = const { Cell::new(0) };
    static BREAK_RESULTS: Cell<bool> = const { Cell::new(false) };
}

/// The mock architecture.
pub struct MockArch;

impl Arch for MockArch {
    const NAME: &'static str = "mock";
    type Cpu = MockCpu;
    type Timer = MockTimer;
    type Irq = MockIrq;
    type Memory = MockMemory;
    type Stage2 = MockStage2;
    type Vcpu = MockVcpu;

    fn facts() -> Vec<(&'static str, String)> {
        alloc::vec![("virtualization", "mock".into())]
    }

    fn probe_guest_code() -> &'static [u8] {
        use Insn::*;
        static CODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        CODE.get_or_init(|| {
            assemble(&[
                Mov(1, 0),
                Set(0, 0),
                Set(7, keel_abi::hypercall::XEN_VERSION),
                Hypercall,
                Mov(1, 0),
                Set(0, 0),
                Set(7, keel_abi::hypercall::XEN_VERSION),
                Hypercall,
                Halt,
            ])
        })
    }
}

/// Makes the mock vCPU drop hypercall results (to prove the probe notices).
pub fn break_hypercall_results(on: bool) {
    BREAK_RESULTS.with(|b| b.set(on));
}

/// Number of host-memory operations (reads, writes, atomics) on this thread: a
/// deterministic measure of how much memory an operation touches.
pub fn memory_accesses() -> u64 {
    ACCESSES.with(Cell::get)
}

/// Number of TLB flushes requested on this thread.
pub fn flush_count() -> u64 {
    FLUSHES.with(Cell::get)
}

pub struct MockCpu;

impl CpuOps for MockCpu {
    fn current() -> CpuId {
        CpuId(0)
    }
    fn halt() {}
    fn start_secondaries(_entry: fn(CpuId) -> !) -> u32 {
        0
    }
    fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
        panic!("mock power-off ({path:?}, {status:?})")
    }
}

/// A clock that advances by one tick each time it is read.
pub struct MockTimer;

impl Timer for MockTimer {
    fn now() -> u64 {
        CLOCK.with(|c| {
            c.set(c.get() + 1);
            c.get()
        })
    }
    fn frequency() -> u64 {
        1_000_000
    }
    fn set_deadline(_ticks: u64) {}
    fn cancel() {}
}

pub struct MockIrq;

impl InterruptController for MockIrq {
    fn init_cpu() {}
    fn enable(_irq: IrqNumber) {}
    fn disable(_irq: IrqNumber) {}
    fn acknowledge() -> Option<IrqNumber> {
        None
    }
    fn end_of_interrupt(_irq: IrqNumber) {}
    fn send_ipi(_target: CpuId) {}
}

/// Sparse host memory; pages spring into existence zeroed.
pub struct MockMemory;

impl MockMemory {
    fn with_bytes<R>(pa: PhysAddr, len: usize, mut f: impl FnMut(&mut [u8], usize) -> R) -> R {
        ACCESSES.with(|a| a.set(a.get() + 1));
        let mut done = 0;
        let mut last = None;
        while done < len || (len == 0 && last.is_none()) {
            let a = pa.0 + done as u64;
            let (page, off) = (a & !(PAGE_SIZE - 1), (a % PAGE_SIZE) as usize);
            let n = (PAGE_SIZE as usize - off).min(len - done);
            last = Some(MEMORY.with(|m| {
                let mut m = m.borrow_mut();
                let p = m.entry(page).or_insert_with(|| Box::new([0; PAGE_SIZE as usize]));
                f(&mut p[off..off + n], done)
            }));
            done += n;
        }
        last.unwrap()
    }

    fn word<const N: usize>(pa: PhysAddr) -> [u8; N] {
        assert!(pa.0.is_multiple_of(N as u64), "unaligned atomic access at {pa}");
        let mut b = [0; N];
        Self::read(pa, &mut b);
        b
    }
}

impl HostMemory for MockMemory {
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        Self::with_bytes(pa, dst.len(), |src, at| dst[at..at + src.len()].copy_from_slice(src));
    }
    fn write(pa: PhysAddr, src: &[u8]) {
        Self::with_bytes(pa, src.len(), |dst, at| dst.copy_from_slice(&src[at..at + dst.len()]));
    }
    fn zero(pa: PhysAddr, len: usize) {
        Self::with_bytes(pa, len, |dst, _| dst.fill(0));
    }
    fn load_u64(pa: PhysAddr) -> u64 {
        u64::from_le_bytes(Self::word::<8>(pa))
    }
    fn store_u64(pa: PhysAddr, value: u64) {
        Self::word::<8>(pa);
        Self::write(pa, &value.to_le_bytes());
    }
    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        let found = u32::from_le_bytes(Self::word::<4>(pa));
        if found == current {
            Self::write(pa, &new.to_le_bytes());
        }
        found
    }
    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        let found = Self::load_u64(pa);
        if found == current {
            Self::store_u64(pa, new);
        }
        found
    }
}

/// A 4-level format: bit 0 valid, bit 1 table, bits 2..4 R/W/X, bit 5 device memory.
pub struct MockStage2;

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

impl Stage2 for MockStage2 {
    fn levels() -> usize {
        4
    }
    fn block_allowed(level: usize) -> bool {
        level >= 1
    }
    fn table_entry(next: PhysAddr) -> u64 {
        next.0 | 0b11
    }
    fn leaf_entry(_level: usize, pa: PhysAddr, perms: Perms, mem: MemType) -> u64 {
        pa.0 | 1
            | (perms.read as u64) << 2
            | (perms.write as u64) << 3
            | (perms.execute as u64) << 4
            | ((mem == MemType::Device) as u64) << 5
    }
    fn decode(raw: u64, level: usize) -> Entry {
        if raw & 1 == 0 {
            Entry::Invalid
        } else if raw & 2 != 0 && level < 3 {
            Entry::Table(PhysAddr(raw & ADDR_MASK))
        } else {
            let perms = Perms { read: raw & 4 != 0, write: raw & 8 != 0, execute: raw & 16 != 0 };
            let mem = if raw & 32 != 0 { MemType::Device } else { MemType::Normal };
            Entry::Leaf { pa: PhysAddr(raw & ADDR_MASK), perms, mem }
        }
    }
    fn flush(_space: SpaceId) {
        FLUSHES.with(|f| f.set(f.get() + 1));
    }
}

/// A virtual CPU running the mock instruction set (see [`Insn`]). Registers r0..r7;
/// hypercall number in r7, arguments in r0..r4, result in r0; the boot argument in r0.
pub struct MockVcpu {
    regs: [u64; 8],
    pc: u64,
    root: PhysAddr,
}

impl MockVcpu {
    /// Reads guest memory through the guest's translation tables.
    fn fetch(&self, gpa: u64, buf: &mut [u8]) -> Result<(), GuestPhysAddr> {
        for (i, b) in buf.iter_mut().enumerate() {
            let g = GuestPhysAddr(gpa + i as u64);
            match translate::<MockArch>(self.root, g) {
                Some((pa, perms, _)) if perms.execute => {
                    let mut one = [0u8];
                    MockMemory::read(pa, &mut one);
                    *b = one[0];
                }
                _ => return Err(g),
            }
        }
        Ok(())
    }
}

impl Vcpu for MockVcpu {
    fn new(init: &VcpuInit) -> Result<Self, VcpuError> {
        let mut regs = [0; 8];
        regs[0] = init.arg;
        Ok(MockVcpu { regs, pc: init.entry.0, root: init.stage2_root })
    }

    fn run(&mut self) -> VmExit {
        loop {
            let mut op = [0u8; 10];
            if let Err(gpa) = self.fetch(self.pc, &mut op[..1]) {
                return VmExit::MemoryFault { gpa, access: MemoryAccess::Execute };
            }
            let len = Insn::length(op[0]);
            if let Err(gpa) = self.fetch(self.pc, &mut op[..len]) {
                return VmExit::MemoryFault { gpa, access: MemoryAccess::Execute };
            }
            self.pc += len as u64;
            match Insn::decode(&op[..len]) {
                Some(Insn::Set(r, v)) => self.regs[r as usize & 7] = v,
                Some(Insn::Mov(d, s)) => self.regs[d as usize & 7] = self.regs[s as usize & 7],
                Some(Insn::Hypercall) => return VmExit::Hypercall,
                Some(Insn::Halt) => return VmExit::Halt,
                None => return VmExit::GuestCrash,
            }
        }
    }

    fn hypercall_args(&self) -> HypercallArgs {
        let r = &self.regs;
        HypercallArgs { number: r[7], args: [r[0], r[1], r[2], r[3], r[4]] }
    }

    fn set_hypercall_result(&mut self, value: u64) {
        if !BREAK_RESULTS.with(Cell::get) {
            self.regs[0] = value;
        }
    }

    /// The mock CPU has no MMU: virtual addresses are guest-physical.
    fn translate_gva(&self, gva: u64, _write: bool) -> Option<GuestPhysAddr> {
        Some(GuestPhysAddr(gva))
    }
}

impl crate::arch::GuestAbi for MockArch {
    const LAYOUT: &'static keel_abi::layout::GuestLayout = &keel_abi::layout::X86_64;
}
