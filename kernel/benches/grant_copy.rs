//! Grant copy throughput (one 4 KiB `GNTTABOP_copy` from another domain's grant into
//! the caller's frame) against a plain memcpy and a copy through the mock host memory.

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keel_abi::grant::*;
use keel_abi::hypercall::{GRANT_TABLE_OP, MEMORY_OP};
use keel_abi::memory::*;
use keel_abi::xen::DOMID_SELF;
use keel_kernel::arch::HostMemory;
use keel_kernel::mm::PhysAddr;
use keel_kernel::mock::MockMemory;
use std::hint::black_box;

const LEN: usize = 4096;

fn copy(c: &mut Criterion) {
    let hv = hypervisor();
    let a = guest(&hv, 1 << 20);
    let b = guest(&hv, 1 << 20);
    let table = RAM + 0x20000;
    put(
        &a,
        ARG,
        &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx: 0, gpfn: table >> 12 },
    );
    assert_eq!(call(&hv, &a, MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, ARG]), 0);
    let page = RAM + 0x30000;
    a.write_phys(page, &[0x5a; LEN]).unwrap();
    put(&a, table + 8 * 9, &GrantEntryV1 { flags: GTF_PERMIT_ACCESS, domid: b.id(), frame: (page >> 12) as u32 });
    let ptr = |r: u64, d: u16| GnttabCopyPtr { ref_or_gfn: r, domid: d, offset: 0, _pad: [0; 4] };
    let op = GnttabCopy {
        source: ptr(9, a.id()),
        dest: ptr((RAM + 0x40000) >> 12, DOMID_SELF),
        len: LEN as u16,
        flags: GNTCOPY_SOURCE_GREF,
        status: 0,
        _pad: [0; 2],
    };

    let mut g = c.benchmark_group("copy_4k");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("grant_copy_hypercall", |bn| {
        bn.iter(|| {
            put(&b, ARG, &op);
            assert_eq!(call(&hv, &b, GRANT_TABLE_OP, &[GNTTABOP_COPY, ARG, 1]), 0);
        })
    });
    let (src, dst) = (a.lookup(page >> 12).unwrap().frame, b.lookup((RAM + 0x40000) >> 12).unwrap().frame);
    g.bench_function("host_memory_copy", |bn| {
        let mut buf = [0u8; 512];
        bn.iter(|| {
            for off in (0..LEN as u64).step_by(512) {
                MockMemory::read(PhysAddr(src.0 + off), &mut buf);
                MockMemory::write(PhysAddr(dst.0 + off), &buf);
            }
        })
    });
    let from = vec![0x5au8; LEN];
    let mut to = vec![0u8; LEN];
    g.bench_function("memcpy", |bn| {
        bn.iter(|| {
            to.copy_from_slice(black_box(&from));
            black_box(&mut to);
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = criterion(); targets = copy }
criterion_main!(benches);
