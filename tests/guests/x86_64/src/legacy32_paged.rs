//! `keel.test=legacy32`, its paged part: hypercalls from 32-bit code with EFER.LMA clear
//! and paging on, their pointers in an alias of the guest's memory at 2 GiB that only
//! the guest's own tables map, so Keel must walk them as the processor would: 32-bit
//! paging (4 MiB pages, CR4.PSE) and PAE paging (CR4.PAE: four PDPTEs, then 2 MiB and
//! 4 KiB pages). Under PAE a pointer whose PDPTE is not present is refused with
//! `-EFAULT`. Xen 4.17's walk for a HAP guest reads the PDPTEs from the guest's memory
//! at CR3, and so does Keel's (`docs/x86-guests.md`).

use crate::legacy32_call::{
    addr, call_with, mode, Paging, AT_LIST, AT_RUNSTATE_INFO, AT_STRUCT, AT_TEXT, CR0_PG, EFER_LME_LMA,
};
use core::sync::atomic::Ordering;
use keel_abi::event::EVTCHNOP_SEND;
use keel_abi::hypercall::{CONSOLE_IO, EVENT_CHANNEL_OP, SCHED_OP, VCPU_OP};
use keel_abi::sched::SCHEDOP_POLL;
use keel_abi::vcpu::{RUNSTATE_RUNNING, VCPUOP_GET_RUNSTATE_INFO};
use keel_abi::xen::CONSOLEIO_WRITE;
use keel_abi::Errno;
use keel_test_guest::hcall::err;
use keel_test_guest::pages::Page;
use keel_test_guest::{ensure, expect_eq, fail, say, Outcome, Platform};

const CR4_PSE: u32 = 1 << 4;
const CR4_PAE: u32 = 1 << 5;
/// Where the paged calls see the guest's low memory again.
const ALIAS: u32 = 0x8000_0000;
/// How much memory the alias covers: the domain's 16 MiB.
const ALIAS_SPAN: u32 = 16 << 20;
/// Present, writable; with PS, a large page.
const PRESENT_RW: u32 = 0x3;
const LARGE: u32 = 0x80;
/// Where a PAE pointer lands in the first GiB's not-present PDPTE.
const UNMAPPED: u32 = 0x4000_0000;

fn alloc() -> Result<&'static Page, keel_test_guest::Failure> {
    match keel_test_guest::pages::alloc() {
        Some(page) => Ok(page),
        None => fail!("out of guest pages"),
    }
}

/// 32-bit paging: the low 4 GiB as the identity in 4 MiB pages but for the alias.
pub fn bits32(p: &impl Platform, args: &Page, port: u32) -> Outcome {
    let directory = alloc()?;
    let pages = ALIAS_SPAN >> 22;
    for i in 0..1024u32 {
        let frame = if (ALIAS >> 22..(ALIAS >> 22) + pages).contains(&i) { i - (ALIAS >> 22) } else { i };
        directory.word(4 * i as usize).store(frame << 22 | LARGE | PRESENT_RW, Ordering::Release);
    }
    let paging = Paging::Bits32(addr(p, directory, 0));
    let (efer, cr0, cr4) = mode(paging);
    ensure!(
        efer & EFER_LME_LMA == 0 && cr0 & CR0_PG != 0 && cr4 & (CR4_PSE | CR4_PAE) == CR4_PSE,
        "not 32-bit paging: EFER {efer:#x}, CR0 {cr0:#x}, CR4 {cr4:#x}"
    );
    let text = b"(legacy32: console_io with 32-bit paging, the text at its alias)\n";
    calls(p, args, paging, port, text)?;
    say!(
        p,
        "legacy32: 32-bit paging (EFER {efer:#x}, CR0 {cr0:#x}, CR4 {cr4:#x}): console_io, send, poll and get_runstate_info through an alias at {ALIAS:#x}"
    );
    Ok(())
}

