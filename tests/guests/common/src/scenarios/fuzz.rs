//! `keel.test=fuzz [keel.count=N] [keel.seed=S]`: hypercalls with random numbers,
//! commands and arguments. Pointers are random too (a scratch buffer of random bytes, an
//! alias of it, unmapped memory, a hole, zero, anything), and so are the structs they
//! point at, except where Keel would keep writing to the address a struct names later
//! (nested buffers, pages given to Keel, grant-copy frames): those name scratch memory or
//! sacrificial pages, so the guest does not destroy itself and can report. Calls that
//! end or block the domain (shutdown, block, poll, a watchdog that would expire, taking
//! its only vCPU down) are left out. Keel must answer every call and keep running the
//! other domains, and every error must be an errno of the ABI (counted by class).
//!
//! Given the control capability, it fuzzes Keel's control interface too; the sub-ops
//! that would stop or slow the other domains (pause, shutdown, destroy, weight/cap,
//! affinity, console input) name the fuzzer itself or a missing domain.

use crate::hcall::Hv;
use crate::pages::{self, Page};
use crate::{cmdline, ensure, expect_eq, fail, say, Outcome, Platform};
use keel_abi::control::*;
use keel_abi::hypercall::*;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const NUMBERS: [u64; 12] = [
    MEMORY_OP,
    SET_TIMER_OP,
    XEN_VERSION,
    CONSOLE_IO,
    GRANT_TABLE_OP,
    VM_ASSIST,
    VCPU_OP,
    SCHED_OP,
    EVENT_CHANNEL_OP,
    PHYSDEV_OP,
    HVM_OP,
    KEEL_CONTROL_OP,
];

/// What the fuzzer may name.
struct Arena<'a, P: Platform> {
    p: &'a P,
    /// Random bytes for pointer arguments (two pages when they are adjacent).
    scratch: &'static Page,
    /// The page after `scratch` when the two are adjacent.
    scratch2: Option<&'static Page>,
    scratch_len: usize,
    /// Pages the guest gives up: Keel may take, move or write them.
    sacrificial: [u64; 16],
}

