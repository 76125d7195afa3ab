//! `keel.test=create [keel.cycles=N]`: domains created at run time from a control domain
//! (`docs/control-abi.md` §4a), the test guest's part of what `keelctl create` does in a
//! Linux control domain. The kernel is the domain's own boot module (its ramdisk: a test
//! guest image), handed to Keel from this domain's memory. Each of `N` cycles (default 3)
//! creates a domain `made` (`CTL_CREATE`, `CTL_LOAD` in 1 MiB pieces, `CTL_START`) whose
//! command line makes it spin, waits for its console line, pauses it (its CPU time stops)
//! and unpauses it, destroys it and waits for its id to be gone; Keel's free frames are
//! then what they were before the first cycle (counted once every other domain of the
//! configuration has ended and given its memory back). The first cycle also checks the documented
//! refusals: a duplicate name, a start before the kernel is loaded, loads out of order,
//! more memory than is free, each leaving the free frames as they were.

use super::control::{cpu_time, ctl, list, page, query, settled_cpu_time};
use crate::hcall::{err, name};
use crate::pages::Page;
use crate::scenarios::events::spin;
use crate::{cmdline, ensure, expect_eq, fail, say, Failure, Outcome, Platform};
use keel_abi::control::*;
use keel_abi::Errno;

const MS: u64 = 1_000_000;
/// The created domain's name and command line.
const NAME: &str = "made";
const CMDLINE: &str = "keel.test=spin";
/// RAM of a created domain: the test guest's image declares about 9 MiB.
const MEMORY_KIB: u64 = 16 * 1024;
/// Guest time a created domain has to print its first line (Bochs builds it slowly).
const CONSOLE_WAIT_MS: u64 = 60_000;

fn free_pages<P: Platform>(p: &P) -> Result<u64, Failure> {
    let mut i = CtlPhysInfo { total_pages: 0, free_pages: 0 };
    let r = ctl(p, CTL_PHYSINFO, &mut i);
    ensure!(r == 0, "CTL_PHYSINFO: {}", name(r));
    Ok(i.free_pages)
}

fn request(kernel: &[u8], memory_kib: u64) -> CtlCreate {
    let mut c = CtlCreate {
        weight: 256,
        vcpus: 1,
        cmdline_len: CMDLINE.len() as u32,
        memory_kib,
        kernel_size: kernel.len() as u64,
        cmdline: CMDLINE.as_ptr() as u64,
        ..CtlCreate::ZERO
    };
    c.name[..NAME.len()].copy_from_slice(NAME.as_bytes());
    c
}

/// `CTL_LOAD` of `bytes[from..]` as the kernel, in pieces of at most `CTL_LOAD_MAX`.
fn load<P: Platform>(p: &P, id: u16, kernel: &[u8], from: usize) -> Outcome {
    let mut at = from;
    while at < kernel.len() {
        let len = (kernel.len() - at).min(CTL_LOAD_MAX as usize);
        let mut l = CtlLoad {
            domid: id,
            module: CTL_MODULE_KERNEL,
            _pad: 0,
            len: len as u32,
            offset: at as u64,
            buffer: kernel[at..].as_ptr() as u64,
        };
        let r = ctl(p, CTL_LOAD, &mut l);
        ensure!(r == 0, "CTL_LOAD of {len} bytes at {at}: {}", name(r));
        at += len;
    }
    Ok(())
}

/// A domain being built from `kernel`: its id.
fn create<P: Platform>(p: &P, kernel: &[u8]) -> Result<u16, Failure> {
    let mut c = request(kernel, MEMORY_KIB);
    let r = ctl(p, CTL_CREATE, &mut c);
    ensure!(r > 0, "CTL_CREATE: {}", name(r));
    Ok(r as u16)
}

fn start<P: Platform>(p: &P, id: u16) -> Outcome {
    let mut s = CtlStart { domid: id, _pad: [0; 2], flags: 0 };
    let r = ctl(p, CTL_START, &mut s);
    ensure!(r == 0, "CTL_START of d{id}: {}", name(r));
    Ok(())
}

/// Waits (guest time) until d`id`'s console output holds `marker`; the bytes read.
fn await_console<P: Platform>(p: &P, id: u16, out: &Page, marker: &str) -> Result<i64, Failure> {
    for _ in 0..CONSOLE_WAIT_MS / 10 {
        let mut c = CtlConsole { domid: id, _pad: [0; 2], len: 4096, buffer: out.va() as u64, offset: 0 };
        let got = ctl(p, CTL_CONSOLE_READ, &mut c);
        ensure!(got >= 0, "CTL_CONSOLE_READ of d{id}: {}", name(got));
        let mut text = [0u8; 512];
        let shown = (got as usize).min(text.len());
        out.read(0, &mut text[..shown]);
        let text = core::str::from_utf8(&text[..shown]).unwrap_or("");
        if text.contains(marker) {
            return Ok(got);
        }
        spin(p, 10 * MS);
    }
    fail!("d{id} printed no `{marker}` in {CONSOLE_WAIT_MS} ms")
}

/// Pauses d`id`: once its vCPU has left its CPU (its CPU time is settled), its CPU time
/// stops for 100 ms; unpauses it: its CPU time grows again.
fn pause_unpause<P: Platform>(p: &P, id: u16) -> Outcome {
    let mut d = CtlDomain { domid: id, _pad: [0; 6] };
    expect_eq!(ctl(p, CTL_PAUSE, &mut d), 0, "CTL_PAUSE");
    expect_eq!(query(p, id).map(|i| i.state), Ok(CTL_STATE_PAUSED), "state after CTL_PAUSE");
    let t0 = settled_cpu_time(p, id)?;
    spin(p, 100 * MS);
    expect_eq!(cpu_time(p, id)?, t0, "CPU time while paused");
    expect_eq!(ctl(p, CTL_UNPAUSE, &mut d), 0, "CTL_UNPAUSE");
    for _ in 0..1000 {
        if cpu_time(p, id)? > t0 {
            return Ok(());
        }
        spin(p, 10 * MS);
    }
    fail!("d{id} got no CPU time in 10 s after CTL_UNPAUSE")
}

