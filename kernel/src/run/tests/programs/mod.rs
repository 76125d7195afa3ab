//! Mock guest programs that use the hypercall ABI as a real guest does.
//!
//! An image is a code page at the start of RAM (the entry), a data page after it with
//! the hypercall argument structs, and an optional second code page (for a secondary
//! vCPU). Registers: `r0..r4` and `r7` belong to hypercalls, `r5` holds the address of
//! shared_info, `r6` is zero, `r8..r15` are the program's.

use crate::mock::{Asm, Cond, Insn, Label, Op, PlatformCall, GUEST_RAM};
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::event::*;
use keel_abi::hypercall::*;
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::sched::*;
use keel_abi::vcpu::{
    VcpuRegisterRunstateMemoryArea, VcpuSetSingleshotTimer, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
    VCPUOP_SET_SINGLESHOT_TIMER,
};
use keel_abi::xen::{DomId, DOMID_SELF, VIRQ_TIMER};
use keel_abi::Errno;
use keel_abi::Wire;

pub const DATA: u64 = GUEST_RAM + 0x1000;
pub const SECOND: u64 = GUEST_RAM + 0x2000;
/// Where guests place shared_info: a hole after their 1 MiB of RAM.
pub const SHARED_INFO: u64 = GUEST_RAM + 0x20_0000;
/// `shared_info.evtchn_pending` in the x86_64 layout the mock uses.
const PENDING: i32 = 2048;
/// `vcpu_info[0].evtchn_pending_sel`.
const PENDING_SEL: i32 = 8;

// Data page offsets.
const PHYSMAP: u64 = 0x00;
const ALLOC_UNBOUND: u64 = 0x20;
const BIND_INTERDOMAIN: u64 = 0x30;
const SEND: u64 = 0x40;
const POWEROFF: u64 = 0x50;
const CRASH: u64 = 0x54;
const REBOOT: u64 = 0x58;
const POLL: u64 = 0x60;
const PORTS: u64 = 0x80;
const SINGLESHOT: u64 = 0x90;
const BIND_VIRQ: u64 = 0xa0;
const RUNSTATE_REG: u64 = 0xb0;
const RUNSTATE: u64 = 0x900;
const FLAG: u64 = 0xc0;
const FLAG2: u64 = 0xc8;
const WATCHDOG: u64 = 0xd0;
const CONSOLE: u64 = 0x100;
/// Two mock `VCPUOP_initialise` contexts (program counter, r0), 16 bytes each.
const CONTEXT: u64 = 0xe0;

/// A guest image under construction.
pub struct Image {
    pub a: Asm,
    pub second: Asm,
    data: Vec<u8>,
    pub(super) fail: Label,
    prefix_len: usize,
}

