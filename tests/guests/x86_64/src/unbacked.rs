//! `keel.test=unbacked`: guest-physical space with nothing behind it (the host's HPET
//! and I/O APIC addresses, the hole below 4 GiB, past the end of RAM, a frame given back
//! with `XENMEM_decrease_reservation`) as Xen shows a PVH domain: every read gives all
//! ones and every write is dropped, whatever instruction makes it — moves of every size
//! and extension, read-modify-write arithmetic with its flags, XCHG, bit tests, string
//! instructions with REP, CMPXCHG, XADD, MOVNTI and MOVBE, (`unbacked_compare`) SETcc,
//! CMPXCHG8B/16B and CMPS/SCAS, and (`unbacked_vector`) MOVD/MOVQ with XMM registers — and an access that straddles RAM and a hole reads and
//! writes the RAM part. An instruction Keel does not emulate gets #GP(0) and the guest
//! goes on.

use crate::platform::ALIAS_BASE;
use crate::traps;
use core::arch::asm;
use keel_abi::memory::{XenMemoryReservation, XENMEM_DECREASE_RESERVATION};
use keel_abi::xen::DOMID_SELF;
use keel_test_guest::hcall::Hv;
use keel_test_guest::{ensure, expect_eq, say, Outcome, Platform};

const CF: u64 = 1;
const ZF: u64 = 1 << 6;
const GP: u8 = 13;
const ONES: u64 = u64::MAX;

core::arch::global_asm!(
    ".global guest_unbacked_push, guest_unbacked_insn, guest_unbacked_resume",
    "guest_unbacked_push:",
    "guest_unbacked_insn:",
    "push qword ptr [rdi]",
    "guest_unbacked_resume:",
    "ret",
);

extern "C" {
    /// `push qword ptr [address]` (an instruction Keel does not emulate: it writes the
    /// stack, whose pointer Keel does not hold at the exit).
    fn guest_unbacked_push(address: u64);
}

/// The flags after `$insn` (with `a` = the address in a register), and the register.
macro_rules! with_flags {
    ($insn:literal, $a:expr, $r:expr) => {{
        let mut r: u64 = $r;
        let flags: u64;
        // SAFETY: the instruction touches only the unbacked address, which Keel emulates.
        unsafe {
            asm!("clc", $insn, "pushfq", "pop {f}", "/* {r} */", a = in(reg) $a, r = inout(reg) r, f = out(reg) flags);
        }
        (flags, r)
    }};
}

/// Loads of every size and extension from `a`: each gives all ones (as wide as the
/// destination takes them); a store there is dropped.
fn loads(a: u64) -> Result<u32, keel_test_guest::Failure> {
    let (q, d, zx, sx): (u64, u64, u64, u64);
    let mut b = 0x1234u64;
    // SAFETY: reads and writes of the unbacked address, which Keel emulates.
    unsafe {
        asm!(
            "mov {q}, [{a}]", "mov {d:e}, [{a}]", "movzx {zx:e}, byte ptr [{a}]",
            "movsx {sx}, word ptr [{a}]", "mov {b:l}, [{a}]",
            a = in(reg) a, q = out(reg) q, d = out(reg) d, zx = out(reg) zx, sx = out(reg) sx,
            b = inout(reg) b, options(nostack, readonly)
        );
        asm!("mov qword ptr [{a}], 0", "mov dword ptr [{a} + 8], 0x5a5a5a5a", a = in(reg) a, options(nostack));
    }
    expect_eq!(q, ONES, "a 64-bit load");
    expect_eq!(d, 0xffff_ffff, "a 32-bit load (upper half cleared)");
    expect_eq!(zx, 0xff, "MOVZX of a byte");
    expect_eq!(sx, ONES, "MOVSX of a word");
    expect_eq!(b, 0x12ff, "a byte load (the rest of the register kept)");
    expect_eq!(read(a), ONES, "a load after a store (the store must be dropped)");
    expect_eq!(read(a + 8), ONES, "a load after an immediate store");
    Ok(5 + 2)
}