/// Destroys d`id` and waits (guest time) until its id is gone: Keel lists it as dying until
/// its memory is back in the pool.
fn destroy<P: Platform>(p: &P, id: u16) -> Outcome {
    let mut d = CtlDomain { domid: id, _pad: [0; 6] };
    expect_eq!(ctl(p, CTL_DESTROY, &mut d), 0, "CTL_DESTROY");
    for _ in 0..10_000 {
        match query(p, id) {
            Err(e) if e == err(Errno::ESRCH) => return Ok(()),
            Err(e) => fail!("query of d{id} being destroyed: {}", name(e)),
            Ok(_) => spin(p, MS),
        }
    }
    fail!("d{id} still there 10 s after CTL_DESTROY")
}

/// The refusals of the first cycle, while d`live` (named `made`) runs.
fn refusals<P: Platform>(p: &P, kernel: &[u8], live: u16, free: u64) -> Outcome {
    let mut c = request(kernel, MEMORY_KIB);
    expect_eq!(ctl(p, CTL_CREATE, &mut c), err(Errno::EEXIST), "CTL_CREATE of a second `made`");
    let mut c = request(kernel, MEMORY_KIB);
    c.name = [0; CTL_CREATE_NAME_LEN];
    c.name[..5].copy_from_slice(b"other");
    c.memory_kib = 1 << 40;
    expect_eq!(ctl(p, CTL_CREATE, &mut c), err(Errno::ENOMEM), "CTL_CREATE of 1 PiB");
    c.memory_kib = MEMORY_KIB;
    c.vcpus = 0;
    expect_eq!(ctl(p, CTL_CREATE, &mut c), err(Errno::EINVAL), "CTL_CREATE of 0 vCPUs");
    c.vcpus = 1;
    let r = ctl(p, CTL_CREATE, &mut c);
    ensure!(r > 0, "CTL_CREATE of `other`: {}", name(r));
    let other = r as u16;
    let mut s = CtlStart { domid: other, _pad: [0; 2], flags: 0 };
    expect_eq!(ctl(p, CTL_START, &mut s), err(Errno::EINVAL), "CTL_START before the kernel is loaded");
    let mut l = CtlLoad {
        domid: other,
        module: CTL_MODULE_KERNEL,
        _pad: 0,
        len: 16,
        offset: 4096,
        buffer: kernel.as_ptr() as u64,
    };
    expect_eq!(ctl(p, CTL_LOAD, &mut l), err(Errno::EINVAL), "CTL_LOAD out of order");
    l.offset = 0;
    l.domid = live;
    expect_eq!(ctl(p, CTL_LOAD, &mut l), err(Errno::EINVAL), "CTL_LOAD into a running domain");
    destroy(p, other)?;
    expect_eq!(free_pages(p)?, free, "free pages once `other` is gone");
    Ok(())
}

/// Waits (guest time) until this domain is the only one listed.
fn wait_alone<P: Platform>(p: &P, buf: &Page) -> Outcome {
    for _ in 0..CONSOLE_WAIT_MS / 10 {
        if list(p, buf)?.1 == 1 {
            return Ok(());
        }
        spin(p, 10 * MS);
    }
    fail!("other domains still listed after {CONSOLE_WAIT_MS} ms")
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let Some(kernel) = p.boot_module() else { fail!("no boot module (ramdisk) to create domains from") };
    let cycles = cmdline::get_u64(p.cmdline(), "keel.cycles").unwrap_or(3);
    let out = page()?;
    // Keel lists a destroyed domain (dying) until its memory is back: once this domain is
    // the only one listed, the free count is final (`docs/control-abi.md`, `CTL_DESTROY`).
    wait_alone(p, out)?;
    let free0 = free_pages(p)?;
    say!(p, "create: kernel of {} bytes, {free0} free pages", kernel.len());
    for cycle in 0..cycles {
        let id = create(p, kernel)?;
        let during = free_pages(p)?;
        ensure!(during < free0, "free pages {during} while d{id} exists, {free0} before");
        load(p, id, kernel, 0)?;
        start(p, id)?;
        let info = query(p, id).map_err(|e| Failure::new(format_args!("query d{id}: {}", name(e))))?;
        ensure!(info.caps == 0, "d{id} has capabilities {:#x}", info.caps);
        expect_eq!(info.tot_pages, MEMORY_KIB / 4, "d{id}'s RAM pages");
        let read = await_console(p, id, out, "spin: spinning")?;
        pause_unpause(p, id)?;
        if cycle == 0 {
            say!(p, "create: d{id} runs: console read {read} bytes; pause stops its CPU time, unpause resumes it");
            refusals(p, kernel, id, free_pages(p)?)?;
            say!(p, "create: duplicate name, too much memory, 0 vCPUs, early start, loads out of order refused");
        }
        destroy(p, id)?;
        let free = free_pages(p)?;
        ensure!(free == free0, "cycle {cycle}: {free} free pages once d{id} was gone, {free0} before");
    }
    say!(p, "create: {cycles} cycles of create, console, pause, unpause, destroy; free pages {free0} after each");
    Ok(())
}