impl Image {
    /// An image whose program starts by setting `r5`/`r6` and mapping shared_info.
    pub fn new() -> Self {
        let mut a = Asm::new();
        let fail = a.label();
        let mut img = Image { a, second: Asm::new(), data: vec![0; 0x1000], fail, prefix_len: 0 };
        img.put(
            PHYSMAP,
            &XenAddToPhysmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_SHARED_INFO,
                idx: 0,
                gpfn: SHARED_INFO >> 12,
            },
        );
        img.put(POWEROFF, &SchedShutdown { reason: SHUTDOWN_POWEROFF });
        img.put(CRASH, &SchedShutdown { reason: SHUTDOWN_CRASH });
        img.a.set(5, SHARED_INFO).set(6, 0);
        img.hypercall_ok(MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, DATA + PHYSMAP]);
        img
    }

    pub fn put<T: Wire>(&mut self, off: u64, v: &T) {
        v.write_bytes(&mut self.data[off as usize..]).unwrap();
    }

    pub fn put_bytes(&mut self, off: u64, bytes: &[u8]) {
        self.data[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
    }

    /// A hypercall whose result must be 0 (else the program fails with it).
    pub fn hypercall_ok(&mut self, nr: u64, args: &[u64]) {
        let fail = self.fail;
        self.a.hypercall(nr, args).br(Cond::Ne, 0, 6, fail);
    }

    /// Waits until event port `r8` is pending and consumes it, the 2-level way: clear the
    /// upcall flag and the selector, test the port's bit, block if it is clear. After a
    /// block, the event upcall interrupt must be asserted (`Upcall` reads 1).
    pub fn wait_port(&mut self) {
        let a = &mut self.a;
        let (wait, got) = (a.here(), a.label());
        a.store(1, 6, 5, 0).store(8, 6, 5, PENDING_SEL);
        // r11 = address of the pending word, r14 = the port's bit, r12 = the word.
        a.set(11, 6).alu(Op::Shr, 11, 8, 11).set(12, 3).alu(Op::Shl, 11, 11, 12);
        a.alu(Op::Add, 11, 11, 5).i(Insn::AddI(11, 11, PENDING));
        a.set(12, 63).alu(Op::And, 12, 8, 12).set(14, 1).alu(Op::Shl, 14, 14, 12);
        a.load(8, 12, 11, 0).alu(Op::And, 15, 12, 14).br(Cond::Ne, 15, 6, got);
        let fail = self.fail;
        self.hypercall_ok(SCHED_OP, &[SCHEDOP_BLOCK]);
        let a = &mut self.a;
        a.i(Insn::Upcall(15)).set(0, 0x0b10c).br(Cond::Eq, 15, 6, fail).jmp(wait);
        a.bind(got).alu(Op::Xor, 12, 12, 14).store(8, 12, 11, 0);
    }

    /// Sends on the port stored by [`Image::set_send_port`].
    pub fn send(&mut self) {
        self.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, DATA + SEND]);
    }

    /// Stores `r8` as the port [`Image::send`] uses.
    pub fn set_send_port(&mut self) {
        self.a.set(11, DATA + SEND).store(4, 8, 11, 0);
    }

    /// Prints `prefix` followed by `reg` in 16 hex digits on the console.
    pub fn print_hex(&mut self, prefix: &str, reg: u8) {
        assert!(prefix.len() < 0x80 && [9, 10, 11, 12, 13].iter().all(|&r| r != reg));
        let at = CONSOLE + 0x100 * (self.prefix_len as u64 % 8);
        self.prefix_len += 1;
        let start = at as usize;
        self.data[start..start + prefix.len()].copy_from_slice(prefix.as_bytes());
        self.data[start + prefix.len() + 16] = b'\n';
        let a = &mut self.a;
        a.set(9, DATA + at + prefix.len() as u64).set(10, 60).set(13, 10);
        let (top, letter, store) = (a.here(), a.label(), a.label());
        a.alu(Op::Shr, 11, reg, 10).set(12, 15).alu(Op::And, 11, 11, 12);
        a.br(Cond::Geu, 11, 13, letter).i(Insn::AddI(11, 11, b'0' as i32)).jmp(store);
        a.bind(letter).i(Insn::AddI(11, 11, b'a' as i32 - 10));
        a.bind(store).store(1, 11, 9, 0).i(Insn::AddI(9, 9, 1));
        let done = a.label();
        a.br(Cond::Eq, 10, 6, done).i(Insn::AddI(10, 10, -4)).jmp(top).bind(done);
        let len = prefix.len() as u64 + 17;
        self.hypercall_ok(CONSOLE_IO, &[0, len, DATA + at]);
    }

    /// Powers the domain off; on failure (any earlier check) prints the failing value
    /// and shuts down with reason crash.
    pub fn finish(mut self) -> Vec<u8> {
        let a = &mut self.a;
        a.hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + POWEROFF]);
        let park = a.here();
        a.i(Insn::Halt).jmp(park);
        let fail = self.fail;
        self.a.bind(fail).i(Insn::Mov(8, 0));
        // Printing may fail too: do not loop back into `fail`.
        self.fail = self.a.label();
        self.print_hex("fail ", 8);
        let a = &mut self.a;
        a.bind(self.fail).hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + CRASH]).jmp(park);
        let mut out = self.a.assemble();
        assert!(out.len() <= 0x1000, "program too large: {} bytes", out.len());
        out.resize(0x1000, 0);
        out.extend_from_slice(&self.data);
        let second = self.second.assemble();
        if !second.is_empty() {
            out.extend_from_slice(&second);
        }
        out
    }
}