impl<P: Platform> Arena<'_, P> {
    /// A pointer argument.
    fn pointer(&self, r: &mut Rng) -> u64 {
        let inside = (self.scratch.va() as u64 + r.below(self.scratch_len as u64 / 2)) & !7;
        match r.below(8) {
            0 => 0,
            1 => self.p.unmapped_va() as u64 + r.below(0x1000),
            2 => self.p.hole().0 + r.below(0x10_0000),
            3 => r.next(),
            4 => self.p.alias(inside as usize).map_or(inside, |a| a as u64),
            _ => inside,
        }
    }

    /// A frame number Keel may keep: a sacrificial page, or a hole.
    fn frame(&self, r: &mut Rng) -> u64 {
        if r.below(4) == 0 {
            (self.p.hole().0 >> 12) + r.below(256)
        } else {
            self.sacrificial[r.below(16) as usize]
        }
    }

    fn fill_random(&self, r: &mut Rng) {
        let mut bytes = [0u8; 4096];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&r.next().to_le_bytes());
        }
        self.scratch.fill(0, &bytes);
    }

    /// Writes `v` at byte `at` of the struct at `ptr`, if `ptr` is scratch memory (in
    /// either page, but not across the two).
    fn patch(&self, ptr: u64, at: u64, v: u64) {
        let base = self.scratch.va() as u64;
        if ptr >= base && ptr.saturating_add(at).saturating_add(8) <= base + self.scratch_len as u64 {
            let off = (ptr - base + at) as usize;
            let page = if off < 4096 { Some(self.scratch) } else { self.scratch2 };
            if let (Some(page), true) = (page, off.is_multiple_of(4) && off % 4096 <= 4096 - 8) {
                page.fill(off % 4096, &v.to_le_bytes());
            }
        }
    }

    /// Whether `ptr` is scratch memory the fuzzer can patch (not an alias of it).
    fn in_scratch(&self, ptr: u64) -> bool {
        let base = self.scratch.va() as u64;
        ptr >= base && ptr.saturating_add(16) <= base + self.scratch_len as u64
    }

    /// Makes the struct(s) a call reads safe to hand to Keel (see the module's doc).
    fn sanitize(&self, r: &mut Rng, number: u64, cmd: u64, args: &mut [u64; 5]) -> bool {
        let scratch = self.scratch.va() as u64;
        if number == KEEL_CONTROL_OP {
            let disruptive = [CTL_PAUSE, CTL_SHUTDOWN, CTL_DESTROY, CTL_SET_SCHED, CTL_SET_AFFINITY, CTL_CONSOLE_WRITE];
            if disruptive.contains(&(cmd as u32)) {
                if !self.in_scratch(args[1]) {
                    return false;
                }
                // The domain id (the struct's first u16): itself (refused), or none.
                let domid =
                    if r.below(2) == 0 && cmd as u32 != CTL_SET_SCHED { 0x7ff0 } else { 0x100 + r.below(0x7000) };
                self.patch(args[1] & !7, 0, r.next() << 16 | domid);
                args[1] &= !7;
            }
            return true;
        }
        match (number, cmd & 0xff) {
            (SCHED_OP, 1 | 2 | 3 | 5 | 6) => return false,
            // remote_shutdown: a control domain's shuts the named domain down; name itself
            // (refused) or a missing one.
            (SCHED_OP, 4) if cmd as u32 == 4 => {
                if !self.in_scratch(args[1]) {
                    return false;
                }
                let domid = if r.below(2) == 0 { 0x7ff0 } else { 0x100 + r.below(0x7000) };
                self.patch(args[1] & !7, 0, r.next() << 16 | domid);
                args[1] &= !7;
            }
            (VCPU_OP, 2) => return false,
            (MEMORY_OP, c) => match c & 0x3f {
                1 | 6 => {
                    // xen_memory_reservation: extent_start @0, nr_extents @8.
                    self.patch(args[1], 0, scratch + 2048);
                    self.patch(args[1], 8, r.below(8));
                    for i in 0..8 {
                        self.patch(scratch + 2048, 8 * i, self.frame(r));
                    }
                }
                7 => self.patch(args[1], 16, self.frame(r)),
                9 => self.patch(args[1], 8, scratch + 2048),
                _ => {}
            },
            (GRANT_TABLE_OP, c) => {
                args[2] = r.below(8);
                let size = [32, 24, 24, 0, 0, 40, 16, 0, 4, 0, 8][(c as usize).min(10)];
                for i in 0..args[2] {
                    let op = args[1] + i * size.max(1);
                    match c {
                        2 => self.patch(op, 16, scratch + 2048),
                        5 => {
                            // Copy sides without `*_gref`: frames of the caller.
                            self.patch(op, 0, self.frame(r));
                            self.patch(op, 16, self.frame(r));
                        }
                        _ => {}
                    }
                }
            }
            (VCPU_OP, 5) => self.patch(args[2], 0, scratch + r.below(1024)),
            (VCPU_OP, 10) => self.patch(args[2], 0, self.frame(r)),
            (EVENT_CHANNEL_OP, 11) => self.patch(args[1], 0, self.frame(r)),
            (EVENT_CHANNEL_OP, 12) => self.patch(args[1], 0, self.frame(r)),
            (CONSOLE_IO, _) => args[1] = r.below(64),
            _ => {}
        }
        true
    }
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let line = p.cmdline();
    let count = cmdline::get_u64(line, "keel.count").unwrap_or(5000);
    let mut r = Rng(cmdline::get_u64(line, "keel.seed").unwrap_or(0x5eed_cafe) | 1);
    let (Some(a), Some(b)) = (pages::alloc(), pages::alloc()) else { fail!("out of guest pages") };
    let scratch_len = if b.va() == a.va() + 4096 { 8192 } else { 4096 };
    let mut sacrificial = [0u64; 16];
    for s in sacrificial.iter_mut() {
        let Some(page) = pages::alloc() else { fail!("out of guest pages") };
        *s = p.gpa(page.va()) >> 12;
    }
    let scratch2 = (scratch_len == 8192).then_some(b);
    let arena = Arena { p, scratch: a, scratch2, scratch_len, sacrificial };
    let hv = Hv(p);
    let (mut ok, mut errors, mut skipped) = (0u64, 0u64, 0u64);
    let (mut control, mut control_ok) = (0u64, 0u64);
    // Errors by errno (index: the code; the last slot: codes Keel's ABI does not name).
    let mut by_errno = [0u64; 129];
    for _ in 0..count {
        let number = match r.below(10) {
            0 => r.below(64),
            1 => r.next(),
            _ => NUMBERS[r.below(NUMBERS.len() as u64) as usize],
        };
        let cmd = if r.below(8) == 0 { r.next() } else { r.below(16) };
        let mut args = [cmd, arena.pointer(&mut r), arena.pointer(&mut r), r.below(64), r.next()];
        if number == VCPU_OP {
            args[1] = r.below(3);
        }
        arena.fill_random(&mut r);
        if !arena.sanitize(&mut r, number, cmd, &mut args) {
            skipped += 1;
            continue;
        }
        let r = hv.raw(number, args);
        if r < 0 {
            errors += 1;
            let known = r >= -128 && keel_abi::Errno::ALL.iter().any(|e| -i64::from(e.code()) == r);
            by_errno[if known { r.unsigned_abs() as usize } else { 128 }] += 1;
        } else {
            ok += 1;
        }
        if number == KEEL_CONTROL_OP {
            control += 1;
            control_ok += u64::from(r >= 0);
        }
    }
    expect_eq!(hv.xen_version(keel_abi::version::XENVER_VERSION, 0), 0x0004_0013, "xen_version after the fuzzing");
    ensure!(errors > 0 && ok > 0, "the calls all failed or all succeeded: {ok} ok, {errors} errors");
    // End whatever partial line random console writes left.
    hv.console_write(b"\n");
    say!(p, "fuzz: {control} control calls ({control_ok} succeeded)");
    let mut classes = crate::console::Text::<240>::new();
    for (code, &n) in by_errno.iter().enumerate().filter(|(_, n)| **n > 0) {
        let name = if code == 128 { "other" } else { crate::hcall::name(-(code as i64)) };
        let _ = core::fmt::Write::write_fmt(&mut classes, format_args!(" {name} {n}"));
    }
    say!(p, "fuzz: errors by class:{}", classes.as_str());
    ensure!(by_errno[128] == 0, "{} results that are no errno of the ABI", by_errno[128]);
    say!(
        p,
        "fuzz: {} hypercalls with random arguments ({ok} succeeded, {errors} failed, {skipped} left out); Keel still answers",
        ok + errors
    );
    Ok(())
}
