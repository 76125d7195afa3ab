//! Keel's boot flow after the backend's early set-up: banner, memory, secondary CPUs, the
//! per-CPU hypercall probe, then the domains the boot device tree describes, run on every
//! CPU until they have all ended, and power-off with a status.

use crate::arch::{Arch, CpuId, CpuOps, ExitStatus, GuestAbi, GuestLoader, SpaceId, Timer};
use crate::boot::{BootInfo, Options};
use crate::config::{self, DomainSet, InitialDefaults, Limits, Severity};
use crate::console;
use crate::domain::MAX_VCPUS;
use crate::hypervisor::Hypervisor;
use crate::mm::{Region, FRAME_POOL};
use crate::run::{build_all, rebuild, reserve_static_ram, Described, DomainEnd, SchedHooks, System};
use crate::sched::{CpuMask, SchedConfig};
use crate::selftest;
use crate::version::KEEL_VERSION;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use spin::Once;

static OPTIONS: Once<Options> = Once::new();
static ONLINE: AtomicU32 = AtomicU32::new(1);
static PROBES_PASSED: AtomicU32 = AtomicU32::new(0);
static PROBES_FAILED: AtomicU32 = AtomicU32::new(0);
/// The CPUs that came online, by index.
static ONLINE_MASK: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// What the secondary CPUs do once their probe ran: wait, run domains, or stop.
static STAGE: AtomicU8 = AtomicU8::new(STAGE_PROBING);
const STAGE_PROBING: u8 = 0;
const STAGE_RUN: u8 = 1;
const STAGE_STOP: u8 = 2;

/// The machine all CPUs run domains on (a `System<'static, A>`).
static MACHINE: Once<&'static (dyn Any + Send + Sync)> = Once::new();
/// What the final report adds to the domains' ends.
static SUMMARY: Once<Summary> = Once::new();

/// The verdicts besides the domains' ends: the probes, and domains that never ran.
#[derive(Clone, Debug)]
struct Summary {
    probes_passed: u32,
    probes_failed: u32,
    probes_expected: u32,
    not_built: Vec<(String, String)>,
    described: u32,
}

/// How long the boot CPU waits for secondaries and their probes.
const WAIT_SECONDS: u64 = 20;

/// Keel's command-line options (defaults until the boot CPU parsed them).
pub fn options() -> Options {
    OPTIONS.get().copied().unwrap_or_default()
}

/// Prints the banner facts every boot shows.
pub fn print_banner<A: Arch>(info: &BootInfo) {
    console::fact("version", KEEL_VERSION);
    console::fact("abi-version", keel_abi::ABI_VERSION);
    console::fact("arch", A::NAME);
    console::fact("loader", info.loader);
    for (key, value) in A::facts() {
        console::fact(key, value);
    }
    console::fact("memory-mib", info.ram_bytes >> 20);
}