/// Domain `peer`'s partner in a ping-pong of `n` round trips: allocates the port `peer`
/// binds to, then answers each event with one, `n` times, and prints its count.
pub fn pong(n: u64, peer: DomId) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: peer, port: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    img.a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4);
    img.set_send_port();
    counted_loop(&mut img, n, false);
    img.finish()
}

/// The other side: binds to port `peer_port` of `peer` (retrying until it exists),
/// sends first, and counts `n` answers.
pub fn ping(n: u64, peer: DomId, peer_port: u32) -> Vec<u8> {
    let mut img = Image::new();
    img.put(
        BIND_INTERDOMAIN,
        &EvtchnBindInterdomain { remote_dom: peer, _pad: [0; 2], remote_port: peer_port, local_port: 0 },
    );
    let a = &mut img.a;
    let (retry, bound) = (a.here(), a.label());
    a.hypercall(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, DATA + BIND_INTERDOMAIN]);
    a.br(Cond::Eq, 0, 6, bound).i(Insn::Yield).jmp(retry).bind(bound);
    a.set(11, DATA + BIND_INTERDOMAIN).load(4, 8, 11, 8);
    img.set_send_port();
    // Binding marks the new port pending: consume that first.
    img.wait_port();
    img.send();
    counted_loop(&mut img, n, true);
    img.finish()
}

/// One side of a ping-pong over the static event channel `port` (connected by the
/// domain builder): the pinger sends first; both count `n` events.
pub fn static_side(n: u64, port: u32, pinger: bool) -> Vec<u8> {
    let mut img = Image::new();
    img.a.set(8, port as u64);
    img.set_send_port();
    if pinger {
        img.send();
    }
    counted_loop(&mut img, n, pinger);
    img.finish()
}

/// `n` times: wait for the port, count, send (a pinger sends only while more are due).
/// Prints `count=` with the count, kept in memory at `FLAG` across the loop.
fn counted_loop(img: &mut Image, n: u64, pinger: bool) {
    let a = &mut img.a;
    a.set(15, DATA + FLAG).store(8, 6, 15, 0);
    let (top, done) = (a.here(), a.label());
    img.wait_port();
    let a = &mut img.a;
    a.set(15, DATA + FLAG).load(8, 14, 15, 0).i(Insn::AddI(14, 14, 1)).store(8, 14, 15, 0);
    if pinger {
        a.set(13, n).br(Cond::Eq, 14, 13, done);
        img.send();
        img.a.jmp(top);
    } else {
        img.send();
        let a = &mut img.a;
        a.set(15, DATA + FLAG).load(8, 14, 15, 0).set(13, n).br(Cond::Ne, 14, 13, top);
    }
    let a = &mut img.a;
    a.bind(done).set(15, DATA + FLAG).load(8, 14, 15, 0);
    img.print_hex("count=", 14);
}

/// Registers its runstate area, yields, and checks on return that the area says it is
/// running; prints the time it spent runnable.
pub fn runstate_after_yield() -> Vec<u8> {
    let mut img = Image::new();
    img.put(RUNSTATE_REG, &VcpuRegisterRunstateMemoryArea { addr: DATA + RUNSTATE });
    img.hypercall_ok(VCPU_OP, &[VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, DATA + RUNSTATE_REG]);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_YIELD]);
    let fail = img.fail;
    let a = &mut img.a;
    // state (u32 at 0) is RUNSTATE_running (0); time[RUNSTATE_runnable] is at 24.
    a.set(11, DATA + RUNSTATE).load(4, 0, 11, 0).br(Cond::Ne, 0, 6, fail).load(8, 14, 11, 24);
    img.print_hex("runnable=", 14);
    img.finish()
}

