//! Domain life cycles: building, running, ending, isolation.

use super::programs::{self, two_vcpus, wild_load, worker};
use super::world::{describe, lines_of, raw_of, Guest, World};
use crate::arch::CpuId;
use crate::domain::{DomainState, ShutdownReason};
use crate::mock::sim;
use crate::sched::VcpuKey;
use alloc::vec;

extern crate std;

const POWEROFF: DomainState = DomainState::ShutDown(ShutdownReason::Poweroff);

#[test]
fn a_domain_runs_to_its_poweroff_and_everything_is_freed() {
    let mut w = World::new(1);
    let before = w.pool.stats().allocated;
    let built = w.boot(&describe(&[Guest::new("solo", worker(1000))]));
    assert_eq!(built[0].result, Ok(1));
    assert!(w.pool.stats().allocated > before);
    let ends = w.run(50_000_000);
    assert_eq!(ends.len(), 1);
    assert_eq!((ends[0].id, ends[0].name.as_str(), ends[0].state), (1, "solo", POWEROFF));
    assert_eq!(ends[0].to_string(), "domain 1 (solo): shut down (poweroff)");
    assert_eq!(lines_of(1), ["worked=00000000000003e8"]);
    assert_eq!(w.pool.stats().allocated, before);
    assert!(w.m.scheduler().vcpus().is_empty());
}

#[test]
fn vcpus_only_go_to_cpus_that_are_online() {
    let mut w = World::with_online(2, crate::sched::CpuMask::of(&[1]));
    let pinned = Guest { affinity: Some("0"), ..Guest::new("pinned", worker(10)) };
    let built = w.boot(&describe(&[pinned, Guest::new("free", worker(10))]));
    let why = built[0].result.clone().unwrap_err();
    assert!(why.contains("vCPU 0 may only run on CPUs {0}, none of which is online"), "{why}");
    assert_eq!(built[1].result, Ok(1));
    let ends = w.run(10_000_000);
    assert!(ends[0].is_clean());
    assert_eq!(w.ran_on.iter().map(|&(c, _)| c).collect::<alloc::vec::Vec<_>>(), [1]);
}

#[test]
fn a_crashing_domain_takes_down_only_itself() {
    let mut w = World::new(2);
    let before = w.pool.stats().allocated;
    let guests = [
        Guest::new("wild", wild_load(0x9000_0000)),
        Guest::new("undefined", vec![0xff]),
        Guest::new("worker", worker(20_000)),
    ];
    let built = w.boot(&describe(&guests));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let ends = w.run(100_000_000);
    let state = |name: &str| ends.iter().find(|e| e.name == name).map(|e| e.state);
    assert_eq!(state("wild"), Some(DomainState::Crashed));
    assert_eq!(state("undefined"), Some(DomainState::Crashed));
    assert_eq!(state("worker"), Some(POWEROFF));
    assert_eq!(lines_of(3), ["worked=0000000000004e20"]);
    assert_eq!(w.pool.stats().allocated, before);
}

