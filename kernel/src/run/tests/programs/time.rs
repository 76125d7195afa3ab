//! Programs about time: one-shot timers, sleeps, watchdogs, timers under a spinning guest.

use super::*;

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