/// The boot CPU's path, once the backend has a console, its MMU and exception vectors,
/// and has handed the heap its memory. `info.free_memory` goes to the frame pool.
pub fn primary<A: Arch + GuestAbi + GuestLoader>(info: BootInfo) -> ! {
    let (opts, unknown) = Options::parse(info.cmdline);
    OPTIONS.call_once(|| opts);
    log::set_max_level(opts.log_level.to_filter());
    print_banner::<A>(&info);
    if let Some(word) = unknown {
        log::warn!("ignoring unknown command-line option '{word}'");
    }
    for r in info.free_memory.regions() {
        FRAME_POOL.add(*r);
    }
    mark_online(CpuId(0));
    log::info!("frame pool: {} MiB free", FRAME_POOL.stats().total >> 8);

    let requested = A::Cpu::start_secondaries(secondary::<A>);
    let expected = 1 + requested;
    let online = wait_for::<A>(|| ONLINE.load(Ordering::Acquire) >= expected);
    console::fact("cpus-online", ONLINE.load(Ordering::Acquire));
    if !online {
        log::error!("only {} of {expected} CPUs came online", ONLINE.load(Ordering::Acquire));
    }

    run_probe::<A>(CpuId(0));
    wait_for::<A>(|| PROBES_PASSED.load(Ordering::Acquire) + PROBES_FAILED.load(Ordering::Acquire) >= expected);
    let (passed, failed) = (PROBES_PASSED.load(Ordering::Acquire), PROBES_FAILED.load(Ordering::Acquire));
    let missing = expected.saturating_sub(passed + failed);
    let cpus = ONLINE.load(Ordering::Acquire);
    let mut summary = Summary {
        probes_passed: passed,
        probes_failed: failed + missing,
        probes_expected: expected,
        not_built: Vec::new(),
        described: 0,
    };

    let mut set = read_domains(&info, cpus);
    // Before anything is built: static RAM is never carved up for other domains.
    reserve_static_ram(&FRAME_POOL, &mut set);
    if set.domains.is_empty() {
        log::info!(target: console::TEST, "done pass={passed} fail={} expected={expected}", failed + missing);
        let status = if passed == expected && online { ExitStatus::Success } else { ExitStatus::Failure };
        STAGE.store(STAGE_STOP, Ordering::Release);
        log::info!("no domains to run yet; powering off");
        A::Cpu::power_off(opts.power_off, status)
    }

    let machine = new_machine::<A>();
    let described = build_all(machine, &set);
    summary.described = u32::try_from(described.len()).unwrap_or(u32::MAX);
    summary.not_built =
        described.into_iter().filter_map(|Described { name, result }| result.err().map(|why| (name, why))).collect();
    let summary = SUMMARY.call_once(|| summary);
    if machine.guest_ids().is_empty() {
        STAGE.store(STAGE_STOP, Ordering::Release);
        finish::<A>(summary, &[])
    }
    // keel.timeout counts from here: the domains are built (their kernels decompressed).
    if let Some(s) = options().timeout_s {
        machine.set_deadline(A::Timer::now_ns().saturating_add(s.saturating_mul(1_000_000_000)));
    }
    MACHINE.call_once(|| machine as &'static (dyn Any + Send + Sync));
    STAGE.store(STAGE_RUN, Ordering::Release);
    log::info!("running {} domain(s) on {cpus} CPU(s)", machine.guest_ids().len());
    run_domains::<A>(CpuId(0))
}

/// The domains to build, and every problem logged: those the boot device tree describes
/// (arm64: the firmware's; x86: a DTB module), or without one (x86: Xen's multiboot2
/// GRUB entry), the initial domain from the boot modules.
fn read_domains(info: &BootInfo, cpus: u32) -> DomainSet {
    let boot_modules: Vec<Region> = info.modules().map(|m| m.region).collect();
    let boot_modules = boot_modules.as_slice();
    let (initial, errors) = InitialDefaults::from_cmdline(info.cmdline);
    for e in errors {
        log::warn!("command line: {e}");
    }
    let free_kib = (FRAME_POOL.stats().total as u64) * 4;
    let limits =
        Limits { max_vcpus: MAX_VCPUS, nr_pcpus: cpus, max_memory_kib: free_kib, ram: &[], boot_modules, initial };
    let set = match info.device_tree {
        Some(dtb) => config::parse(dtb, &limits),
        None => {
            let modules: Vec<(Region, &str)> = info.modules().map(|m| (m.region, m.cmdline)).collect();
            if !modules.is_empty() {
                log::info!(
                    "no configuration tree: the initial domain from {} boot module(s), as Xen's dom0",
                    modules.len()
                );
            }
            config::initial_from_modules(&modules, &limits)
        }
    };
    for p in &set.problems {
        match p.severity {
            Severity::Error => log::error!("{}", p.message),
            Severity::Warning => log::warn!("{}", p.message),
        }
    }
    set
}

/// Records that CPU `cpu` came online.
fn mark_online(cpu: CpuId) {
    if let Some(word) = ONLINE_MASK.get(cpu.0 as usize / 64) {
        word.fetch_or(1 << (cpu.0 % 64), Ordering::AcqRel);
    }
}

/// The CPUs that came online.
fn online_cpus() -> CpuMask {
    let ids = (0..256u32).filter(|&c| ONLINE_MASK[c as usize / 64].load(Ordering::Acquire) & (1 << (c % 64)) != 0);
    CpuMask::of(&ids.collect::<Vec<u32>>())
}

/// The scheduler, hooks, hypervisor and machine for the CPUs online; they live until
/// power-off.
fn new_machine<A: Arch + GuestAbi + GuestLoader>() -> &'static System<'static, A> {
    let online = online_cpus();
    let nr = online.iter().last().map_or(1, |c| c.0 as usize + 1);
    let hooks = match SchedHooks::<A>::new(nr, SchedConfig::default(), A::Timer::now_ns) {
        Ok(h) => Box::leak(Box::new(h)),
        Err(e) => panic!("no scheduler for {nr} CPUs: {e:?}"),
    };
    let mut machine = System::new(Hypervisor::new(&FRAME_POOL, hooks), hooks).with_online(online);
    machine = machine
        .with_restarts(options().restarts, rebuild::<A>)
        .with_raw_console(options().raw_console())
        .with_creator(crate::run::serve_create::<A>);
    if options().dom0_store_local {
        machine = machine.with_local_dom0_store();
    }
    Box::leak(Box::new(machine))
}

/// Runs domains on this CPU until they have all ended; the CPU that reaps the last one
/// reports and powers off, the others stop.
fn run_domains<A: Arch>(cpu: CpuId) -> ! {
    let machine = MACHINE.get().and_then(|m| m.downcast_ref::<System<'static, A>>());
    let Some(machine) = machine else { park::<A>() };
    match machine.cpu(cpu).run() {
        Some(ends) => match SUMMARY.get() {
            Some(summary) => finish::<A>(summary, &ends),
            None => park::<A>(),
        },
        None => park::<A>(),
    }
}

/// Prints every domain's verdict and the `[test] done` line, and powers off: success if
/// every probe passed and every domain described was built and powered itself off.
fn finish<A: Arch>(s: &Summary, ends: &[DomainEnd]) -> ! {
    for (name, why) in &s.not_built {
        log::error!(target: console::TEST, "fail domain-{name}: not built: {why}");
    }
    let mut clean = 0;
    for end in ends {
        // Domains created at run time were not promised by the description: their ends
        // are reported, not counted.
        if end.created {
            log::info!("domain {} ({}), created at run time: {}", end.id, end.name, end.describe());
            continue;
        }
        if end.is_clean() {
            clean += 1;
            log::info!(target: console::TEST, "pass domain-{}: {}", end.name, end.describe());
        } else {
            log::error!(target: console::TEST, "fail domain-{}: {}", end.name, end.describe());
        }
    }
    let pass = s.probes_passed + clean;
    let expected = s.probes_expected + s.described;
    let fail = s.probes_failed + (s.described - clean);
    log::info!(target: console::TEST, "done pass={pass} fail={fail} expected={expected}");
    let status = if fail == 0 && pass == expected { ExitStatus::Success } else { ExitStatus::Failure };
    if ends.is_empty() {
        log::info!("no domain could be built; powering off");
    } else {
        // System time since reset (the counter's), for benchmarks under -icount.
        let ms = A::Timer::now_ns() / 1_000_000;
        log::info!("all domains have ended at {}.{:03} s; powering off", ms / 1000, ms % 1000);
    }
    A::Cpu::power_off(options().power_off, status)
}

fn park<A: Arch>() -> ! {
    loop {
        A::Cpu::halt();
    }
}

/// A secondary CPU's path, entered by the backend once the CPU runs at the hypervisor's
/// privilege level with its MMU and vectors set up.
pub fn secondary<A: Arch>(cpu: CpuId) -> ! {
    mark_online(cpu);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    log::info!("cpu{cpu} online");
    run_probe::<A>(cpu);
    loop {
        match STAGE.load(Ordering::Acquire) {
            STAGE_RUN => run_domains::<A>(cpu),
            STAGE_STOP => park::<A>(),
            _ => core::hint::spin_loop(),
        }
    }
}

/// Reports a panic and powers off with a failure status.
pub fn panic_power_off<A: Arch>(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!("[PANIC {}] {info}", A::Cpu::current()));
    A::Cpu::power_off(options().power_off, ExitStatus::Failure)
}

fn run_probe<A: Arch>(cpu: CpuId) {
    let name = alloc::format!("hypercall-probe-cpu{cpu}");
    match selftest::hypercall_probe::<A>(&FRAME_POOL, SpaceId(u16::try_from(cpu.0 + 1).unwrap_or(u16::MAX))) {
        Ok(r) => {
            log::info!(target: console::TEST, "pass {name}: hypercall exit seen, guest resumed with {:#x}, halted", r.answer);
            PROBES_PASSED.fetch_add(1, Ordering::AcqRel);
        }
        Err(e) => {
            log::error!(target: console::TEST, "fail {name}: {e}");
            PROBES_FAILED.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn wait_for<A: Arch>(done: impl Fn() -> bool) -> bool {
    let deadline = A::Timer::now().saturating_add(A::Timer::frequency().saturating_mul(WAIT_SECONDS));
    while !done() {
        if A::Timer::now() >= deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}
