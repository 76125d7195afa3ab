//! The mock virtual CPU: an interpreter of [`Insn`] whose memory accesses go through
//! the domain's stage-2 tables, with the life cycle real backends have (load on a CPU,
//! run, put) checked by assertions.

use super::isa::{Insn, PlatformCall};
use super::{
    sim, walk_torn, MockArch, MockDomain, MockMemory, BREAK_RESULTS, FAST_ANSWERS, FAST_PATH, FLUSHES, LATCH_UPCALL,
};
use crate::arch::{
    CpuId, FastAnswer, FastPath, HostMemory, HypercallArgs, MemType, MemoryAccess, StartResult, UpcallRoute, Vcpu,
    VcpuError, VcpuInit, VcpuTranslation, VmExit,
};
use crate::domain::ShutdownReason;
use crate::mm::{bytes_to_page_end, translate, GuestPhysAddr, PhysAddr, PAGE_SIZE};
use alloc::sync::Arc;
use core::cell::Cell;

/// One translated guest page: `(guest page, host page, may read, write, execute, TLB generation)`.
type TlbEntry = (u64, PhysAddr, [bool; 3], u64);

/// A mock virtual CPU (see [`crate::mock::isa`] for its registers and instructions).
pub struct MockVcpu {
    regs: [u64; 16],
    pc: u64,
    root: PhysAddr,
    domain: Arc<MockDomain>,
    id: u32,
    loaded_on: Option<CpuId>,
    upcall: bool,
    route: Option<UpcallRoute>,
    tlb: Option<TlbEntry>,
    /// The deadline of the last `HaltUntil`.
    halt_until: Option<u64>,
    /// The access of the last [`VmExit::StageFault`], until the core settles it.
    fault: Option<(GuestPhysAddr, MemoryAccess)>,
    /// An exit to report at the next `run` (a stage-2 fault on a hole).
    report: Option<VmExit>,
}

impl MockVcpu {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn domain(&self) -> &Arc<MockDomain> {
        &self.domain
    }

    /// The upcall level and route the core set before the last entry.
    pub fn upcall(&self) -> (bool, Option<UpcallRoute>) {
        (self.upcall, self.route)
    }

    pub fn reg(&self, r: u8) -> u64 {
        self.regs[r as usize & 15]
    }

    /// The host address of guest `gpa` for `access`, through a one-entry TLB that a
    /// stage-2 flush invalidates.
    fn translate(&mut self, gpa: u64, access: MemoryAccess) -> Result<PhysAddr, GuestPhysAddr> {
        let page = gpa & !(PAGE_SIZE - 1);
        if walk_torn(page) {
            self.tlb = None;
            return Err(GuestPhysAddr(gpa));
        }
        let generation = FLUSHES.with(Cell::get);
        let hit = self.tlb.filter(|t| t.0 == page && t.3 == generation);
        let (host, rights) = match hit {
            Some((_, host, rights, _)) => (host, rights),
            None => match translate::<MockArch>(self.root, GuestPhysAddr(page)) {
                Some((pa, perms, MemType::Normal)) => {
                    let rights = [perms.read, perms.write, perms.execute];
                    self.tlb = Some((page, pa, rights, generation));
                    (pa, rights)
                }
                _ => return Err(GuestPhysAddr(gpa)),
            },
        };
        let allowed = match access {
            MemoryAccess::Read => rights[0],
            MemoryAccess::Write => rights[1],
            MemoryAccess::Execute => rights[2],
        };
        if allowed {
            Ok(PhysAddr(host.0 + gpa % PAGE_SIZE))
        } else {
            Err(GuestPhysAddr(gpa))
        }
    }

    /// Reads or writes guest memory at `gpa`, page by page.
    fn access(&mut self, gpa: u64, buf: &mut [u8], access: MemoryAccess) -> Result<(), VmExit> {
        let mut done = 0;
        while done < buf.len() {
            let a = gpa.wrapping_add(done as u64);
            let n = bytes_to_page_end(a).min(buf.len() - done);
            let pa = self.translate(a, access).map_err(|gpa| {
                self.fault = Some((gpa, access));
                VmExit::StageFault { gpa, access }
            })?;
            match access {
                MemoryAccess::Write => MockMemory::write(pa, &buf[done..done + n]),
                _ => MockMemory::read(pa, &mut buf[done..done + n]),
            }
            done += n;
        }
        Ok(())
    }

    /// Executes one instruction; `Some` is an exit. A stage-2 fault leaves the program
    /// counter at the instruction, which runs again once the core settled the fault.
    fn step(&mut self) -> Option<VmExit> {
        let at = self.pc;
        let exit = self.execute();
        if matches!(exit, Some(VmExit::StageFault { .. })) {
            self.pc = at;
        }
        exit
    }