/// Spins forever without an exit.
pub fn spinner() -> Vec<u8> {
    let mut a = Asm::new();
    let top = a.here();
    a.i(Insn::AddI(8, 8, 1)).jmp(top);
    a.assemble()
}

/// Counts to `n` (three instructions per step), prints the count and powers off.
pub fn worker(n: u64) -> Vec<u8> {
    let mut img = Image::new();
    let a = &mut img.a;
    a.set(8, 0).set(14, n);
    let top = a.here();
    a.i(Insn::AddI(8, 8, 1)).br(Cond::Ne, 8, 14, top);
    img.print_hex("worked=", 8);
    img.finish()
}

/// Reads guest-physical `gpa`, which it does not own.
pub fn wild_load(gpa: u64) -> Vec<u8> {
    let mut a = Asm::new();
    a.set(1, gpa).load(8, 2, 1, 0).i(Insn::Halt);
    a.assemble()
}

/// Polls a port nobody signals with a timeout `ns` ahead; prints how long it waited.
pub fn poll_timeout(ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 });
    img.put(POLL, &SchedPoll { ports: DATA + PORTS, nr_ports: 1, _pad: [0; 4], timeout: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    let a = &mut img.a;
    a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4).set(11, DATA + PORTS).store(4, 8, 11, 0);
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + POLL).store(8, 15, 11, 16);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_POLL, DATA + POLL]);
    img.a.i(Insn::Time(15)).alu(Op::Sub, 14, 15, 14);
    img.print_hex("polled=", 14);
    img.finish()
}

/// Allocates a port for `peer` and polls it with a timeout `ns` ahead; prints how long
/// it waited (the peer signals it long before the timeout).
pub fn poll_signalled(ns: u64, peer: DomId) -> Vec<u8> {
    let mut img = Image::new();
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: peer, port: 0 });
    img.put(POLL, &SchedPoll { ports: DATA + PORTS, nr_ports: 1, _pad: [0; 4], timeout: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    let a = &mut img.a;
    a.set(11, DATA + ALLOC_UNBOUND).load(4, 8, 11, 4).set(11, DATA + PORTS).store(4, 8, 11, 0);
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + POLL).store(8, 15, 11, 16);
    img.a.set(11, DATA + FLAG).store(8, 14, 11, 0);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_POLL, DATA + POLL]);
    let a = &mut img.a;
    a.i(Insn::Time(15)).set(11, DATA + FLAG).load(8, 14, 11, 0).alu(Op::Sub, 14, 15, 14);
    img.print_hex("polled=", 14);
    img.finish()
}

/// Binds port `peer_port` of `peer` (retrying until it exists), spins `delay`
/// iterations, sends once and powers off.
pub fn signaller(peer: DomId, peer_port: u32, delay: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(
        BIND_INTERDOMAIN,
        &EvtchnBindInterdomain { remote_dom: peer, _pad: [0; 2], remote_port: peer_port, local_port: 0 },
    );
    let a = &mut img.a;
    let (retry, bound) = (a.here(), a.label());
    a.hypercall(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_INTERDOMAIN, DATA + BIND_INTERDOMAIN]);
    a.br(Cond::Eq, 0, 6, bound).i(Insn::Yield).jmp(retry).bind(bound);
    a.set(11, DATA + BIND_INTERDOMAIN).load(4, 8, 11, 8).set(14, 0).set(15, delay);
    let spin = a.here();
    a.i(Insn::AddI(14, 14, 1)).br(Cond::Ne, 14, 15, spin);
    img.set_send_port();
    img.send();
    img.finish()
}

