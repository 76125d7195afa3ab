//! `keel.test=pvconsole [keel.expect=TEXT]`: the Xen PV console Keel serves. The ring
//! page and port come from `HVM_PARAM_CONSOLE_PFN`/`_EVTCHN`; the port reports as
//! interdomain with `DOMID_XEN`. Lines written into the `out` ring (more than the ring
//! holds, so it wraps) come out on Keel's console tagged with the domain, and Keel has
//! consumed them by the time `EVTCHNOP_send` returns. With `keel.expect`, one line of
//! console input must arrive in the `in` ring, announced on the port. With
//! `keel.prompt=1`, the domain then writes a line with terminal escape sequences and a
//! shell-like prompt without a newline, and powers off at once: on a raw console (the
//! domain has input) both reach the terminal as written, the prompt before Keel's next
//! line; prefixed, the escapes show as `.` and the unterminated prompt is not printed.

use crate::cmdline::get;
use crate::console::Text;
use crate::events::{self, hits, wait_hits};
use crate::hcall::{name, Hv};
use crate::{ensure, expect_eq, fail, say, Outcome, Platform};
use core::fmt::Write;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};
use keel_abi::console::*;
use keel_abi::event::{EvtchnPort, EvtchnStatus, EVTCHNOP_SEND, EVTCHNOP_STATUS, EVTCHNSTAT_INTERDOMAIN};
use keel_abi::hvm::{XenHvmParam, HVMOP_GET_PARAM, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use keel_abi::sched::SHUTDOWN_POWEROFF;
use keel_abi::xen::{DOMID_SELF, DOMID_XEN};

/// Lines written through the ring (about 3 KiB: the 2 KiB ring wraps).
const LINES: u32 = 50;

/// The ring page, mapped by the platform.
struct Ring {
    va: usize,
    port: u32,
}

impl Ring {
    fn word(&self, offset: usize) -> *mut u32 {
        (self.va + offset) as *mut u32
    }

    fn load(&self, offset: usize) -> u32 {
        // SAFETY: `va` maps the console ring page (the platform said so); the index words
        // are aligned and shared with Keel, hence volatile.
        unsafe { read_volatile(self.word(offset)) }
    }

    fn store(&self, offset: usize, v: u32) {
        // SAFETY: as for `load`.
        unsafe { write_volatile(self.word(offset), v) }
    }

    /// Writes `bytes` into `out`, sending on the port after each piece; Keel must have
    /// consumed each piece when the send returns.
    fn write<P: Platform>(&self, p: &P, bytes: &[u8]) -> Outcome {
        let mut done = 0;
        while done < bytes.len() {
            let (cons, prod) = (self.load(XENCONS_OUT_CONS), self.load(XENCONS_OUT_PROD));
            let room = XENCONS_OUT_SIZE - prod.wrapping_sub(cons);
            ensure!(room > 0, "the out ring is full although Keel drained it");
            let n = (room as usize).min(bytes.len() - done);
            for (i, &b) in bytes[done..done + n].iter().enumerate() {
                let at = 1024 + (prod.wrapping_add(i as u32) & (XENCONS_OUT_SIZE - 1)) as usize;
                // SAFETY: `at` lies in the page's `out` ring.
                unsafe { write_volatile((self.va + at) as *mut u8, b) };
            }
            fence(Ordering::Release);
            let new = prod.wrapping_add(n as u32);
            self.store(XENCONS_OUT_PROD, new);
            let r = Hv(p).event_op(EVTCHNOP_SEND, &mut EvtchnPort { port: self.port });
            ensure!(r == 0, "send on the console port: {}", name(r));
            expect_eq!(self.load(XENCONS_OUT_CONS), new, "out_cons after the send");
            done += n;
        }
        Ok(())
    }

    /// Takes one byte from `in`, if any.
    fn read_byte(&self) -> Option<u8> {
        let (cons, prod) = (self.load(XENCONS_IN_CONS), self.load(XENCONS_IN_PROD));
        if cons == prod {
            return None;
        }
        fence(Ordering::Acquire);
        let at = (cons & (XENCONS_IN_SIZE - 1)) as usize;
        // SAFETY: `at` lies in the page's `in` ring.
        let b = unsafe { read_volatile((self.va + at) as *const u8) };
        self.store(XENCONS_IN_CONS, cons.wrapping_add(1));
        Some(b)
    }
}

fn param<P: Platform>(p: &P, index: u32) -> Result<u64, crate::Failure> {
    let mut x = XenHvmParam { domid: DOMID_SELF, index, ..Default::default() };
    let r = Hv(p).hvm_op(HVMOP_GET_PARAM, &mut x);
    ensure!(r == 0, "HVMOP_get_param({index}): {}", name(r));
    Ok(x.value)
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let port = param(p, HVM_PARAM_CONSOLE_EVTCHN)? as u32;
    let pfn = param(p, HVM_PARAM_CONSOLE_PFN)?;
    ensure!(port != 0 && pfn != 0, "no PV console: port {port}, pfn {pfn:#x}");
    let mut st = EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() };
    let r = Hv(p).event_op(EVTCHNOP_STATUS, &mut st);
    ensure!(r == 0, "EVTCHNOP_status: {}", name(r));
    expect_eq!((st.status, st.u0), (EVTCHNSTAT_INTERDOMAIN, DOMID_XEN as u32), "console port status");
    let Some(va) = p.phys_to_virt(pfn << 12) else { fail!("the platform cannot reach frame {pfn:#x}") };
    say!(p, "pv console: pfn {pfn:#x} port {port}, served by domain {:#x}", st.u0);
    let ring = Ring { va, port };
    ring.write(p, b"pv console: hello through the ring\n")?;
    for i in 0..LINES {
        let mut t: Text<100> = Text::default();
        let _ = writeln!(t, "pv console line {i:02}: {}", "0123456789abcdef".repeat_str(3));
        ring.write(p, t.as_bytes())?;
    }
    if let Some(expect) = get(p.cmdline(), "keel.expect") {
        events::setup_two_level(p)?;
        p.init_interrupts();
        p.enable_interrupts();
        let mut got: Text<100> = Text::default();
        loop {
            let seen = hits(port);
            match ring.read_byte() {
                Some(b'\n') => break,
                Some(b) => {
                    let _ = got.write_char(b as char);
                }
                None => wait_hits(p, port, seen + 1),
            }
        }
        say!(p, "pv console input: {} ({} events)", got.as_str(), hits(port));
        expect_eq!(got.as_str(), expect, "input line");
    }
    if get(p.cmdline(), "keel.prompt").is_some() {
        ring.write(p, b"\x1b[7mreverse\x1b[0m video through the ring\n")?;
        ring.write(p, b"\x1b[1mkeel\x1b[0m$ ")?;
        // Nothing after the prompt: Keel's own line must follow it.
        Hv(p).shutdown(SHUTDOWN_POWEROFF);
        fail!("SCHEDOP_shutdown(poweroff) returned");
    }
    Ok(())
}

/// `str::repeat` without an allocator.
trait RepeatStr {
    fn repeat_str(&self, n: usize) -> Repeat<'_>;
}

impl RepeatStr for str {
    fn repeat_str(&self, n: usize) -> Repeat<'_> {
        Repeat(self, n)
    }
}

struct Repeat<'a>(&'a str, usize);

impl core::fmt::Display for Repeat<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for _ in 0..self.1 {
            f.write_str(self.0)?;
        }
        Ok(())
    }
}
