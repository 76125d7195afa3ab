//! Programs about vCPUs: starting a second one, its start state, doorbells, the runstate area.

use super::*;

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

/// Sets its own upcall flag and blocks, which returns at once (Xen's "an event is
/// pending"), then registers a runstate area: the area must say running, not runnable,
/// though no other vCPU ran in between.
pub fn runstate_after_a_block_that_returns() -> Vec<u8> {
    let mut img = Image::new();
    img.a.set(15, 1).store(1, 15, 5, 0);
    img.hypercall_ok(SCHED_OP, &[SCHEDOP_BLOCK]);
    img.put(RUNSTATE_REG, &VcpuRegisterRunstateMemoryArea { addr: DATA + RUNSTATE });
    img.hypercall_ok(VCPU_OP, &[VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 0, DATA + RUNSTATE_REG]);
    let fail = img.fail;
    let a = &mut img.a;
    // state (u32 at 0) is RUNSTATE_running (0); `fail` prints what it is.
    a.set(11, DATA + RUNSTATE).load(4, 0, 11, 0).br(Cond::Ne, 0, 6, fail);
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