fn read(a: u64) -> u64 {
    let v: u64;
    // SAFETY: a read Keel emulates (or of the guest's own RAM).
    unsafe { asm!("mov {}, [{}]", out(reg) v, in(reg) a, options(nostack, readonly)) };
    v
}

/// Read-modify-write instructions on all ones: results and flags as the processor's.
fn arithmetic(a: u64) -> Result<u32, keel_test_guest::Failure> {
    let (f, _) = with_flags!("add dword ptr [{a}], 1", a, 0);
    ensure!(f & (CF | ZF) == CF | ZF, "add [all ones], 1: flags {f:#x}, expected CF and ZF");
    let (f, _) = with_flags!("cmp qword ptr [{a}], -1", a, 0);
    ensure!(f & (CF | ZF) == ZF, "cmp [all ones], -1: flags {f:#x}, expected ZF only");
    let (f, r) = with_flags!("add {r}, [{a}]", a, 1);
    ensure!(r == 0 && f & (CF | ZF) == CF | ZF, "add reg, [all ones]: {r:#x}, flags {f:#x}");
    let (f, r) = with_flags!("or {r:e}, [{a}]", a, 0x1_0000_0000);
    ensure!(r == 0xffff_ffff && f & ZF == 0, "or reg32, [all ones]: {r:#x}, flags {f:#x}");
    let (f, _) = with_flags!("test dword ptr [{a}], 0x80", a, 0);
    ensure!(f & ZF == 0, "test [all ones], 0x80: flags {f:#x}");
    let (f, _) = with_flags!("inc byte ptr [{a}]", a, 0);
    ensure!(f & ZF != 0, "inc byte [all ones]: flags {f:#x}, expected ZF");
    let (_, r) = with_flags!("xchg [{a}], {r}", a, 5);
    expect_eq!(r, ONES, "xchg with all ones");
    let (f, _) = with_flags!("bt dword ptr [{a}], 7", a, 0);
    ensure!(f & CF != 0, "bt [all ones], 7: CF clear");
    let (f, _) = with_flags!("lock btr qword ptr [{a}], 63", a, 0);
    ensure!(f & CF != 0, "lock btr [all ones], 63: CF clear");
    let (f, _) = with_flags!("bts [{a}], {r}", a, 1000);
    ensure!(f & CF != 0, "bts [all ones], reg (bit 1000): CF clear");
    expect_eq!(read(a), ONES, "a load after the read-modify-write instructions");
    Ok(11)
}

/// CMPXCHG (equal and not), XADD, MOVNTI and, where CPUID offers it, MOVBE on all ones
/// (the instructions Linux and the BSDs use on device memory): results and flags as the
/// processor's, stores dropped. Returns how many were checked.
fn exchanges(a: u64) -> Result<u32, keel_test_guest::Failure> {
    let (mut acc, flags): (u64, u64);
    acc = 0xffff_ffff;
    // SAFETY: a CMPXCHG of the unbacked address, which Keel emulates.
    unsafe {
        asm!("lock cmpxchg [{a}], {n:e}", "pushfq", "pop {f}", a = in(reg) a, n = in(reg) 7u64, f = out(reg) flags, inout("rax") acc);
    }
    ensure!(flags & ZF != 0 && acc == 0xffff_ffff, "lock cmpxchg [all ones] (equal): eax {acc:#x}, flags {flags:#x}");
    expect_eq!(read(a), ONES, "a load after a CMPXCHG that stored (the store must be dropped)");
    let (mut acc, flags): (u64, u64);
    acc = 5;
    // SAFETY: as above.
    unsafe {
        asm!("cmpxchg [{a}], {n}", "pushfq", "pop {f}", a = in(reg) a, n = in(reg) 7u64, f = out(reg) flags, inout("rax") acc);
    }
    ensure!(flags & ZF == 0 && acc == ONES, "cmpxchg [all ones] (not equal): rax {acc:#x}, flags {flags:#x}");
    let (f, r) = with_flags!("lock xadd [{a}], {r}", a, 1);
    ensure!(r == ONES && f & (CF | ZF) == CF | ZF, "lock xadd [all ones], 1: {r:#x}, flags {f:#x}");
    expect_eq!(read(a), ONES, "a load after XADD");
    // SAFETY: a non-temporal store to the unbacked address, which Keel drops.
    unsafe { asm!("movnti [{a}], {v}", a = in(reg) a, v = in(reg) 0x1234u64, options(nostack)) };
    expect_eq!(read(a), ONES, "a load after MOVNTI");
    let movbe = core::arch::x86_64::__cpuid(1).ecx & (1 << 22) != 0;
    if !movbe {
        return Ok(4);
    }
    let mut v = 0x1122_3344_5566_7788u64;
    // SAFETY: a MOVBE load and store of the unbacked address (CPUID offers MOVBE).
    unsafe {
        asm!("movbe {v:e}, [{a}]", "movbe [{a}], {v}", a = in(reg) a, v = inout(reg) v, options(nostack));
    }
    expect_eq!(v, 0xffff_ffff, "MOVBE of a 32-bit all ones");
    expect_eq!(read(a), ONES, "a load after a MOVBE store");
    Ok(6)
}