/// PAE paging: PDPTE 0 maps the first GiB as the identity in 2 MiB pages; PDPTE 2 the
/// alias, in 2 MiB pages but for the 2 MiB around the argument page, which a page table
/// maps in 4 KiB pages; PDPTEs 1 and 3 are not present.
pub fn pae(p: &impl Platform, args: &Page, port: u32) -> Outcome {
    let (pdpt, low, alias, table) = (alloc()?, alloc()?, alloc()?, alloc()?);
    let entry = |page: &Page, i: u32, value: u64| {
        page.word(8 * i as usize).store(value as u32, Ordering::Release);
        page.word(8 * i as usize + 4).store((value >> 32) as u32, Ordering::Release);
    };
    let phys = |page: &Page| u64::from(addr(p, page, 0));
    for i in 0..512 {
        entry(low, i, u64::from(i) << 21 | u64::from(LARGE | PRESENT_RW));
    }
    let small = addr(p, args, 0) >> 21;
    for i in 0..ALIAS_SPAN >> 21 {
        if i == small {
            entry(alias, i, phys(table) | u64::from(PRESENT_RW));
        } else {
            entry(alias, i, u64::from(i) << 21 | u64::from(LARGE | PRESENT_RW));
        }
    }
    for j in 0..512 {
        entry(table, j, u64::from(small) << 21 | u64::from(j) << 12 | u64::from(PRESENT_RW));
    }
    // PDPTEs: present only (their RW, US and PS bits are reserved).
    for i in 0..4 {
        entry(pdpt, i, 0);
    }
    entry(pdpt, 0, phys(low) | 1);
    entry(pdpt, ALIAS >> 30, phys(alias) | 1);
    let paging = Paging::Pae(addr(p, pdpt, 0));
    let (efer, cr0, cr4) = mode(paging);
    ensure!(
        efer & EFER_LME_LMA == 0 && cr0 & CR0_PG != 0 && cr4 & CR4_PAE != 0,
        "not PAE paging: EFER {efer:#x}, CR0 {cr0:#x}, CR4 {cr4:#x}"
    );
    let text = b"(legacy32: console_io with PAE paging, the text at its alias)\n";
    calls(p, args, paging, port, text)?;
    // The same text where PDPTE 1 is not present.
    let len = u32::try_from(text.len()).unwrap_or(0);
    let unmapped = UNMAPPED + addr(p, args, AT_TEXT);
    let r = call_with(CONSOLE_IO, [CONSOLEIO_WRITE as u32, len, unmapped, 0, 0], paging);
    expect_eq!(r, err(Errno::EFAULT), "console_io from a not-present PDPTE");
    say!(
        p,
        "legacy32: PAE paging (EFER {efer:#x}, CR0 {cr0:#x}, CR4 {cr4:#x}): console_io, send, poll and get_runstate_info through an alias at {ALIAS:#x} (PDPTE 2, 2 MiB and 4 KiB pages); a not-present PDPTE EFAULT"
    );
    Ok(())
}

/// `console_io` of `text`, `EVTCHNOP_send` of `port`, `SCHEDOP_poll` of it (pending: at
/// once) and `VCPUOP_get_runstate_info`, every pointer in the alias.
fn calls(p: &impl Platform, args: &Page, paging: Paging, port: u32, text: &[u8]) -> Outcome {
    let alias = |at: usize| {
        let a = addr(p, args, at);
        ensure!(a < ALIAS_SPAN, "argument page at {a:#x}, past the alias");
        Ok(ALIAS + a)
    };
    args.fill(AT_TEXT, text);
    let len = u32::try_from(text.len()).unwrap_or(0);
    let r = call_with(CONSOLE_IO, [CONSOLEIO_WRITE as u32, len, alias(AT_TEXT)?, 0, 0], paging);
    expect_eq!(r, 0, "console_io with paging on");
    // The port pending again, then polled through the alias: at once.
    args.fill(AT_STRUCT, &port.to_le_bytes());
    expect_eq!(call_with(EVENT_CHANNEL_OP, [EVTCHNOP_SEND as u32, alias(AT_STRUCT)?, 0, 0, 0], paging), 0, "send");
    args.fill(AT_LIST, &port.to_le_bytes());
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&alias(AT_LIST)?.to_le_bytes());
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    args.fill(AT_STRUCT, &b);
    let r = call_with(SCHED_OP, [SCHEDOP_POLL as u32, alias(AT_STRUCT)?, 0, 0, 0], paging);
    expect_eq!(r, 0, "poll of a pending port through the alias");
    args.fill(AT_RUNSTATE_INFO, &[0xee; 48]);
    let r = call_with(VCPU_OP, [VCPUOP_GET_RUNSTATE_INFO as u32, 0, alias(AT_RUNSTATE_INFO)?, 0, 0], paging);
    expect_eq!(r, 0, "get_runstate_info through the alias");
    expect_eq!(args.word(AT_RUNSTATE_INFO).load(Ordering::Acquire), RUNSTATE_RUNNING, "runstate state at 0");
    expect_eq!(args.word(AT_RUNSTATE_INFO + 44).load(Ordering::Acquire), 0xeeee_eeee, "bytes past 44 written");
    Ok(())
}
