//! Hypercall dispatch overhead: a null hypercall (`xen_version(XENVER_version)`, no
//! guest memory touched) and an unknown number through the table.

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use keel_abi::hypercall::XEN_VERSION;
use std::hint::black_box;

fn dispatch(c: &mut Criterion) {
    let hv = hypervisor();
    let d = guest(&hv, 64 << 10);
    c.bench_function("null_hypercall_xen_version", |b| {
        b.iter(|| black_box(call(&hv, &d, black_box(XEN_VERSION), &[0])))
    });
    c.bench_function("unknown_hypercall_enosys", |b| b.iter(|| black_box(call(&hv, &d, black_box(48), &[0]))));
}

criterion_group! { name = benches; config = criterion(); targets = dispatch }
criterion_main!(benches);
