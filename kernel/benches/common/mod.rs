//! Shared set-up for the benchmarks: a hypervisor on the mock architecture and guests
//! whose pointers are guest-physical (identity translation).
#![allow(dead_code)]

use keel_abi::layout::X86_64;
use keel_abi::Wire;
use keel_kernel::arch::HypercallArgs;
use keel_kernel::domain::{Domain, DomainConfig, NoHooks};
use keel_kernel::guest_memory::IdentityTranslation;
use keel_kernel::mm::{FramePool, GuestPhysAddr, Region};
use keel_kernel::mock::MockArch;
use keel_kernel::Hypervisor;
use std::sync::Arc;
use std::time::Duration;

pub type Hv = Hypervisor<'static, MockArch>;
pub type D = Arc<Domain<MockArch>>;

pub const RAM: u64 = 0x4000_0000;
pub const ARG: u64 = RAM + 0x1000;

pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

pub fn hypervisor() -> Hv {
    let pool: &'static FramePool = Box::leak(Box::new(FramePool::new()));
    pool.add(Region::new(0x10_0000_0000, 512 << 20));
    Hypervisor::new(pool, &NoHooks)
}

pub fn guest(hv: &Hv, ram: u64) -> D {
    let d = hv.create_domain(DomainConfig::new(&X86_64, 1, 1 << 20)).unwrap();
    d.populate_ram(hv.pool(), GuestPhysAddr(RAM), ram).unwrap();
    d
}

pub fn call(hv: &Hv, d: &D, nr: u64, args: &[u64]) -> u64 {
    let mut a = [0u64; 5];
    a[..args.len()].copy_from_slice(args);
    hv.hypercall(d, 0, &HypercallArgs { number: nr, args: a, compat: false }, &IdentityTranslation)
}

pub fn put<T: Wire>(d: &D, gpa: u64, v: &T) {
    let mut b = vec![0u8; T::SIZE];
    v.write_bytes(&mut b).unwrap();
    d.write_phys(gpa, &b).unwrap();
}

pub fn get<T: Wire>(d: &D, gpa: u64) -> T {
    let mut b = vec![0u8; T::SIZE];
    d.read_phys(gpa, &mut b).unwrap();
    T::from_bytes(&b).unwrap()
}