/// Binds VIRQ_TIMER, arms the one-shot timer `ns` ahead, waits for the event; prints
/// how long it took.
pub fn singleshot(ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(BIND_VIRQ, &EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: 0, port: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, DATA + BIND_VIRQ]);
    let a = &mut img.a;
    a.set(11, DATA + BIND_VIRQ).load(4, 8, 11, 8);
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + SINGLESHOT).store(8, 15, 11, 0);
    img.put(SINGLESHOT, &VcpuSetSingleshotTimer { timeout_abs_ns: 0, flags: 0, _pad: [0; 4] });
    img.hypercall_ok(VCPU_OP, &[VCPUOP_SET_SINGLESHOT_TIMER, 0, DATA + SINGLESHOT]);
    // Keep the start time across the wait in memory.
    img.a.set(11, DATA + FLAG).store(8, 14, 11, 0);
    img.wait_port();
    let a = &mut img.a;
    a.i(Insn::Time(15)).set(11, DATA + FLAG).load(8, 14, 11, 0).alu(Op::Sub, 14, 15, 14);
    img.print_hex("fired=", 14);
    img.finish()
}

/// vCPU 0 starts vCPU 1 with boot argument `first`, checks the start results of a
/// second start and of a vCPU or entry that does not exist, and waits for vCPU 1 to
/// store its argument. vCPU 1 then turns itself off and vCPU 0 starts it again, afresh,
/// with `second`. Both values are printed; the machine is powered off through the
/// platform call.
pub fn two_vcpus(first: u64, second: u64) -> Vec<u8> {
    let mut img = Image::new();
    let fail = img.fail;
    let a = &mut img.a;
    let cpu_on = Insn::Platform(PlatformCall::CpuOn);
    a.set(1, 1).set(2, SECOND).set(3, first).i(cpu_on).br(Cond::Ne, 0, 6, fail);
    a.set(1, 1).i(cpu_on).set(15, -4i64 as u64).br(Cond::Ne, 0, 15, fail);
    a.set(1, 5).i(cpu_on).set(15, -2i64 as u64).br(Cond::Ne, 0, 15, fail);
    a.set(1, 1).set(2, 0x10).i(cpu_on).set(15, -9i64 as u64).br(Cond::Ne, 0, 15, fail);
    wait_flag(a, first);
    img.print_hex("first=", 14);
    let a = &mut img.a;
    a.set(11, DATA + FLAG2).set(15, 1).store(8, 15, 11, 0);
    let (retry, started) = (a.here(), a.label());
    a.set(1, 1).set(2, SECOND).set(3, second).i(cpu_on).br(Cond::Eq, 0, 6, started);
    // Still on (-4) or still leaving its CPU (-5): ask again.
    let again = a.label();
    a.set(15, -4i64 as u64).br(Cond::Eq, 0, 15, again).set(15, -5i64 as u64).br(Cond::Ne, 0, 15, fail);
    a.bind(again).i(Insn::Yield).jmp(retry).bind(started);
    wait_flag(a, second);
    img.print_hex("second=", 14);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    let s = &mut img.second;
    s.set(6, 0).set(11, DATA + FLAG).store(8, 0, 11, 0);
    let (wait, go) = (s.here(), s.label());
    s.set(11, DATA + FLAG2).load(8, 15, 11, 0).br(Cond::Ne, 15, 6, go).i(Insn::Yield).jmp(wait);
    s.bind(go).i(Insn::Platform(PlatformCall::CpuOff));
    let park = s.here();
    s.i(Insn::Halt).jmp(park);
    img.finish()
}