    fn execute(&mut self) -> Option<VmExit> {
        let mut op = [0u8; 10];
        if let Err(e) = self.access(self.pc, &mut op[..1], MemoryAccess::Execute) {
            return Some(e);
        }
        let len = Insn::length(op[0]);
        if let Err(e) = self.access(self.pc, &mut op[..len], MemoryAccess::Execute) {
            return Some(e);
        }
        sim::advance(sim::INSN_NS);
        let Some(insn) = Insn::decode(&op[..len]) else { return Some(VmExit::GuestCrash) };
        self.pc = self.pc.wrapping_add(len as u64);
        let r = |x: u8| x as usize & 15;
        match insn {
            Insn::Set(d, v) => self.regs[r(d)] = v,
            Insn::Mov(d, s) => self.regs[r(d)] = self.regs[r(s)],
            Insn::Hypercall => return Some(VmExit::Hypercall),
            Insn::Halt => return Some(VmExit::Halt),
            Insn::Yield => return Some(VmExit::Yield),
            Insn::Load { width, rd, base, off } => {
                let mut b = [0u8; 8];
                let at = self.regs[r(base)].wrapping_add(off as i64 as u64);
                if let Err(e) = self.access(at, &mut b[..width as usize], MemoryAccess::Read) {
                    return Some(e);
                }
                self.regs[r(rd)] = u64::from_le_bytes(b);
            }
            Insn::Store { width, rs, base, off } => {
                let mut b = self.regs[r(rs)].to_le_bytes();
                let at = self.regs[r(base)].wrapping_add(off as i64 as u64);
                if let Err(e) = self.access(at, &mut b[..width as usize], MemoryAccess::Write) {
                    return Some(e);
                }
            }
            Insn::Alu(op, d, a, b) => self.regs[r(d)] = op.apply(self.regs[r(a)], self.regs[r(b)]),
            Insn::AddI(d, a, imm) => self.regs[r(d)] = self.regs[r(a)].wrapping_add(imm as i64 as u64),
            Insn::Branch(c, a, b, off) => {
                if c.holds(self.regs[r(a)], self.regs[r(b)]) {
                    self.pc = self.pc.wrapping_add(off as i64 as u64);
                }
            }
            Insn::Jump(off) => self.pc = self.pc.wrapping_add(off as i64 as u64),
            Insn::Time(d) => self.regs[r(d)] = sim::read_clock(),
            Insn::Upcall(d) => {
                self.regs[r(d)] = self.upcall as u64;
                // Reading the asserted line stands for taking the upcall interrupt: a
                // latching vCPU reports it, and the core reads the level again.
                if self.upcall && LATCH_UPCALL.with(Cell::get) {
                    return Some(VmExit::UpcallAck);
                }
            }
            Insn::Platform(PlatformCall::Doorbell) => self.regs[0] = self.domain.take_doorbell(self.id) as u64,
            Insn::Platform(PlatformCall::HaltUntil) => {
                self.halt_until = Some(self.regs[1]);
                return Some(VmExit::Halt);
            }
            Insn::Platform(call) => return Some(self.platform(call)),
        }
        None
    }

    fn platform(&self, call: PlatformCall) -> VmExit {
        match call {
            PlatformCall::CpuOn => VmExit::StartVcpu {
                target: u32::try_from(self.regs[1]).unwrap_or(u32::MAX),
                entry: GuestPhysAddr(self.regs[2]),
                arg: self.regs[3],
            },
            PlatformCall::CpuOff => VmExit::StopVcpu,
            PlatformCall::SystemOff => VmExit::Shutdown(ShutdownReason::Poweroff),
            PlatformCall::SystemReset => VmExit::Shutdown(ShutdownReason::Reboot),
            PlatformCall::Kick => {
                self.domain.ring(self.regs[1]);
                VmExit::Kick { vcpus: self.regs[1] as u128 }
            }
            PlatformCall::UartPut => VmExit::ConsoleOutput((self.regs[1] & 0xff) as u8),
            PlatformCall::Doorbell | PlatformCall::HaltUntil => VmExit::GuestCrash,
            PlatformCall::Timer => {
                let at = self.regs[1];
                self.domain.set_timer(self.id, at);
                VmExit::DeviceTimer { deadline_ns: (at != 0).then_some(at) }
            }
        }
    }
}

impl Vcpu for MockVcpu {
    type Domain = MockDomain;

    /// `VCPUOP_initialise` context: the program counter and r0 (8 bytes each).
    const CONTEXT_SIZE: usize = 16;

