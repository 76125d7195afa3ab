//! Races between CPUs reporting the same vCPU's deadline.

use crate::domain::{Domain, Hooks};
use crate::hypervisor::Hypervisor;
use crate::mock::MockArch;
use crate::test_support::{guest, pool};
use alloc::boxed::Box;
use alloc::sync::Arc;
use keel_abi::layout::AARCH64;
use keel_abi::xen::DomId;
use spin::Mutex;
use std::sync::mpsc;
use std::time::Duration;

type Hv = Hypervisor<'static, MockArch>;

/// Hooks that keep the last deadline filed per vCPU 0, and, on the first report, let
/// another CPU set and report a new deadline before this report is filed.
#[derive(Default)]
struct Interleaving {
    filed: Mutex<Option<Option<u64>>>,
    meanwhile: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Hooks for Interleaving {
    fn timer_changed(&self, _d: DomId, _v: u32, t: Option<u64>) {
        let other_cpu = self.meanwhile.lock().take();
        if let Some(other_cpu) = other_cpu {
            other_cpu();
        }
        *self.filed.lock() = Some(t);
    }
}

#[test]
fn a_deadline_set_while_another_cpu_reports_the_old_one_is_never_lost() {
    let hooks: &'static Interleaving = Box::leak(Box::default());
    let hv: &'static Hv = Box::leak(Box::new(Hypervisor::new(pool(), hooks)));
    let d: Arc<Domain<MockArch>> = guest(hv, &AARCH64, 1, 16);
    // CPU 0 clears vCPU 0's device timer (as firing it does); while its report is on its
    // way to the hooks, CPU 1 sets a new deadline and reports it.
    let d1 = d.clone();
    *hooks.meanwhile.lock() = Some(Box::new(move || {
        let (done_tx, done_rx) = mpsc::channel();
        let other = std::thread::spawn(move || {
            hv.set_device_deadline(&d1, 0, Some(5_000_000));
            let _ = done_tx.send(());
        });
        // With the vCPU's lock held across the report (the fix), CPU 1 waits for it and
        // this times out; without it, CPU 1 files its deadline first.
        if done_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            other.join().unwrap();
        } else {
            // Let CPU 1 finish after this report is filed.
            std::thread::spawn(move || other.join().unwrap());
        }
    }));
    hv.set_device_deadline(&d, 0, None);
    // Wait for CPU 1's report, however it went.
    for _ in 0..200 {
        if *hooks.filed.lock() == Some(Some(5_000_000)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*hooks.filed.lock(), Some(Some(5_000_000)), "the later deadline must be the one filed");
}
