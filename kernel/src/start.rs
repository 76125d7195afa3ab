//! Keel's boot flow after the backend's early set-up: banner, memory, secondary CPUs, the
//! per-CPU hypercall probe, and power-off with a status.

use crate::arch::{Arch, CpuId, CpuOps, ExitStatus, SpaceId, Timer};
use crate::boot::{BootInfo, Options};
use crate::console;
use crate::mm::FramePool;
use crate::selftest;
use crate::version::KEEL_VERSION;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;

/// Frames for guests and translation tables: all free RAM the heap did not take.
pub static FRAME_POOL: FramePool = FramePool::new();

static OPTIONS: Once<Options> = Once::new();
static ONLINE: AtomicU32 = AtomicU32::new(1);
static PROBES_PASSED: AtomicU32 = AtomicU32::new(0);
static PROBES_FAILED: AtomicU32 = AtomicU32::new(0);

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
pub fn primary<A: Arch>(info: BootInfo) -> ! {
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
    log::info!(target: console::TEST, "done pass={passed} fail={} expected={expected}", failed + missing);
    let status = if passed == expected && online { ExitStatus::Success } else { ExitStatus::Failure };
    log::info!("no domains to run yet; powering off");
    A::Cpu::power_off(opts.power_off, status)
}

/// A secondary CPU's path, entered by the backend once the CPU runs at the hypervisor's
/// privilege level with its MMU and vectors set up.
pub fn secondary<A: Arch>(cpu: CpuId) -> ! {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    log::info!("cpu{cpu} online");
    run_probe::<A>(cpu);
    loop {
        A::Cpu::halt();
    }
}

/// Reports a panic and powers off with a failure status.
pub fn panic_power_off<A: Arch>(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!("[PANIC {}] {info}", A::Cpu::current()));
    A::Cpu::power_off(options().power_off, ExitStatus::Failure)
}

fn run_probe<A: Arch>(cpu: CpuId) {
    let name = alloc::format!("hypercall-probe-cpu{cpu}");
    match selftest::hypercall_probe::<A>(&FRAME_POOL, SpaceId(cpu.0 as u16 + 1)) {
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