#[test]
fn a_spinning_vcpu_is_preempted_and_does_not_starve_the_other_domain() {
    let mut w = World::new(2);
    let pinned = |name, image| Guest { affinity: Some("0"), ..Guest::new(name, image) };
    // 200 000 steps of 2 instructions: 40 ms of CPU time.
    let built = w.boot(&describe(&[pinned("spin", programs::spinner()), pinned("work", worker(200_000))]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let finished = w.run_until(500_000_000, |w| w.m.ends().iter().any(|e| e.name == "work"));
    assert!(finished, "the worker never finished");
    let elapsed = w.elapsed();
    let spin = w.m.scheduler().info(VcpuKey::new(1, 0)).unwrap();
    assert_eq!(spin.cpu, CpuId(0));
    // The two shared CPU 0 about equally: the worker needed 40 ms, so it took about
    // 80 ms, and the spinner ran about as long as the worker.
    assert!((70_000_000..95_000_000).contains(&elapsed), "worker done after {elapsed} ns");
    assert!(spin.runtime_ns.abs_diff(40_000_000) < 8_000_000, "spinner ran {} ns", spin.runtime_ns);
    assert_eq!(w.m.ends()[0].state, POWEROFF);
    std::eprintln!("spinner vs worker on cpu0: worker done after {elapsed} ns, spinner ran {} ns", spin.runtime_ns);
    // Now end the spinner from outside.
    let d = w.m.hypervisor().domain(1).unwrap();
    w.m.hypervisor().shutdown(&d, DomainState::Crashed);
    drop(d);
    let ends = w.run(10_000_000);
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[1].state, DomainState::Crashed);
    assert_eq!(sim::nr_cpus(), 2);
}

#[test]
fn the_runstate_area_is_rewritten_when_the_vcpu_is_switched_in() {
    let mut w = World::new(1);
    let guests = [Guest::new("spin", programs::spinner()), Guest::new("yielder", programs::runstate_after_yield())];
    w.boot(&describe(&guests));
    let done = w.run_until(100_000_000, |w| w.m.ends().iter().any(|e| e.name == "yielder"));
    assert!(done, "{:?} {:?} {:?}", lines_of(2), w.ran_on, w.m.scheduler().info(VcpuKey::new(2, 0)));
    assert_eq!(w.m.ends()[0].state, POWEROFF);
    let line = lines_of(2).pop().unwrap();
    let runnable = u64::from_str_radix(line.strip_prefix("runnable=").unwrap(), 16).unwrap();
    // The spinner ran at least one slice (4 ms) while the yielder waited.
    assert!(runnable >= 3_900_000, "runnable for {runnable} ns");
}

#[test]
fn a_block_that_returns_at_once_leaves_the_runstate_running() {
    let mut w = World::new(1);
    let guests = [Guest::new("blocker", programs::runstate_after_a_block_that_returns())];
    w.boot(&describe(&guests));
    let done = w.run_until(100_000_000, |w| !w.m.ends().is_empty());
    assert!(done, "{:?}", lines_of(1));
    assert_eq!(w.m.ends()[0].state, POWEROFF, "{:?}", lines_of(1));
}

#[test]
fn an_unexpected_host_interrupt_is_acknowledged_and_masked() {
    use crate::arch::{InterruptController, IrqNumber};
    use crate::mock::MockIrq;
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("solo", worker(1000))]));
    MockIrq::enable(IrqNumber(40));
    sim::raise(CpuId(0), IrqNumber(40));
    let ends = w.run(50_000_000);
    assert!(ends[0].is_clean());
    assert!(sim::eois_of(CpuId(0)) >= 1);
    sim::raise(CpuId(0), IrqNumber(40));
    assert!(!sim::interrupt_pending(), "interrupt 40 is masked now");
}

#[test]
fn a_vcpu_starts_another_which_turns_itself_off_and_is_started_afresh() {
    let mut w = World::new(2);
    let before = w.pool.stats().allocated;
    let built = w.boot(&describe(&[Guest { vcpus: 2, ..Guest::new("pair", two_vcpus(0x1234, 0x5678)) }]));
    assert_eq!(built[0].result, Ok(1));
    let ends = w.run(100_000_000);
    assert_eq!(lines_of(1), ["first=0000000000001234", "second=0000000000005678"]);
    assert_eq!(ends[0].state, POWEROFF);
    assert_eq!(w.pool.stats().allocated, before);
}

/// `VCPUOP_initialise` + `VCPUOP_up`: the vCPU is created in the guest's context when
/// it first runs, on one CPU and on two.
#[test]
fn a_vcpu_initialised_by_hypercall_starts_in_its_context() {
    for cpus in [1, 2] {
        let mut w = World::new(cpus);
        let before = w.pool.stats().allocated;
        let built = w.boot(&describe(&[Guest { vcpus: 2, ..Guest::new("init", programs::initialised_vcpu(0xabcd)) }]));
        assert_eq!(built[0].result, Ok(1));
        let ends = w.run(100_000_000);
        assert_eq!(lines_of(1), ["initialised=000000000000abcd"], "{cpus} CPU(s)");
        assert_eq!(ends[0].state, POWEROFF);
        assert_eq!(w.pool.stats().allocated, before);
    }
}

/// A virtual interrupt for another vCPU (`VmExit::Kick`) wakes it from its halt every
/// time: none of 500 is lost, on one CPU (the halted vCPU must be switched back in) and
/// on two.
#[test]
fn kicks_wake_a_halted_vcpu_every_time() {
    for cpus in [1, 2] {
        let mut w = World::new(cpus);
        let built = w.boot(&describe(&[Guest { vcpus: 2, ..Guest::new("bells", programs::doorbells(500)) }]));
        assert_eq!(built[0].result, Ok(1));
        let ends = w.run(10_000_000_000);
        assert_eq!(ends[0].state, POWEROFF, "{cpus} CPU(s)");
        assert_eq!(lines_of(1), ["rang=00000000000001f4"], "{cpus} CPU(s)");
    }
}

