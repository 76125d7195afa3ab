use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

const A: SpaceId = SpaceId(1);
const B: SpaceId = SpaceId(2);

#[test]
fn a_flush_with_nobody_in_guest_mode_kicks_nobody() {
    let gate = FlushGate::<4>::new();
    let g = gate.flush(0, A, |c| panic!("kicked cpu{c}"), || panic!("waited"));
    assert_eq!(g, 1);
    assert_eq!(gate.enter(1, A), 1);
}

#[test]
fn only_other_cpus_running_the_space_before_the_change_are_kicked() {
    let gate = FlushGate::<4>::new();
    gate.enter(1, A); // A at generation 0: must leave
    gate.enter(2, B); // another space: its translations of A are dropped at its next entry of A
    gate.enter(0, A); // the flusher's own slot (it is in host mode when it flushes)
    let mut kicked = vec![];
    gate.flush(
        0,
        A,
        |c| {
            kicked.push(c);
            gate.exit(c);
        },
        || {},
    );
    assert_eq!(kicked, vec![1]);
}

#[test]
fn a_cpu_that_entered_after_the_change_is_not_waited_for() {
    let gate = FlushGate::<2>::new();
    gate.flush(0, A, |_| {}, || {});
    assert_eq!(gate.enter(1, A), 1);
    gate.flush(0, A, |c| assert_eq!(c, 1), || gate.exit(1));
    // Re-entered at the newest generation: nothing to wait for.
    assert_eq!(gate.enter(1, A), 2);
    assert_eq!(gate.flush(0, B, |_| panic!("other space"), || panic!("waited")), 3);
}

#[test]
fn the_waiter_relaxes_until_the_kicked_cpu_exits() {
    let gate = FlushGate::<2>::new();
    gate.enter(1, A);
    let mut looks = 0;
    gate.flush(
        0,
        A,
        |_| {},
        || {
            looks += 1;
            if looks == 3 {
                gate.exit(1);
            }
        },
    );
    assert_eq!(looks, 3);
}

proptest! {
    /// Whatever each CPU runs, a flush returns only when no other CPU runs the space
    /// at an older generation, and it kicks exactly the CPUs that did.
    #[test]
    fn after_a_flush_no_other_cpu_holds_old_translations(
        slots in proptest::collection::vec(proptest::option::of((0u16..3, 0u64..4)), 4),
        me in 0usize..4,
        space in 0u16..3,
        earlier in 0u64..4,
    ) {
        let gate = FlushGate::<4>::new();
        for _ in 0..earlier {
            gate.flush(me, SpaceId(0), |c| gate.exit(c), || {});
        }
        for (cpu, s) in slots.iter().enumerate() {
            gate.exit(cpu);
            if let Some((sp, _)) = s {
                gate.enter(cpu, SpaceId(*sp));
            }
        }
        let expect: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|&(c, s)| c != me && matches!(s, Some((sp, _)) if *sp == space))
            .map(|(c, _)| c)
            .collect();
        let mut kicked = vec![];
        let g = gate.flush(me, SpaceId(space), |c| { kicked.push(c); gate.exit(c); }, || {});
        prop_assert_eq!(kicked, expect);
        for cpu in (0..4).filter(|&c| c != me) {
            prop_assert!(!gate.holds(cpu, SpaceId(space), g));
        }
    }
}

/// Guest CPUs enter and leave `A` on threads while one thread unmaps a frame, flushes
/// and frees it, many times over: a CPU in guest mode never runs with translations from
/// before an unmap whose frame was already freed.
#[test]
fn a_frame_is_never_freed_while_a_cpu_may_still_reach_it() {
    const CPUS: usize = 3;
    const ROUNDS: u64 = 300;
    let gate = Arc::new(FlushGate::<{ CPUS + 1 }>::new());
    // The generation whose flush returned: frames unmapped before it are freed.
    let freed_before = Arc::new(AtomicU64::new(0));
    let kicked: Arc<[AtomicBool; CPUS + 1]> = Arc::new([const { AtomicBool::new(false) }; CPUS + 1]);
    let stop = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    let guests: Vec<_> = (1..=CPUS)
        .map(|cpu| {
            let (gate, freed_before, kicked, stop, entries) =
                (gate.clone(), freed_before.clone(), kicked.clone(), stop.clone(), entries.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    let at = gate.enter(cpu, A);
                    entries.fetch_add(1, SeqCst);
                    // In guest mode with the translations of generation `at` until kicked.
                    for _ in 0..20 {
                        let freed = freed_before.load(SeqCst);
                        assert!(
                            at >= freed,
                            "cpu{cpu} in guest mode at generation {at} after frames unmapped before {freed} were freed"
                        );
                        if kicked[cpu].swap(false, SeqCst) {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    gate.exit(cpu);
                }
            })
        })
        .collect();
    while entries.load(SeqCst) < CPUS {
        std::thread::yield_now();
    }
    let mut kicks = 0;
    for _ in 0..ROUNDS {
        let kick = |c: usize| {
            kicks += 1;
            kicked[c].store(true, SeqCst);
        };
        let g = gate.flush(0, A, kick, std::thread::yield_now);
        // The frame unmapped before generation `g` is freed now.
        freed_before.store(g, SeqCst);
    }
    stop.store(true, SeqCst);
    for g in guests {
        g.join().expect("a guest CPU saw a freed frame");
    }
    assert!(kicks > 0, "no flush found a CPU in guest mode: the test tested nothing");
}