    /// A zero program counter is refused (-EINVAL).
    fn check_context(context: &[u8]) -> Result<(), keel_abi::Errno> {
        match context.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())) {
            Some(pc) if pc != 0 => Ok(()),
            _ => Err(keel_abi::Errno::EINVAL),
        }
    }

    fn new(domain: &Arc<MockDomain>, init: &VcpuInit) -> Result<Self, VcpuError> {
        let mut regs = [0; 16];
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let (pc, r0) = match &init.context {
            Some(c) => (word(&c.0[..8]), word(&c.0[8..16])),
            None => (init.entry.0, init.arg),
        };
        regs[0] = r0;
        domain.note_vcpu_created();
        Ok(MockVcpu {
            regs,
            pc,
            root: init.stage2_root,
            domain: domain.clone(),
            id: init.vcpu_id,
            loaded_on: None,
            upcall: false,
            route: None,
            tlb: None,
            halt_until: None,
            fault: None,
            report: None,
        })
    }

    fn load(&mut self) {
        let here = sim::current();
        assert_eq!(self.loaded_on, None, "mock vCPU {} loaded on cpu{here} while still loaded elsewhere", self.id);
        self.loaded_on = Some(here);
        sim::note_load();
    }

    fn put(&mut self) {
        assert_eq!(self.loaded_on, Some(sim::current()), "mock vCPU {} put by a CPU it is not loaded on", self.id);
        self.loaded_on = None;
    }

    /// Runs until an exit, an enabled interrupt pending on this CPU, or the simulation's
    /// horizon (a spurious [`VmExit::Interrupt`]).
    fn run(&mut self) -> VmExit {
        assert_eq!(self.loaded_on, Some(sim::current()), "mock vCPU {} run without being loaded here", self.id);
        self.halt_until = None;
        if let Some(exit) = self.report.take() {
            return exit;
        }
        loop {
            if sim::interrupt_pending() || sim::past_horizon() {
                return VmExit::Interrupt;
            }
            if let Some(exit) = self.step() {
                return exit;
            }
        }
    }

    /// As `run`, answering hypercalls through `fast` as a backend's fast path does (unless
    /// the thread turned it off with [`fast_path`](super::fast_path)).
    fn run_fast(&mut self, fast: &dyn FastPath) -> VmExit {
        loop {
            let exit = self.run();
            if exit != VmExit::Hypercall || !FAST_PATH.with(Cell::get) {
                return exit;
            }
            let translate = VcpuTranslation(&*self);
            let answer = fast.hypercall(&self.hypercall_args(), &translate);
            let (FastAnswer::Resume(value) | FastAnswer::Exit(value)) = answer else { return exit };
            FAST_ANSWERS.with(|n| n.set(n.get() + 1));
            self.set_hypercall_result(value);
            if answer != FastAnswer::Resume(value) {
                return VmExit::Answered;
            }
        }
    }

    fn hypercall_args(&self) -> HypercallArgs {
        let r = &self.regs;
        HypercallArgs { number: r[7], args: [r[0], r[1], r[2], r[3], r[4]], compat: false }
    }

    fn set_hypercall_result(&mut self, value: u64) {
        if !BREAK_RESULTS.with(Cell::get) {
            self.regs[0] = value;
        }
    }

    /// A hole: the domain is crashed (the mock has no device and no abort to give).
    fn settle_stage_fault(&mut self, mapped: bool) {
        if let Some((gpa, access)) = self.fault.take() {
            if !mapped {
                self.report = Some(VmExit::MemoryFault { gpa, access });
            }
        }
    }

    fn set_event_upcall(&mut self, pending: bool, route: UpcallRoute) {
        self.upcall = pending;
        self.route = Some(route);
    }

    /// As the thread chose with [`latch_upcall`](super::latch_upcall) (by default: yes).
    fn latches_upcall(&self) -> bool {
        LATCH_UPCALL.with(Cell::get)
    }

    /// PSCI's numbering: 0 success, -2 invalid parameters, -4 already on, -5 on pending,
    /// -6 internal failure, -9 invalid address.
    fn set_start_result(&mut self, result: StartResult) {
        let code: i64 = match result {
            StartResult::Started => 0,
            StartResult::InvalidTarget => -2,
            StartResult::AlreadyOn => -4,
            StartResult::Pending => -5,
            StartResult::Failed => -6,
            StartResult::InvalidEntry => -9,
        };
        self.regs[0] = code as u64;
    }

    /// The mock CPU has no MMU: virtual addresses are guest-physical.
    fn halt_deadline(&self) -> Option<u64> {
        self.halt_until
    }

    fn translate_gva(&self, gva: u64, _write: bool) -> Option<GuestPhysAddr> {
        Some(GuestPhysAddr(gva))
    }
}
