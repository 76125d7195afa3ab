//! Helpers for host tests of the guest-facing core: a hypervisor on the mock
//! architecture, guests with RAM, hypercalls with identity-mapped pointers.

use crate::arch::HypercallArgs;
use crate::domain::{Domain, DomainConfig, Hooks};
use crate::guest_memory::IdentityTranslation;
use crate::hypervisor::Hypervisor;
use crate::mm::{FramePool, GuestPhysAddr, Region};
use crate::mock::MockArch;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use keel_abi::layout::GuestLayout;
use keel_abi::xen::DomId;
use keel_abi::Wire;
use spin::Mutex;

extern crate std;

/// Where test guests' RAM starts.
pub const RAM: u64 = 0x4000_0000;

/// A scratch area in guest RAM for hypercall arguments.
pub const ARG: u64 = RAM + 0x1000;

/// Hooks that record what the core told them.
#[derive(Default)]
pub struct Recorder {
    pub kicks: Mutex<Vec<(DomId, u32)>>,
    pub blocks: Mutex<Vec<(DomId, u32)>>,
    pub lines: Mutex<Vec<(DomId, String)>>,
    pub stopped: Mutex<Vec<DomId>>,
    pub timers: Mutex<Vec<(DomId, u32, Option<u64>)>>,
}

impl Hooks for Recorder {
    fn kick(&self, d: DomId, v: u32) {
        self.kicks.lock().push((d, v));
    }
    fn block(&self, d: DomId, v: u32, _still_blocked: &dyn Fn() -> bool) {
        self.blocks.lock().push((d, v));
    }
    fn console_line(&self, d: DomId, line: &str) {
        self.lines.lock().push((d, line.to_string()));
    }
    fn domain_stopped(&self, d: DomId) {
        self.stopped.lock().push(d);
    }
    fn timer_changed(&self, d: DomId, v: u32, t: Option<u64>) {
        self.timers.lock().push((d, v, t));
    }
}

static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);

/// The test clock (ns); shared by all tests, only moves forward.
pub fn now() -> u64 {
    CLOCK.load(std::sync::atomic::Ordering::SeqCst)
}

/// Moves the test clock forward by `ns`.
#[allow(dead_code)]
pub fn advance(ns: u64) -> u64 {
    CLOCK.fetch_add(ns, std::sync::atomic::Ordering::SeqCst) + ns
}

/// A frame pool of 256 MiB (sparse mock memory).
pub fn pool() -> &'static FramePool {
    let p = Box::leak(Box::new(FramePool::new()));
    p.add(Region::new(0x10_0000_0000, 256 << 20));
    p
}

/// A hypervisor with recording hooks.
pub fn hypervisor() -> (Hypervisor<'static, MockArch>, &'static Recorder) {
    let rec: &'static Recorder = Box::leak(Box::default());
    (Hypervisor::new(pool(), rec).with_clock(now), rec)
}

/// A guest with `vcpus` vCPUs and `ram_kib` KiB of RAM at [`RAM`].
pub fn guest(
    hv: &Hypervisor<'_, MockArch>,
    layout: &'static GuestLayout,
    vcpus: u32,
    ram_kib: u64,
) -> Arc<Domain<MockArch>> {
    let d = hv.create_domain(DomainConfig::new(layout, vcpus, 1 << 16)).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), ram_kib * 1024).unwrap();
    d
}

/// Makes hypercall `nr` from `vcpu` of `d`; returns the result as a signed value.
pub fn call(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>, vcpu: u32, nr: u64, args: &[u64]) -> i64 {
    let mut a = [0u64; 5];
    a[..args.len()].copy_from_slice(args);
    hv.hypercall(d, vcpu, &HypercallArgs { number: nr, args: a, compat: false }, &IdentityTranslation) as i64
}

/// [`call`] from 32-bit x86 code (Xen's compat layouts).
pub fn call_compat(hv: &Hypervisor<'_, MockArch>, d: &Arc<Domain<MockArch>>, vcpu: u32, nr: u64, args: &[u64]) -> i64 {
    let mut a = [0u64; 5];
    a[..args.len()].copy_from_slice(args);
    hv.hypercall(d, vcpu, &HypercallArgs { number: nr, args: a, compat: true }, &IdentityTranslation) as i64
}

/// Writes an ABI struct into guest memory.
pub fn put<T: Wire>(d: &Domain<MockArch>, gpa: u64, v: &T) {
    let mut b = alloc::vec![0u8; T::SIZE];
    v.write_bytes(&mut b).unwrap();
    d.write_phys(gpa, &b).unwrap();
}

/// Reads an ABI struct from guest memory.
pub fn get<T: Wire>(d: &Domain<MockArch>, gpa: u64) -> T {
    let mut b = alloc::vec![0u8; T::SIZE];
    d.read_phys(gpa, &mut b).unwrap();
    T::from_bytes(&b).unwrap()
}

/// Reads a `u32` from guest memory.
pub fn get_u32(d: &Domain<MockArch>, gpa: u64) -> u32 {
    let mut b = [0u8; 4];
    d.read_phys(gpa, &mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Writes a `u32` into guest memory.
pub fn put_u32(d: &Domain<MockArch>, gpa: u64, v: u32) {
    d.write_phys(gpa, &v.to_le_bytes()).unwrap();
}

/// Reads a `u64` from guest memory.
pub fn get_u64(d: &Domain<MockArch>, gpa: u64) -> u64 {
    let mut b = [0u8; 8];
    d.read_phys(gpa, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// `n` property-test cases, or `PROPTEST_CASES` if set (for longer runs).
pub fn cases(n: u32) -> proptest::test_runner::Config {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    proptest::test_runner::Config::with_cases(n)
}