/// MOVS, STOS and LODS with REP between the hole and RAM: more iterations than Keel
/// performs in one exit; reads of the hole give all ones, writes to it vanish.
fn strings(hole: u64, ram: &keel_test_guest::pages::Page) -> Result<u32, keel_test_guest::Failure> {
    let buf = ram.va() as u64;
    let (mut rcx, mut rdi) = (3000u64, hole);
    // SAFETY: fills 24000 bytes of the hole, which Keel drops.
    unsafe { asm!("rep stosq", inout("rcx") rcx, inout("rdi") rdi, in("rax") 0u64, options(nostack)) };
    ensure!(rcx == 0 && rdi == hole + 24000, "rep stosq into the hole: rcx {rcx}, rdi {rdi:#x}");
    expect_eq!(read(hole + 8 * 2999), ONES, "the hole after rep stosq");
    let (mut rcx, mut rsi, mut rdi) = (64u64, hole, buf);
    // SAFETY: copies 64 bytes of the hole into the guest's own page.
    unsafe { asm!("rep movsb", inout("rcx") rcx, inout("rsi") rsi, inout("rdi") rdi, options(nostack)) };
    ensure!(rcx == 0 && rsi == hole + 64 && rdi == buf + 64, "rep movsb from the hole: registers");
    ensure!((0..64).step_by(8).all(|k| ram.load64(k) == ONES), "rep movsb from the hole: RAM did not get all ones");
    ensure!(ram.load64(64) == 0, "rep movsb from the hole wrote past its count");
    let (mut rcx, mut rsi, mut rdi) = (2048u64, buf, hole);
    // SAFETY: copies the guest's page (and what follows it) into the hole, which drops it.
    unsafe { asm!("rep movsq", inout("rcx") rcx, inout("rsi") rsi, inout("rdi") rdi, options(nostack)) };
    ensure!(rcx == 0 && rsi == buf + 16384 && rdi == hole + 16384, "rep movsq into the hole: registers");
    expect_eq!(read(hole), ONES, "the hole after rep movsq");
    let (value, mut rsi): (u64, u64);
    rsi = hole;
    // SAFETY: a load from the hole; DF is clear (the ABI's state) and restored.
    unsafe { asm!("std", "lodsd", "cld", inout("rsi") rsi, out("rax") value, options(nostack)) };
    ensure!(value == 0xffff_ffff && rsi == hole - 4, "std; lodsd from the hole: eax {value:#x}, rsi {rsi:#x}");
    Ok(4)
}

