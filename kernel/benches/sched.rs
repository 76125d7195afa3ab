//! Cost of the scheduler's hot path on the host: `account` + `pick_next` on one CPU with
//! 4, 64 and 1024 CPU-bound vCPUs in its run queue.
//!
//! - `switch`: every call comes after the slice expired, so the running vCPU goes back
//!   to the queue and the next one is taken (heap push + pop).
//! - `resume`: the calls come mid-slice (a VM exit that needs no switch).
//! - `block_wake`: the running vCPU blocks, the CPU picks another, the blocked one is
//!   woken again (as an event-channel round trip would).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use keel_kernel::arch::CpuId;
use keel_kernel::sched::{SchedConfig, Scheduler, VcpuKey, VcpuParams};
use std::hint::black_box;
use std::time::Duration;

const CPU: CpuId = CpuId(0);

fn loaded(n: u32) -> (Scheduler, u64) {
    let cfg = SchedConfig::default();
    let s = Scheduler::new(1, cfg).unwrap();
    for v in 0..n {
        let key = VcpuKey::new((v % 7) as u16 + 1, v);
        let weight = [128, 256, 512][v as usize % 3];
        s.add_vcpu(key, VcpuParams { weight, ..Default::default() }).unwrap();
        s.start(key, 0).unwrap();
    }
    // Run every vCPU once so the queue is in its steady state.
    let mut now = 0;
    for _ in 0..2 * n {
        now += cfg.slice_ns;
        s.pick_next(CPU, now);
    }
    (s, now)
}

fn bench(c: &mut Criterion) {
    let slice = SchedConfig::default().slice_ns;
    let mut g = c.benchmark_group("sched");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
    for n in [4u32, 64, 1024] {
        let (s, mut now) = loaded(n);
        g.bench_with_input(BenchmarkId::new("switch", n), &n, |b, _| {
            b.iter(|| {
                now += slice;
                black_box(s.account(CPU, now));
                black_box(s.pick_next(CPU, now))
            })
        });
        let (s, mut now) = loaded(n);
        g.bench_with_input(BenchmarkId::new("resume", n), &n, |b, _| {
            b.iter(|| {
                now += 1;
                black_box(s.account(CPU, now));
                black_box(s.pick_next(CPU, now))
            })
        });
        let (s, mut now) = loaded(n);
        g.bench_with_input(BenchmarkId::new("block_wake", n), &n, |b, _| {
            b.iter(|| {
                now += 1_000;
                let running = s.current(CPU).unwrap();
                black_box(s.block(running, now, || false).unwrap());
                black_box(s.pick_next(CPU, now));
                black_box(s.wake(running, now))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