/// vCPU 0 gives vCPU 1 a start state with `VCPUOP_initialise` (the second code page,
/// r0 = `value`) after a refused one (program counter 0: -EINVAL), checks that a second
/// initialise is refused (-EEXIST), brings it up with `VCPUOP_up` and waits for it to
/// store its r0. Prints `initialised=` with it.
pub fn initialised_vcpu(value: u64) -> Vec<u8> {
    use keel_abi::vcpu::{VCPUOP_INITIALISE, VCPUOP_UP};
    let mut img = Image::new();
    let mut good = [0u8; 16];
    good[..8].copy_from_slice(&SECOND.to_le_bytes());
    good[8..].copy_from_slice(&value.to_le_bytes());
    img.put_bytes(CONTEXT, &good);
    img.put_bytes(CONTEXT + 16, &[0; 16]);
    let fail = img.fail;
    let err = |e: Errno| (-(e.code() as i64)) as u64;
    let a = &mut img.a;
    a.hypercall(VCPU_OP, &[VCPUOP_UP, 1]).set(15, err(Errno::EINVAL)).br(Cond::Ne, 0, 15, fail);
    a.hypercall(VCPU_OP, &[VCPUOP_INITIALISE, 1, DATA + CONTEXT + 16]).br(Cond::Ne, 0, 15, fail);
    img.hypercall_ok(VCPU_OP, &[VCPUOP_INITIALISE, 1, DATA + CONTEXT]);
    let a = &mut img.a;
    a.hypercall(VCPU_OP, &[VCPUOP_INITIALISE, 1, DATA + CONTEXT]);
    a.set(15, err(Errno::EEXIST)).br(Cond::Ne, 0, 15, fail);
    img.hypercall_ok(VCPU_OP, &[VCPUOP_UP, 1]);
    wait_flag(&mut img.a, value);
    img.print_hex("initialised=", 14);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    let s = &mut img.second;
    s.set(11, DATA + FLAG).store(8, 0, 11, 0);
    let park = s.here();
    s.i(Insn::Halt).jmp(park);
    img.finish()
}

/// Yields until `FLAG` holds `value`; leaves it in `r14`.
fn wait_flag(a: &mut Asm, value: u64) {
    let (wait, seen) = (a.here(), a.label());
    a.set(11, DATA + FLAG).load(8, 14, 11, 0).set(15, value).br(Cond::Eq, 14, 15, seen);
    a.i(Insn::Yield).jmp(wait).bind(seen);
}

/// vCPU 0 starts vCPU 1, then rings its doorbell (the mock's virtual interrupt, a
/// `Kick` exit) `n` times, each time waiting for vCPU 1 to count it. vCPU 1 halts
/// between doorbells, so each one must wake it. Prints `rang=` with vCPU 1's count.
pub fn doorbells(n: u64) -> Vec<u8> {
    let mut img = Image::new();
    let fail = img.fail;
    let a = &mut img.a;
    a.set(1, 1).set(2, SECOND).set(3, 0).i(Insn::Platform(PlatformCall::CpuOn)).br(Cond::Ne, 0, 6, fail);
    a.set(8, 0);
    let (ring, done) = (a.here(), a.label());
    a.set(15, n).br(Cond::Eq, 8, 15, done);
    a.set(1, 2).i(Insn::Platform(PlatformCall::Kick)).i(Insn::AddI(8, 8, 1));
    let wait = a.here();
    let next = a.label();
    a.set(11, DATA + FLAG2).load(8, 14, 11, 0).br(Cond::Eq, 14, 8, next).i(Insn::Yield).jmp(wait);
    a.bind(next).jmp(ring).bind(done);
    img.print_hex("rang=", 14);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    let s = &mut img.second;
    s.set(6, 0).set(9, 0).set(11, DATA + FLAG2);
    let top = s.here();
    let nothing = s.label();
    s.i(Insn::Halt).i(Insn::Platform(PlatformCall::Doorbell)).br(Cond::Eq, 0, 6, nothing);
    s.i(Insn::AddI(9, 9, 1)).store(8, 9, 11, 0);
    s.bind(nothing).jmp(top);
    img.finish()
}

