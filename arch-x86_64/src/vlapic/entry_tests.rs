//! `Vlapic::begin_entry` never skips an entry with an interrupt to deliver or a timer due,
//! whatever operations come between entries (the contract in `entry.rs`).

use super::*;
use proptest::prelude::*;

/// What may happen between two entries.
#[derive(Clone, Debug)]
enum Op {
    /// Another vCPU (or this one's IPI) requests a vector.
    Raise(u8),
    /// A register write by the guest (TPR, EOI, SVR, the timer, an LVT entry, self-IPI).
    Write(u32, u64),
    /// A CR8 write (VT-x's intercept, SVM's V_TPR).
    Tpr(u8),
    /// Time passes.
    Wait(u64),
    /// An entry; whether the guest can take an interrupt now.
    Enter(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let write = prop_oneof![
        (0u64..=0xff).prop_map(|v| (reg::TPR, v)),
        Just((reg::EOI, 0)),
        prop_oneof![Just(0x1ffu64), Just(0xffu64)].prop_map(|v| (reg::SVR, v)),
        (0x20u64..=0xff).prop_map(|v| (reg::SELF_IPI, v)),
        (0x20u64..=0xff, 0u64..3).prop_map(|(v, mode)| (reg::LVT_TIMER, mode << 17 | v)),
        (0u64..5000).prop_map(|v| (reg::TIMER_INITIAL, v)),
        (0u64..20_000).prop_map(|v| (reg::TSC_DEADLINE, v)),
    ];
    prop_oneof![
        (0x10u8..=0xff).prop_map(Op::Raise),
        write.prop_map(|(i, v)| Op::Write(i, v)),
        (0u8..16).prop_map(Op::Tpr),
        (0u64..3000).prop_map(Op::Wait),
        any::<bool>().prop_map(Op::Enter),
        any::<bool>().prop_map(Op::Enter),
    ]
}

/// One entry as the backends make it (`vcpu::interrupts::prepare_entry`): false if
/// `begin_entry` said there was nothing to do.
fn enter(l: &mut Vlapic, irr: &Irr, shared: &Shared, now: u64, interruptible: bool) -> bool {
    if l.begin_entry(irr, now, false).is_none() {
        return false;
    }
    l.publish(shared);
    match l.deliverable(irr) {
        Some(v) if interruptible => {
            l.accept(irr, v);
            l.publish(shared);
            l.unsettled();
        }
        Some(_) => l.unsettled(),
        None => {}
    }
    true
}

proptest! {
    #[test]
    fn a_skipped_entry_had_nothing_to_deliver(ops in proptest::collection::vec(op(), 1..120)) {
        let (mut l, shared) = (Vlapic::new(0), Shared::new());
        let irr = &shared.irr;
        let base = l.base();
        prop_assert!(l.write_base(base | BASE_X2APIC, irr));
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Raise(v) => {
                    irr.raise(v);
                }
                Op::Write(index, value) => {
                    let _ = l.write(irr, index, value, now);
                }
                Op::Tpr(cr8) => l.set_tpr(cr8 << 4),
                Op::Wait(t) => now += t,
                Op::Enter(interruptible) => {
                    let due = l.timer.deadline().is_some_and(|d| d <= now);
                    let deliverable = l.deliverable(irr);
                    if !enter(&mut l, irr, &shared, now, interruptible) {
                        prop_assert!(!due, "an entry skipped a due timer");
                        prop_assert_eq!(deliverable, None, "an entry skipped a deliverable vector");
                        // What other CPUs read to decide a wake-up is what it would be.
                        let fresh = Shared::new();
                        l.publish(&fresh);
                        prop_assert_eq!(
                            (shared.priority.load(Ordering::Relaxed), shared.deadline.load(Ordering::Relaxed)),
                            (fresh.priority.load(Ordering::Relaxed), fresh.deadline.load(Ordering::Relaxed)),
                            "a skipped entry left a stale published priority or deadline"
                        );
                    }
                }
            }
        }
        // However it ended, two entries that can take interrupts drain what is
        // deliverable, one vector each, without a skip in between.
        while l.deliverable(irr).is_some() {
            prop_assert!(enter(&mut l, irr, &shared, now, true), "an entry skipped a deliverable vector");
        }
    }
}

#[test]
fn nothing_changed_nothing_to_do() {
    let (mut l, irr) = (Vlapic::new(0), Irr::new());
    assert!(l.begin_entry(&irr, 0, false).is_some(), "a new APIC is evaluated once");
    assert!(l.begin_entry(&irr, 0, false).is_none());
    assert!(l.begin_entry(&irr, 0, true).is_some(), "forced");
    irr.raise(0x40);
    assert!(l.begin_entry(&irr, 0, false).is_some(), "a request marks");
    assert!(l.begin_entry(&irr, 0, false).is_none());
}
