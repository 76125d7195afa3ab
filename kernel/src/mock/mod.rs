//! The mock architecture: every boundary trait implemented on the host, for tests.
//!
//! State is per test thread. Memory is a sparse map of 4 KiB pages. The virtual CPU
//! interprets a small byte-coded instruction set ([`isa`]) fetched, loaded and stored
//! through the guest's translation tables, so a test exercises the same mapping code a
//! real guest depends on, and mock guests can run real programs ([`Asm`]) that make
//! real hypercalls. Physical CPUs, their clocks, timers and interrupts are simulated
//! ([`sim`]), so one test thread can drive the run loops of several CPUs.

mod asm;
mod domain;
mod fifo_guest;
pub mod isa;
pub mod sim;
mod vcpu;

pub use asm::{Asm, Label};
pub use domain::{MockDomain, GUEST_RAM};
pub use fifo_guest::FifoGuest;
pub use isa::{assemble, Cond, Insn, Op, PlatformCall};
pub use vcpu::MockVcpu;

use crate::arch::{
    Arch, CpuId, CpuOps, Entry, ExitStatus, HostMemory, InterruptController, IrqNumber, MemType, Perms, PowerOffPath,
    SpaceId, Stage2, Timer,
};
use crate::mm::{PhysAddr, PAGE_BYTES, PAGE_SIZE};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use std::cell::{Cell, RefCell};

extern crate std;

std::thread_local! {
    static MEMORY: RefCell<BTreeMap<u64, Box<[u8; PAGE_BYTES]>>> = const { RefCell::new(BTreeMap::new()) };
    static FLUSHES: Cell<u64> = const { Cell::new(0) };
    static ACCESSES: Cell<u64> = const { Cell::new(0) };
    static POOL_CHECKS: Cell<u64> = const { Cell::new(0) };
    static BREAK_RESULTS: Cell<bool> = const { Cell::new(false) };
    static LATCH_UPCALL: Cell<bool> = const { Cell::new(true) };
    static FAST_PATH: Cell<bool> = const { Cell::new(true) };
    static FAST_ANSWERS: Cell<u64> = const { Cell::new(0) };
    static TORN_WALKS: RefCell<BTreeMap<u64, u32>> = const { RefCell::new(BTreeMap::new()) };
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
    type Domain = MockDomain;
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

/// Whether mock vCPUs latch the upcall level ([`Vcpu::latches_upcall`](crate::arch::Vcpu::latches_upcall)),
/// as the arm64 backend does (the default), or have it set before every entry.
pub fn latch_upcall(on: bool) {
    LATCH_UPCALL.with(|b| b.set(on));
}

/// Whether mock vCPUs answer hypercalls through the core's fast path
/// ([`Vcpu::run_fast`](crate::arch::Vcpu::run_fast)), as the arm64 backend does (the
/// default), or report every one as an exit.
pub fn fast_path(on: bool) {
    FAST_PATH.with(|b| b.set(on));
}

/// Number of hypercalls the core answered on mock vCPUs' fast path on this thread.
pub fn fast_answers() -> u64 {
    FAST_ANSWERS.with(Cell::get)
}

/// Makes the next `walks` stage-2 walks of the page holding guest-physical `gpa` by mock
/// vCPUs fail, as a hardware walk does while another CPU replaces the block holding the
/// page with break-before-make: the P2M maps the page before and after.
pub fn tear_walks(gpa: u64, walks: u32) {
    TORN_WALKS.with(|t| t.borrow_mut().insert(gpa & !(PAGE_SIZE - 1), walks));
}

/// Whether a walk of `page` falls in a window [`tear_walks`] opened (and uses one up).
fn walk_torn(page: u64) -> bool {
    TORN_WALKS.with(|t| match t.borrow_mut().get_mut(&page) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    })
}

/// Number of host-memory operations (reads, writes, atomics) on this thread: a
/// deterministic measure of how much memory an operation touches.
pub fn memory_accesses() -> u64 {
    ACCESSES.with(Cell::get)
}

/// Number of host-memory operations on this thread that a backend checks against the
/// frame pool (every one but the accesses through a [`HostMemory::Frame`]; making a
/// frame counts as one).
pub fn pool_checks() -> u64 {
    POOL_CHECKS.with(Cell::get)
}

fn checked() {
    POOL_CHECKS.with(|c| c.set(c.get() + 1));
}

/// Number of TLB flushes requested on this thread.
pub fn flush_count() -> u64 {
    FLUSHES.with(Cell::get)
}

/// The simulated CPUs ([`sim`]).
pub struct MockCpu;

impl CpuOps for MockCpu {
    fn current() -> CpuId {
        sim::current()
    }
    fn halt() {
        sim::halt();
    }
    fn start_secondaries(_entry: fn(CpuId) -> !) -> u32 {
        0
    }
    fn power_off(path: PowerOffPath, status: ExitStatus) -> ! {
        panic!("mock power-off ({path:?}, {status:?})")
    }
}

/// The current simulated CPU's clock, in ns; each read moves it on by 1 ns.
pub struct MockTimer;