/// A frame of RAM given back to Keel: what was RAM reads all ones, `bt` sets CF (the
/// access Linux made), and 8-byte accesses straddling the page before it and the gap
/// read and write the RAM half only.
fn given_back(p: &impl Platform) -> Result<u64, keel_test_guest::Failure> {
    let (Some(low), Some(high)) = (keel_test_guest::pages::alloc(), keel_test_guest::pages::alloc()) else {
        keel_test_guest::fail!("out of guest pages")
    };
    ensure!(high.va() == low.va() + 4096, "the two pages are not adjacent");
    high.fill(0, &[0x11; 64]);
    let mut gfn = p.gpa(high.va()) >> 12;
    let mut res = XenMemoryReservation {
        extent_start: &raw mut gfn as u64,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
        _pad: [0; 6],
    };
    expect_eq!(Hv(p).memory_op(XENMEM_DECREASE_RESERVATION, &mut res), 1, "decrease_reservation of one frame");
    let h = high.va() as u64;
    expect_eq!(read(h), ONES, "a load from the frame given back");
    let (f, _) = with_flags!("bt dword ptr [{a}], 0", h, 0);
    ensure!(f & CF != 0, "bt on the frame given back: CF clear");
    low.fill(4092, &0x4433_2211u32.to_le_bytes());
    let edge = low.va() as u64 + 4092;
    expect_eq!(read(edge), 0xffff_ffff_4433_2211, "a load straddling RAM and the frame given back");
    // SAFETY: writes the last 4 bytes of the guest's page and 4 dropped bytes.
    unsafe { asm!("mov [{}], {}", in(reg) edge, in(reg) 0xaabb_ccdd_5566_7788u64, options(nostack)) };
    let mut last = [0u8; 4];
    low.read(4092, &mut last);
    expect_eq!(u32::from_le_bytes(last), 0x5566_7788, "RAM half of a store straddling the frame given back");
    expect_eq!(read(h), ONES, "the frame given back after a straddling store");
    Ok(gfn)
}

/// `keel.test=unbacked`.
pub fn run(p: &impl Platform) -> Outcome {
    let (_, ram_end) = p.ram();
    let (hole, _) = p.hole();
    let addresses = [0xfed0_0000, 0xfec0_0000, hole + 0x20_0000, ram_end + 0x10_0000];
    let mut loads_done = 0;
    for a in addresses {
        loads_done += loads(a)?;
    }
    // The same through the alias of the low 4 GiB (another linear address, same frame).
    loads_done += loads(ALIAS_BASE + hole + 0x30_0000)?;
    say!(
        p,
        "unbacked: {loads_done} loads and stores at HPET, I/O APIC, the hole, past RAM and an alias: all ones, stores dropped"
    );
    let ops = arithmetic(hole + 0x40_0000)? + arithmetic(0xfed0_0100)?;
    say!(p, "unbacked: {ops} read-modify-write instructions on all ones: results and flags as the processor's");
    let Some(page) = keel_test_guest::pages::alloc() else { keel_test_guest::fail!("out of guest pages") };
    let n = strings(hole + 0x50_0000, page)?;
    say!(p, "unbacked: {n} string instructions with REP (3000 and 2048 iterations) between the hole and RAM");
    let gfn = given_back(p)?;
    say!(p, "unbacked: frame {gfn:#x} given back reads all ones, bt sets CF; straddling accesses keep the RAM half");
    let n = exchanges(hole + 0x58_0000)? + exchanges(0xfec0_0100)?;
    say!(p, "unbacked: {n} CMPXCHG, XADD, MOVNTI and MOVBE on all ones: results and flags as the processor's, stores dropped");
    let Some(page) = keel_test_guest::pages::alloc() else { keel_test_guest::fail!("out of guest pages") };
    let n = crate::unbacked_compare::run(hole + 0x68_0000, page)?;
    say!(p, "unbacked: {n} SETcc, CMPXCHG8B/16B and CMPS/SCAS with REPE/REPNE on all ones: results and flags as the processor's, stores dropped");
    let n = crate::unbacked_vector::run(hole + 0x70_0000)?;
    say!(p, "unbacked: {n} MOVD/MOVQ between XMM registers and all ones: loads zero-extended, stores dropped");
    let refused = traps::probe_unbacked(|| {
        // SAFETY: an instruction Keel refuses with #GP(0) before it changes anything; the
        // trap handler resumes after it (at the `ret` that the push did not disturb).
        unsafe { guest_unbacked_push(hole + 0x60_0000) }
    });
    ensure!(refused == Err(GP), "push [the hole]: {refused:?}, expected #GP");
    say!(p, "unbacked: push qword [the hole]: #GP (Keel does not emulate it; Xen does); the domain runs on");
    Ok(())
}