/// Halts with its own timer armed `ns` ahead, with nothing else to wake it, three times;
/// prints the shortest time each halt took.
pub fn sleeper(ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    let a = &mut img.a;
    a.set(9, 3).set(13, u64::MAX);
    let (top, keep) = (a.here(), a.label());
    a.i(Insn::Time(8)).set(15, ns).alu(Op::Add, 1, 8, 15).i(Insn::Platform(PlatformCall::HaltUntil));
    a.i(Insn::Time(14)).alu(Op::Sub, 14, 14, 8).br(Cond::Geu, 14, 13, keep).i(Insn::Mov(13, 14)).bind(keep);
    a.i(Insn::AddI(9, 9, -1)).br(Cond::Ne, 9, 6, top).i(Insn::Mov(14, 13));
    img.print_hex("slept=", 14);
    img.a.i(Insn::Platform(PlatformCall::SystemOff));
    img.finish()
}

/// Writes `text` to its emulated console UART byte by byte, then powers off.
pub fn uart_writer(text: &str) -> Vec<u8> {
    let mut img = Image::new();
    for b in text.bytes() {
        img.a.set(1, b as u64).i(Insn::Platform(PlatformCall::UartPut));
    }
    img.finish()
}

/// Creates a watchdog of `timeout_s` seconds (it must get id 1) and `pets` times sleeps
/// `every_ns` (halts with its own timer armed) and pets it, as a guest's watchdog daemon
/// does.
///
/// A guest that hangs (`hang`: after how long) then prints the time of its last pet
/// (`petted=`), sleeps `hang` ns more, prints the time (`spinning=`) and, like a panicked
/// kernel, spins forever on both its vCPUs. Otherwise it destroys the watchdog, checks
/// that id 1 is gone (`-EINVAL`), prints how long it lived (`lived=`) and powers off.
pub fn watchdog(timeout_s: u32, pets: u64, every_ns: u64, hang: Option<u64>) -> Vec<u8> {
    let mut img = Image::new();
    img.put(WATCHDOG, &SchedWatchdog { id: 0, timeout: timeout_s });
    let fail = img.fail;
    let a = &mut img.a;
    a.i(Insn::Time(8)).set(11, DATA + FLAG).store(8, 8, 11, 0);
    a.hypercall(SCHED_OP, &[SCHEDOP_WATCHDOG, DATA + WATCHDOG]).set(15, 1).br(Cond::Ne, 0, 15, fail);
    // The pets name watchdog 1.
    a.set(11, DATA + WATCHDOG).store(4, 0, 11, 0).set(9, pets);
    let (top, done) = (a.here(), a.label());
    a.br(Cond::Eq, 9, 6, done);
    sleep(a, every_ns);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_WATCHDOG, DATA + WATCHDOG]);
    img.a.i(Insn::AddI(9, 9, -1)).jmp(top).bind(done);
    if let Some(after) = hang {
        img.a.i(Insn::Time(14));
        img.print_hex("petted=", 14);
        sleep(&mut img.a, after);
        img.a.i(Insn::Time(14));
        img.print_hex("spinning=", 14);
        let a = &mut img.a;
        a.set(1, 1).set(2, SECOND).set(3, 0).i(Insn::Platform(PlatformCall::CpuOn)).br(Cond::Ne, 0, 6, fail);
        let spin = a.here();
        a.i(Insn::AddI(8, 8, 1)).jmp(spin);
        let s = &mut img.second;
        let spin = s.here();
        s.i(Insn::AddI(8, 8, 1)).jmp(spin);
        return img.finish();
    }
    let a = &mut img.a;
    a.set(11, DATA + WATCHDOG).store(4, 6, 11, 4);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_WATCHDOG, DATA + WATCHDOG]);
    let a = &mut img.a;
    a.hypercall(SCHED_OP, &[SCHEDOP_WATCHDOG, DATA + WATCHDOG]);
    a.set(15, (-(Errno::EINVAL.code() as i64)) as u64).br(Cond::Ne, 0, 15, fail);
    a.i(Insn::Time(14)).set(11, DATA + FLAG).load(8, 8, 11, 0).alu(Op::Sub, 14, 14, 8);
    img.print_hex("lived=", 14);
    img.finish()
}