impl Timer for MockTimer {
    fn now() -> u64 {
        sim::read_clock()
    }
    fn frequency() -> u64 {
        1_000_000_000
    }
    fn set_deadline(ticks: u64) {
        sim::set_deadline(Some(ticks));
    }
    fn cancel() {
        sim::set_deadline(None);
    }
    fn irq() -> IrqNumber {
        sim::TIMER_IRQ
    }
}

/// The simulated interrupt controller of the current CPU.
pub struct MockIrq;

impl InterruptController for MockIrq {
    fn init_cpu() {}
    fn enable(irq: IrqNumber) {
        sim::set_enabled(irq, true);
    }
    fn disable(irq: IrqNumber) {
        sim::set_enabled(irq, false);
    }
    fn acknowledge() -> Option<IrqNumber> {
        sim::acknowledge()
    }
    fn end_of_interrupt(_irq: IrqNumber) {
        sim::end_of_interrupt();
    }
    fn send_ipi(target: CpuId) {
        sim::raise(target, sim::IPI_IRQ);
    }
    fn ipi_irq() -> IrqNumber {
        sim::IPI_IRQ
    }
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
            let n = (PAGE_BYTES - off).min(len - done);
            last = Some(MEMORY.with(|m| {
                let mut m = m.borrow_mut();
                let p = m.entry(page).or_insert_with(|| Box::new([0; PAGE_BYTES]));
                f(&mut p[off..off + n], done)
            }));
            done += n;
        }
        last.unwrap()
    }

    fn word<const N: usize>(pa: PhysAddr) -> [u8; N] {
        assert!(pa.0.is_multiple_of(N as u64), "unaligned atomic access at {pa}");
        let mut b = [0; N];
        Self::read_bytes(pa, &mut b);
        b
    }
}

impl HostMemory for MockMemory {
    fn read(pa: PhysAddr, dst: &mut [u8]) {
        checked();
        Self::read_bytes(pa, dst);
    }
    fn write(pa: PhysAddr, src: &[u8]) {
        checked();
        Self::write_bytes(pa, src);
    }
    fn zero(pa: PhysAddr, len: usize) {
        checked();
        Self::with_bytes(pa, len, |dst, _| dst.fill(0));
    }
    fn load_u64(pa: PhysAddr) -> u64 {
        checked();
        u64::from_le_bytes(Self::word::<8>(pa))
    }
    fn store_u64(pa: PhysAddr, value: u64) {
        checked();
        Self::word::<8>(pa);
        Self::write_bytes(pa, &value.to_le_bytes());
    }
    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        checked();
        Self::cas_u32(pa, current, new)
    }
    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        checked();
        Self::cas_u64(pa, current, new)
    }
    type Frame = MockFrame;
    fn frame(pa: PhysAddr) -> MockFrame {
        assert!(pa.0.is_multiple_of(PAGE_SIZE), "a frame at {pa}, not page aligned");
        checked();
        MockFrame(pa)
    }
    fn frame_address(frame: MockFrame) -> PhysAddr {
        frame.0
    }
    fn frame_load_u32(frame: MockFrame, offset: usize) -> u32 {
        u32::from_le_bytes(Self::word::<4>(frame.word(offset, 4)))
    }
    fn frame_load_u64(frame: MockFrame, offset: usize) -> u64 {
        u64::from_le_bytes(Self::word::<8>(frame.word(offset, 8)))
    }
    fn frame_compare_exchange_u32(frame: MockFrame, offset: usize, current: u32, new: u32) -> u32 {
        Self::cas_u32(frame.word(offset, 4), current, new)
    }
    fn frame_compare_exchange_u64(frame: MockFrame, offset: usize, current: u64, new: u64) -> u64 {
        Self::cas_u64(frame.word(offset, 8), current, new)
    }
}

impl MockMemory {
    fn read_bytes(pa: PhysAddr, dst: &mut [u8]) {
        Self::with_bytes(pa, dst.len(), |src, at| dst[at..at + src.len()].copy_from_slice(src));
    }
    fn write_bytes(pa: PhysAddr, src: &[u8]) {
        Self::with_bytes(pa, src.len(), |dst, at| dst.copy_from_slice(&src[at..at + dst.len()]));
    }
    fn cas_u32(pa: PhysAddr, current: u32, new: u32) -> u32 {
        let found = u32::from_le_bytes(Self::word::<4>(pa));
        if found == current {
            Self::write_bytes(pa, &new.to_le_bytes());
        }
        found
    }
    fn cas_u64(pa: PhysAddr, current: u64, new: u64) -> u64 {
        let found = u64::from_le_bytes(Self::word::<8>(pa));
        if found == current {
            Self::write_bytes(pa, &new.to_le_bytes());
        }
        found
    }
}

/// The mock's [`HostMemory::Frame`]: a page address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockFrame(PhysAddr);

impl MockFrame {
    /// The word of `size` bytes at `offset`, which must lie in the page.
    fn word(self, offset: usize, size: usize) -> PhysAddr {
        assert!(offset <= PAGE_BYTES - size, "a word at {offset:#x} beyond its frame");
        PhysAddr(self.0 .0 + offset as u64)
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

impl crate::arch::GuestAbi for MockArch {
    const LAYOUT: &'static keel_abi::layout::GuestLayout = &keel_abi::layout::X86_64;
}
