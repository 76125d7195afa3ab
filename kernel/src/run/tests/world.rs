//! A machine on the mock architecture with several simulated CPUs, domains described by
//! a real dom0less device tree whose kernel modules are mock programs, and a driver that
//! steps the CPUs' run loops in simulated time.

use crate::arch::{CpuId, HostMemory, Timer};
use crate::config::tests::builder::Dtb;
use crate::config::{parse, InitialDefaults, Limits};
use crate::hypervisor::Hypervisor;
use crate::mm::FramePool;
use crate::mm::PhysAddr;
use crate::mock::{sim, MockArch, MockMemory, MockTimer};
use crate::run::{build_all, CpuLoop, Described, DomainEnd, SchedHooks, Step, System};
use crate::sched::{CpuMask, SchedConfig};
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use keel_abi::xen::DomId;

extern crate std;

/// Where the boot loader "placed" module `i` in host memory (outside the frame pool).
const MODULE_BASE: u64 = 0x20_0000_0000;
const MODULE_STRIDE: u64 = 0x10_0000;
/// How far apart the simulated CPUs' clocks may drift (ns), by default.
const QUANTUM: u64 = 1_000;

std::thread_local! {
    static LINES: RefCell<Vec<(DomId, String)>> = const { RefCell::new(Vec::new()) };
    static RAW: RefCell<Vec<(DomId, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

fn capture(domain: DomId, line: &str) {
    LINES.with(|l| l.borrow_mut().push((domain, line.to_string())));
}

fn capture_raw(domain: DomId, bytes: &[u8]) {
    RAW.with(|r| r.borrow_mut().push((domain, bytes.to_vec())));
}

/// What domain `domain` wrote raw so far, in one piece.
pub fn raw_of(domain: DomId) -> Vec<u8> {
    RAW.with(|r| r.borrow().iter().filter(|(d, _)| *d == domain).flat_map(|(_, b)| b.clone()).collect())
}

/// The console lines domain `domain` wrote so far.
pub fn lines_of(domain: DomId) -> Vec<String> {
    LINES.with(|l| l.borrow().iter().filter(|(d, _)| *d == domain).map(|(_, s)| s.clone()).collect())
}

/// One domain to describe.
pub struct Guest {
    pub name: &'static str,
    pub image: Vec<u8>,
    pub memory_kib: u32,
    pub vcpus: u32,
    /// `hard-affinity` of vCPU 0, e.g. `"0"`.
    pub affinity: Option<&'static str>,
    /// Static event channels: (local port, index of the peer guest, peer's port); list
    /// each channel on both sides.
    pub evtchn: Vec<(u32, usize, u32)>,
}

impl Guest {
    pub fn new(name: &'static str, image: Vec<u8>) -> Self {
        Guest { name, image, memory_kib: 1024, vcpus: 1, affinity: None, evtchn: Vec::new() }
    }
}

/// A dom0less tree describing `guests`, whose images are written to host memory.
pub fn describe(guests: &[Guest]) -> Vec<u8> {
    let mut t = Dtb::new();
    t.cells("#address-cells", &[2]).cells("#size-cells", &[2]).node("chosen");
    t.cells("#address-cells", &[2]).cells("#size-cells", &[2]);
    for (i, g) in guests.iter().enumerate() {
        let at = MODULE_BASE + i as u64 * MODULE_STRIDE;
        MockMemory::write(PhysAddr(at), &g.image);
        t.node(&alloc::format!("dom{i}"));
        t.strs("compatible", &["xen,domain"]).cells("memory", &[0, g.memory_kib]).cells("cpus", &[g.vcpus]);
        t.str("keel,name", g.name).cells("#address-cells", &[2]).cells("#size-cells", &[1]);
        t.node(&alloc::format!("module@{at:x}"));
        t.strs("compatible", &["multiboot,kernel", "multiboot,module"]);
        t.cells("reg", &[(at >> 32) as u32, at as u32, g.image.len() as u32]);
        t.end();
        if let Some(cpus) = g.affinity {
            t.node("vcpu0").strs("compatible", &["xen,vcpu"]).cells("id", &[0]).str("hard-affinity", cpus).end();
        }
        let phandle = |guest: usize, port: u32| 0x100 + guest as u32 * 0x1_0000 + port;
        for &(port, peer, peer_port) in &g.evtchn {
            t.node(&alloc::format!("evtchn@{port}")).strs("compatible", &["xen,evtchn-v1"]);
            t.cells("phandle", &[phandle(i, port)]).cells("xen,evtchn", &[port, phandle(peer, peer_port)]).end();
        }
        t.end();
    }
    t.end();
    t.finish()
}

/// A machine with `cpus` simulated CPUs, and the CPUs' run loops.
pub struct World {
    pub m: &'static System<'static, MockArch>,
    pub pool: &'static FramePool,
    loops: Vec<CpuLoop<'static, 'static, MockArch>>,
    pub report: Option<Vec<DomainEnd>>,
    /// `(cpu, domain)` pairs: which CPUs entered which domains' vCPUs.
    pub ran_on: BTreeSet<(u32, DomId)>,
    /// Steps each CPU spent halted.
    pub idle_steps: Vec<u64>,
    /// How far apart the simulated CPUs' clocks may drift (ns).
    quantum: u64,
}

impl World {
    pub fn new(cpus: usize) -> Self {
        Self::with_online(cpus, CpuMask::ALL)
    }

    /// A machine with `cpus` CPUs that crashes domains still running at system time
    /// `deadline` (ns, `keel.timeout`).
    pub fn with_deadline(cpus: usize, deadline: u64) -> Self {
        Self::build(cpus, CpuMask::ALL, Some(deadline), None, false)
    }

    /// A machine with `cpus` CPUs that builds a domain whose guest reboots again, at
    /// most `limit` times (`keel.restarts`).
    pub fn with_restarts(cpus: usize, limit: u32) -> Self {
        Self::build(cpus, CpuMask::ALL, None, Some((limit, crate::run::rebuild::<MockArch>)), false)
    }

    /// As [`World::with_restarts`], rebuilding with `restarter`.
    pub fn with_restarter(cpus: usize, limit: u32, restarter: crate::run::Restarter<MockArch>) -> Self {
        Self::build(cpus, CpuMask::ALL, None, Some((limit, restarter)), false)
    }

    /// A machine whose scheduler has `cpus` CPUs, of which only `online` run domains.
    pub fn with_online(cpus: usize, online: CpuMask) -> Self {
        Self::build(cpus, online, None, None, false)
    }

    /// A machine whose domain with console input writes raw (`keel.console=raw`).
    pub fn with_raw_console(cpus: usize) -> Self {
        Self::build(cpus, CpuMask::ALL, None, None, true)
    }

    fn build(
        cpus: usize,
        online: CpuMask,
        deadline: Option<u64>,
        restarts: Option<(u32, crate::run::Restarter<MockArch>)>,
        raw_console: bool,
    ) -> Self {
        sim::reset(cpus, 1_000_000);
        LINES.with(|l| l.borrow_mut().clear());
        RAW.with(|r| r.borrow_mut().clear());
        let pool = crate::test_support::pool();
        let hooks = SchedHooks::new(cpus, SchedConfig::default(), MockTimer::now_ns)
            .unwrap()
            .with_console(capture)
            .with_raw_console(capture_raw);
        let hooks: &'static SchedHooks<MockArch> = Box::leak(Box::new(hooks));
        let mut m = System::new(Hypervisor::new(pool, hooks), hooks)
            .with_online(online)
            .with_raw_console(raw_console)
            .with_creator(crate::run::serve_create::<MockArch>);
        if let Some(d) = deadline {
            m = m.with_deadline(d);
        }
        if let Some((limit, restarter)) = restarts {
            m = m.with_restarts(limit, restarter);
        }
        let m: &'static System<'static, MockArch> = Box::leak(Box::new(m));
        let loops = (0..cpus as u32)
            .map(|c| {
                sim::set_current(CpuId(c));
                m.cpu(CpuId(c))
            })
            .collect();
        sim::set_current(CpuId(0));
        World { m, pool, loops, report: None, ran_on: BTreeSet::new(), idle_steps: vec![0; cpus], quantum: QUANTUM }
    }

    /// Lets the CPUs' clocks drift `ns` apart (fewer steps: for runs of seconds).
    pub fn with_quantum(mut self, ns: u64) -> Self {
        self.quantum = ns;
        self
    }

    /// Builds the domains `dtb` describes, as the boot CPU does.
    pub fn boot(&self, dtb: &[u8]) -> Vec<Described> {
        self.boot_edited(dtb, |_| {})
    }

    /// [`World::boot`], with the parsed description changed by `edit` first.
    pub fn boot_edited(&self, dtb: &[u8], edit: impl FnOnce(&mut crate::config::DomainSet)) -> Vec<Described> {
        let limits = Limits {
            max_vcpus: 8,
            nr_pcpus: self.loops.len() as u32,
            max_memory_kib: 1 << 20,
            ram: &[],
            boot_modules: &[],
            initial: InitialDefaults::default(),
        };
        let mut set = parse(dtb, &limits);
        assert!(set.problems.is_empty(), "{:#?}", set.problems);
        edit(&mut set);
        sim::set_current(CpuId(0));
        build_all(self.m, &set)
    }

    /// Steps the CPU whose clock is behind the others until `done` holds, every domain
    /// ended, or `limit` ns of simulated time passed. Returns whether it stopped before
    /// the limit.
    pub fn run_until(&mut self, limit: u64, mut done: impl FnMut(&Self) -> bool) -> bool {
        let limit = 1_000_000 + self.elapsed() + limit;
        loop {
            if done(self) || self.report.is_some() {
                return true;
            }
            let n = self.loops.len();
            let c = (0..n).min_by_key(|&c| sim::now_of(CpuId(c as u32))).unwrap();
            let others = (0..n).filter(|&o| o != c).map(|o| sim::now_of(CpuId(o as u32))).min();
            let here = sim::now_of(CpuId(c as u32));
            if here > limit {
                return false;
            }
            sim::set_current(CpuId(c as u32));
            sim::set_horizon(others.unwrap_or(here).max(here) + self.quantum);
            match self.loops[c].step() {
                Step::Finished(Some(report)) => self.report = Some(report),
                Step::Idle => self.idle_steps[c] += 1,
                Step::Ran => {
                    if let Some(k) = self.loops[c].current() {
                        self.ran_on.insert((c as u32, k.domain));
                    }
                }
                _ => {}
            }
        }
    }

    /// Runs until every domain ended (or `limit`); returns their ends.
    pub fn run(&mut self, limit: u64) -> Vec<DomainEnd> {
        assert!(self.run_until(limit, |_| false), "domains still running after {limit} ns: {:?}", self.m.guest_ids());
        self.report.clone().unwrap_or_default()
    }

    /// Simulated time since the start (the slowest CPU's clock).
    pub fn elapsed(&self) -> u64 {
        (0..self.loops.len()).map(|c| sim::now_of(CpuId(c as u32))).min().unwrap_or(0) - 1_000_000
    }
}
