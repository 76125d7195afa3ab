//! FIFO event send + consume with 64, 4096 and 131071 bound ports: the cost per event
//! must not grow with the number of ports (two-level port table, O(1) send).

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use keel_abi::event::*;
use keel_abi::hypercall::EVENT_CHANNEL_OP;
use keel_kernel::mock::FifoGuest;
use std::hint::black_box;

/// A guest in the FIFO ABI with `ports` IPI ports bound; returns 64 ports spread over
/// the bound range (`spread`) or the 64 highest ports.
fn setup(hv: &Hv, ports: u32, spread: bool) -> (D, FifoGuest, Vec<u32>) {
    let d = guest(hv, 1 << 20);
    let control = RAM + 0x2000;
    put(&d, ARG, &EvtchnInitControl { control_gfn: control >> 12, offset: 0, vcpu: 0, link_bits: 0, _pad: [0; 7] });
    assert_eq!(call(hv, &d, EVENT_CHANNEL_OP, &[EVTCHNOP_INIT_CONTROL, ARG]), 0);
    let pages: Vec<u64> = (0..ports.div_ceil(1024).max(1) as u64).map(|i| RAM + 0x10000 + i * 0x1000).collect();
    for p in &pages {
        put(&d, ARG, &EvtchnExpandArray { array_gfn: p >> 12 });
        assert_eq!(call(hv, &d, EVENT_CHANNEL_OP, &[EVTCHNOP_EXPAND_ARRAY, ARG]), 0);
    }
    let mut last = 0;
    for _ in 0..ports {
        put(&d, ARG, &EvtchnBindIpi { vcpu: 0, port: 0 });
        assert_eq!(call(hv, &d, EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_IPI, ARG]), 0);
        last = get::<EvtchnBindIpi>(&d, ARG).port;
    }
    assert_eq!(last, ports);
    let sample =
        if spread { (0..64).map(|i| 1 + i * (ports - 1) / 63).collect() } else { (ports - 63..=ports).collect() };
    (d, FifoGuest::new(control, pages), sample)
}

fn send_consume(c: &mut Criterion) {
    bench(c, "fifo_send_consume_top64", false);
    bench(c, "fifo_send_consume_spread64", true);
}

/// Send + consume on 64 ports (the highest ones, or spread over the range: 64 event
/// words in as many pages, so the guest's memory footprint grows with the range).
fn bench(c: &mut Criterion, name: &str, spread: bool) {
    let mut g = c.benchmark_group(name);
    for ports in [64u32, 4096, 131071] {
        let hv = hypervisor();
        let (d, mut guest, sample) = setup(&hv, ports, spread);
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(ports), &ports, |b, _| {
            b.iter(|| {
                let port = sample[i % sample.len()];
                i += 1;
                put(&d, ARG, &EvtchnPort { port });
                assert_eq!(call(&hv, &d, EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, ARG]), 0);
                let got = guest.consume(&d, 4);
                debug_assert_eq!(got, [port]);
                black_box(got);
            })
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = criterion(); targets = send_consume }
criterion_main!(benches);