/// A domain that spins forever is crashed at the machine's deadline (`keel.timeout`);
/// the other domain finishes its work before, and the run ends.
#[test]
fn a_spinning_domain_is_crashed_at_the_deadline() {
    let mut w = World::with_deadline(1, 50_000_000);
    let built = w.boot(&describe(&[Guest::new("spinner", programs::spinner()), Guest::new("worker", worker(1000))]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let ends = w.run(1_000_000_000);
    assert_eq!(ends.len(), 2, "{ends:?}");
    let by_name = |n: &str| ends.iter().find(|e| e.name == n).unwrap().state;
    assert_eq!(by_name("worker"), POWEROFF);
    assert_eq!(by_name("spinner"), DomainState::Crashed);
    assert!(w.elapsed() + 1_000_000 >= 50_000_000, "the spinner was crashed only at the deadline");
}

#[test]
fn console_input_goes_to_one_domain_and_three_ctrl_a_move_it() {
    let w = World::new(1);
    let built = w.boot(&describe(&[Guest::new("a", worker(10)), Guest::new("b", worker(10))]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    w.m.console_input(b"to-a\x01\x01");
    w.m.console_input(b"\x01to-b\x01\x01\x01\x01\x01!");
    let input = |id: u16| w.m.guest(id).unwrap().domain.console.lock().peek_input(64);
    assert_eq!(input(1), b"to-a\x01\x01!");
    assert_eq!(input(2), b"to-b");
}

#[test]
fn the_domain_with_input_writes_raw_and_the_others_sanitised_lines() {
    let mut w = World::with_raw_console(1);
    let a = programs::uart_writer("\x1b[1ma\x1b[0m\r\n$ ");
    let b = programs::uart_writer("\x1b[1mb\x1b[0m\r\n$ ");
    let built = w.boot(&describe(&[Guest::new("a", a), Guest::new("b", b)]));
    assert!(built.iter().all(|b| b.result.is_ok()), "{built:?}");
    let raw = |id: u16| w.m.guest(id).unwrap().domain.console.lock().is_raw();
    w.m.console_input(b"x");
    assert_eq!((w.m.raw_focus(), raw(1), raw(2)), (Some(1), true, false), "input went to domain 1");
    w.m.console_input(b"\x01\x01\x01");
    assert_eq!((w.m.raw_focus(), raw(1), raw(2)), (Some(2), false, true), "three Ctrl-A moved the raw output");
    assert!(w.run(10_000_000).iter().all(|e| e.is_clean()));
    assert_eq!(raw_of(2), b"\x1b[1mb\x1b[0m\r\n$ ", "every byte as written, the prompt without newline");
    assert!(lines_of(2).is_empty());
    assert_eq!(lines_of(1), [".[1ma.[0m"], "prefixed, sanitised, the unterminated prompt held back");
    assert!(raw_of(1).is_empty());
}

#[test]
fn without_a_raw_console_every_domain_writes_lines() {
    let mut w = World::new(1);
    let built = w.boot(&describe(&[Guest::new("a", programs::uart_writer("\x1b[1ma\n$ "))]));
    assert_eq!(built[0].result, Ok(1));
    w.m.console_input(b"x");
    assert_eq!(w.m.raw_focus(), None);
    assert!(w.run(10_000_000)[0].is_clean());
    assert_eq!(lines_of(1), [".[1ma"]);
    assert!(raw_of(1).is_empty());
}

#[test]
fn bytes_written_to_an_emulated_uart_become_tagged_lines() {
    let mut w = World::new(1);
    let built = w.boot(&describe(&[Guest::new("uart", programs::uart_writer("one\r\ntwo\npartial"))]));
    assert_eq!(built[0].result, Ok(1));
    assert!(w.run(10_000_000)[0].is_clean());
    assert_eq!(lines_of(1), ["one", "two"]);
}

/// On an architecture whose loader does not pass devices through, a domain with a
/// passthrough fragment is refused by name, nothing of it stays allocated, and the other
/// domain runs.
#[test]
fn passthrough_is_refused_by_name_where_the_loader_has_none() {
    let mut w = World::new(1);
    let before = w.pool.stats().allocated;
    let guests = [Guest::new("devices", worker(1)), Guest::new("plain", worker(10))];
    let built = w.boot_edited(&describe(&guests), |set| {
        if let Some(Ok(d)) = set.domains.get_mut(0) {
            let region = crate::mm::Region::new(0x4a00_0000, 0x1000);
            d.device_tree = Some(crate::config::Module { node: "/chosen/devices/module@4a000000".into(), region });
        }
    });
    let why = built[0].result.clone().unwrap_err();
    assert_eq!(why, "/chosen/devices/module@4a000000: device passthrough is not implemented on this architecture");
    assert_eq!(built[1].result, Ok(1));
    let ends = w.run(10_000_000);
    assert!(ends.len() == 1 && ends[0].is_clean(), "{ends:?}");
    assert_eq!(w.pool.stats().allocated, before);
}

/// A direct-mapped domain runs in its static RAM, seen at the same addresses; when it
/// ends, its RAM is neither freed to the pool nor handed to a domain built later, which
/// gets pool RAM as usual.
#[test]
fn a_direct_mapped_domain_runs_in_its_static_ram_which_stays_reserved() {
    use crate::mm::{PhysAddr, Region};
    let mut w = World::new(1);
    let pool = w.pool;
    let before = pool.stats();
    let mut bank = Region::new(0, 0);
    let built =
        w.boot_edited(&describe(&[Guest::new("direct", worker(100)), Guest::new("plain", worker(10))]), |set| {
            if let Some(Ok(d)) = set.domains.get_mut(0) {
                // Host RAM where the mock guest's programs expect their RAM.
                bank = Region::new(crate::mock::GUEST_RAM, d.memory_kib * 1024);
                pool.add(bank);
                d.direct_map = Some(vec![bank]);
            }
            crate::run::reserve_static_ram(pool, set);
        });
    assert_eq!((built[0].result.clone(), built[1].result.clone()), (Ok(1), Ok(2)));
    assert_eq!(pool.stats().total, before.total, "the bank added to the pool went to the domain alone");
    let d = w.m.hypervisor().domain(1).unwrap();
    for gfn in [bank.start >> 12, (bank.end >> 12) - 1] {
        assert_eq!(d.lookup(gfn).map(|l| l.frame), Some(PhysAddr(gfn << 12)), "gfn {gfn:#x} is 1:1");
    }
    let plain = w.m.hypervisor().domain(2).unwrap();
    let ram = plain.lookup(crate::mock::GUEST_RAM >> 12).unwrap().frame;
    assert!(!pool.is_reserved(ram, 4096), "an ordinary domain's RAM comes from the pool");
    drop((d, plain));
    let ends = w.run(50_000_000);
    assert!(ends.len() == 2 && ends.iter().all(|e| e.is_clean()), "{ends:?}");
    assert_eq!(lines_of(1), ["worked=0000000000000064"]);
    assert_eq!(pool.stats().allocated, before.allocated);
    assert!(pool.is_reserved(PhysAddr(bank.start), bank.size()), "still reserved after the domain ended");
}

/// Static RAM is reserved at boot: the pool never hands a bank out, a domain whose bank
/// is not free pool memory or is another's is refused by name, and the others keep theirs.
#[test]
fn static_ram_is_reserved_at_boot_and_a_bank_that_is_not_free_refuses_its_domain() {
    use crate::config::{parse, InitialDefaults, Limits};
    use crate::mm::{FramePool, PhysAddr, Region, PAGE_SIZE};
    let limits = Limits {
        max_vcpus: 8,
        nr_pcpus: 1,
        max_memory_kib: 1 << 20,
        ram: &[],
        boot_modules: &[],
        initial: InitialDefaults::default(),
    };
    let guests = [
        Guest::new("a", worker(1)),
        Guest::new("b", worker(1)),
        Guest::new("c", worker(1)),
        Guest::new("d", worker(1)),
    ];
    let mut set = parse(&describe(&guests), &limits);
    let bank = |d: &crate::config::DomainConfig, start: u64| vec![Region::new(start, d.memory_kib * 1024)];
    let starts = [Some(0x6000_0000), Some(0x9000_0000), Some(0x6000_0000), None];
    for (entry, start) in set.domains.iter_mut().zip(starts) {
        let Ok(d) = entry else { panic!("{entry:?}") };
        d.direct_map = start.map(|s| bank(d, s));
    }
    let size = set.valid().next().map(|d| d.memory_kib * 1024).unwrap();
    let pool = FramePool::new();
    pool.add(Region::new(0x6000_0000, 0x1000_0000));
    crate::run::reserve_static_ram(&pool, &mut set);
    assert!(set.domains[0].is_ok() && set.domains[3].is_ok());
    let not_free = &set.domains[1].as_ref().unwrap_err().errors[0];
    assert!(not_free.contains("[0x90000000, ") && not_free.contains("is not free RAM"), "{not_free}");
    let taken = &set.domains[2].as_ref().unwrap_err().errors[0];
    assert!(taken.contains("[0x60000000, ") && taken.contains("another domain's static RAM"), "{taken}");
    assert!(pool.is_reserved(PhysAddr(0x6000_0000), size) && !pool.is_reserved(PhysAddr(0x6000_0000 + size), 1));
    assert_eq!(pool.stats().total as u64, (0x1000_0000 - size) / PAGE_SIZE);
    while let Some(a) = pool.alloc(1) {
        assert!(!pool.is_reserved(a, PAGE_SIZE), "the pool handed out static RAM at {a:?}");
    }
}