/// Prints the time it started (`up=`) and asks to reboot.
pub fn rebooter() -> Vec<u8> {
    let mut img = Image::new();
    img.put(REBOOT, &SchedShutdown { reason: SHUTDOWN_REBOOT });
    img.a.i(Insn::Time(14));
    img.print_hex("up=", 14);
    img.a.hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + REBOOT]);
    img.finish()
}

/// Creates a 1 s watchdog, offers port 1 to `peer`, halts with its own timer armed
/// `halt_ns` ahead, prints how long after boot it woke (`woke=`; the peer's event ends
/// the halt early) and then hangs on vCPU 0 without another exit of its own.
pub fn early_wake_then_hang(peer: DomId, halt_ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(WATCHDOG, &SchedWatchdog { id: 0, timeout: 1 });
    img.put(ALLOC_UNBOUND, &EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: peer, port: 0 });
    let fail = img.fail;
    let a = &mut img.a;
    a.hypercall(SCHED_OP, &[SCHEDOP_WATCHDOG, DATA + WATCHDOG]).set(15, 1).br(Cond::Ne, 0, 15, fail);
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_ALLOC_UNBOUND, DATA + ALLOC_UNBOUND]);
    let a = &mut img.a;
    a.i(Insn::Time(8)).set(15, halt_ns).alu(Op::Add, 1, 8, 15).i(Insn::Platform(PlatformCall::HaltUntil));
    a.i(Insn::Time(14));
    img.print_hex("woke=", 14);
    let a = &mut img.a;
    let spin = a.here();
    a.i(Insn::AddI(8, 8, 1)).jmp(spin);
    img.finish()
}

/// Halts with its own timer armed until `ns` from now have passed (uses `r1`, `r14`,
/// `r15`).
fn sleep(a: &mut Asm, ns: u64) {
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 14, 14, 15);
    let again = a.here();
    a.i(Insn::Mov(1, 14)).i(Insn::Platform(PlatformCall::HaltUntil)).i(Insn::Time(15)).br(Cond::Ltu, 15, 14, again);
}

/// Says `ready=` once shared_info is mapped, then makes null hypercalls (`xen_version`,
/// each an exit the run loop's short path follows) until the event upcall is asserted,
/// and prints `seen=1`. Nothing in it blocks: only the run loop's flags can make the
/// level it sees change.
pub fn upcall_spinner() -> Vec<u8> {
    let mut img = Image::new();
    img.a.set(8, 1);
    img.print_hex("ready=", 8);
    let a = &mut img.a;
    let top = a.here();
    a.hypercall(XEN_VERSION, &[0, 0]).i(Insn::Upcall(8)).br(Cond::Eq, 8, 6, top);
    img.print_hex("seen=", 8);
    img.finish()
}

/// Binds VIRQ_TIMER, arms the one-shot timer `ns` ahead, then makes null hypercalls
/// until the upcall is asserted (never blocking), and prints `fired=1`.
pub fn timer_spinner(ns: u64) -> Vec<u8> {
    let mut img = Image::new();
    img.put(BIND_VIRQ, &EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: 0, port: 0 });
    img.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_BIND_VIRQ, DATA + BIND_VIRQ]);
    let a = &mut img.a;
    a.i(Insn::Time(14)).set(15, ns).alu(Op::Add, 15, 15, 14).set(11, DATA + SINGLESHOT).store(8, 15, 11, 0);
    img.put(SINGLESHOT, &VcpuSetSingleshotTimer { timeout_abs_ns: 0, flags: 0, _pad: [0; 4] });
    img.hypercall_ok(VCPU_OP, &[VCPUOP_SET_SINGLESHOT_TIMER, 0, DATA + SINGLESHOT]);
    let a = &mut img.a;
    let top = a.here();
    a.hypercall(XEN_VERSION, &[0, 0]).i(Insn::Upcall(8)).br(Cond::Eq, 8, 6, top);
    img.print_hex("fired=", 8);
    img.finish()
}
