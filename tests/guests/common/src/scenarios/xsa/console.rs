//! `console_io` with lengths and buffers no caller should pass: Keel has no
//! continuations, so a write above 64 KiB is `-EINVAL`, a negative `int` count is huge,
//! and a buffer it cannot read is `-EFAULT`, never a read of someone else's memory.

use super::expect;
use crate::hcall::{err, Hv};
use crate::pages;
use crate::{fail, say, Outcome, Platform};
use keel_abi::hypercall::CONSOLE_IO;
use keel_abi::xen::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use keel_abi::Errno;

pub fn run<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    let Some(page) = pages::alloc() else { fail!("out of guest pages") };
    page.fill(0, b"xsa console bytes\n");
    let buf = page.va() as u64;
    let io = |cmd: u64, count: u64, ptr: u64| hv.raw(CONSOLE_IO, [cmd, count, ptr, 0, 0]);
    for count in [65_537, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, u64::MAX] {
        expect(io(CONSOLEIO_WRITE, count, buf), err(Errno::EINVAL), "console write with a huge or negative count")?;
    }
    let unmapped = p.unmapped_va() as u64;
    let hole = p.hole().1 - 0x1000;
    for (ptr, what) in [
        (unmapped, "console write from unmapped memory"),
        (u64::MAX - 7, "console write from a buffer that wraps"),
        (0x8000_0000_0000, "console write from a non-canonical address"),
    ] {
        expect(io(CONSOLEIO_WRITE, 16, ptr), err(Errno::EFAULT), what)?;
    }
    // A hole the guest maps but that holds nothing of its own.
    let r = io(CONSOLEIO_WRITE, 16, hole);
    if r != err(Errno::EFAULT) {
        fail!("console write from a hole {hole:#x}: {}", crate::hcall::name(r));
    }
    expect(io(CONSOLEIO_WRITE, 65_536, unmapped), err(Errno::EFAULT), "64 KiB console write from unmapped memory")?;
    // Reads: a count far beyond the buffer copies at most what input Keel holds (1024
    // bytes at most), so a 4 KiB page is never overrun; an unmapped buffer is -EFAULT or
    // untouched when there is no input.
    let r = io(CONSOLEIO_READ, 0xffff_ffff, buf);
    if !(0..=1024).contains(&r) {
        fail!("console read with count 0xffffffff: {r}");
    }
    let r = io(CONSOLEIO_READ, 64, unmapped);
    if r != 0 && r != err(Errno::EFAULT) {
        fail!("console read into unmapped memory: {r}");
    }
    for cmd in [2, 0xffff_ffff, u64::MAX] {
        expect(io(cmd, 16, buf), err(Errno::ENOSYS), "console_io with an unknown command")?;
    }
    // The count's upper half is not the count (Xen's `int`): 1 << 32 is 0 bytes.
    expect(io(CONSOLEIO_WRITE, 1 << 32, unmapped), 0, "console write of (1 << 32) bytes")?;
    say!(p, "xsa console_io: counts above 64 KiB and negative ones EINVAL, unmapped/wrapping/hole buffers EFAULT");
    Ok(())
}
