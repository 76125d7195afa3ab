//! `keel.test=legacy32`: a guest whose hypercalls come from 32-bit protected mode with
//! EFER.LMA clear and paging off, as a 32-bit PVH kernel's do (`legacy32.s` leaves long
//! mode for each call and comes back). The hypercall page is installed by a WRMSR made
//! in that mode, which latches Xen's 32-bit shared_info layout; then every call goes
//! through the page's stubs with EAX and EBX..EDI: `xen_version`, `console_io`,
//! shared_info placed with the 16-byte `xen_add_to_physmap`, the compat wall clock, an
//! event channel (pending bit and 32-bit selector), `SCHEDOP_poll` (16-byte struct, a
//! pending port and a timeout), `SCHEDOP_yield`/`block`, an event taken as Xen's
//! callback vector by 32-bit code under a 32-bit IDT (`legacy32_upcall`),
//! `VCPUOP_register_vcpu_info`, the 44-byte runstate area and `VCPUOP_get_runstate_info`,
//! and grant `setup_table` (32-bit frame list) and `copy` (24-byte ops). Then the same
//! calls with 32-bit paging and with PAE paging, their pointers in an alias that Keel
//! must find through the guest's tables (`legacy32_paged`), and last FIFO event
//! channels set up and taken from 32-bit code (`legacy32_upcall`). Each answer is
//! checked against the compat layout Xen 4.17 gives such a guest.

use crate::cpu;
use crate::legacy32_call::{
    addr, call, clock, install_hypercall_page, mode, Paging, AT_LIST, AT_RUNSTATE, AT_RUNSTATE_INFO, AT_STRUCT,
    AT_TEXT, CR0_PG, EFER_LME_LMA, VCPU_INFO_AT,
};
use core::sync::atomic::Ordering;
use keel_abi::event::{EVTCHNOP_BIND_IPI, EVTCHNOP_SEND};
use keel_abi::grant::{GNTST_OKAY, GNTTABOP_COPY, GNTTABOP_SETUP_TABLE};
use keel_abi::hypercall::{CONSOLE_IO, EVENT_CHANNEL_OP, GRANT_TABLE_OP, MEMORY_OP, SCHED_OP, VCPU_OP, XEN_VERSION};
use keel_abi::layout::X86_32;
use keel_abi::memory::{XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::sched::{SCHEDOP_BLOCK, SCHEDOP_POLL, SCHEDOP_YIELD};
use keel_abi::vcpu::{
    RUNSTATE_RUNNING, VCPUOP_GET_RUNSTATE_INFO, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, VCPUOP_REGISTER_VCPU_INFO,
};
use keel_abi::version::XENVER_VERSION;
use keel_abi::xen::{CONSOLEIO_WRITE, DOMID_SELF};
use keel_test_guest::pages::Page;
use keel_test_guest::{ensure, expect_eq, fail, say, Outcome, Platform};

const XEN_4_19: i64 = 0x0004_0013;

/// `keel.test=legacy32`.
pub fn run(p: &impl Platform) -> Outcome {
    let (Some(args), Some(si), Some(vi), Some(grants), Some(from), Some(to)) = (
        keel_test_guest::pages::alloc(),
        keel_test_guest::pages::alloc(),
        keel_test_guest::pages::alloc(),
        keel_test_guest::pages::alloc(),
        keel_test_guest::pages::alloc(),
        keel_test_guest::pages::alloc(),
    ) else {
        fail!("out of guest pages")
    };
    p.disable_interrupts();
    // The mode the calls are made in.
    let (efer, cr0, _) = mode(Paging::Off);
    ensure!(efer & EFER_LME_LMA == 0 && cr0 & CR0_PG == 0, "not legacy mode: EFER {efer:#x}, CR0 {cr0:#x}");
    let w = install_hypercall_page(p);
    expect_eq!(w, 0, "WRMSR of the hypercall page from legacy mode");
    let version = call(XEN_VERSION, [XENVER_VERSION as u32, 0, 0, 0, 0]);
    expect_eq!(version, XEN_4_19, "xen_version through the page from legacy mode");
    say!(p, "legacy32: EFER {efer:#x}, CR0 {cr0:#x}; hypercall page from WRMSR; xen_version {version:#x}");
    let text = b"(legacy32: console_io from 32-bit protected mode, paging off)\n";
    args.fill(AT_TEXT, text);
    let len = u32::try_from(text.len()).unwrap_or(0);
    let r = call(CONSOLE_IO, [CONSOLEIO_WRITE as u32, len, addr(p, args, AT_TEXT), 0, 0]);
    expect_eq!(r, 0, "console_io from legacy mode");

    // shared_info through the 16-byte compat_add_to_physmap; the layout the WRMSR latched.
    let physmap = |space: u32, idx: u32, page: &Page| {
        let mut b = [0u8; 16];
        b[..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
        b[4..8].copy_from_slice(&space.to_le_bytes());
        b[8..12].copy_from_slice(&idx.to_le_bytes());
        b[12..16].copy_from_slice(&((p.gpa(page.va()) >> 12) as u32).to_le_bytes());
        args.fill(AT_STRUCT, &b);
        call(MEMORY_OP, [XENMEM_ADD_TO_PHYSMAP as u32, addr(p, args, AT_STRUCT), 0, 0, 0])
    };
    expect_eq!(physmap(XENMAPSPACE_SHARED_INFO, 0, si), 0, "add_to_physmap of shared_info");
    let wc = si.word(X86_32.wc_version).load(Ordering::Acquire);
    let sec = si.word(X86_32.wc_version + 4).load(Ordering::Acquire);
    ensure!(wc != 0 && sec > 1_577_836_800, "no compat wall clock at 2304: version {wc}, {sec} s");
    let Some(t0) = clock(si, 0) else { fail!("no pvclock at 32 of the compat vcpu_info") };
    ensure!(t0.tsc_to_system_mul != 0, "no pvclock at 32 of the compat vcpu_info");
    say!(p, "legacy32: shared_info placed (16-byte add_to_physmap); wall clock at 2304: {sec} s");

    let port = events(p, args, si)?;
    crate::legacy32_upcall::two_level(p, args, si, port)?;
    vcpu_info(p, args, vi)?;
    runstate(p, args)?;
    grant_ops(p, args, grants, from, to, &physmap)?;
    crate::legacy32_paged::bits32(p, args, port)?;
    crate::legacy32_paged::pae(p, args, port)?;
    crate::legacy32_upcall::fifo(p, args, si, vi, port)
}

/// Binds an IPI, raises it, polls it, blocks on it; the port.
fn events(p: &impl Platform, args: &Page, si: &Page) -> Result<u32, keel_test_guest::Failure> {
    let a = addr(p, args, AT_STRUCT);
    args.fill(AT_STRUCT, &[0u8; 8]);
    let r = call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_IPI as u32, a, 0, 0, 0]);
    expect_eq!(r, 0, "bind_ipi");
    let port = args.word(AT_STRUCT + 4).load(Ordering::Acquire);
    ensure!(port > 0 && port < 1024, "bound port {port}");
    let send = || {
        args.fill(AT_STRUCT, &port.to_le_bytes());
        call(EVENT_CHANNEL_OP, [EVTCHNOP_SEND as u32, a, 0, 0, 0])
    };
    expect_eq!(send(), 0, "send");
    ensure!(si.test_bit(X86_32.evtchn_pending, port as usize), "port {port} not pending in the 32-bit words at 2048");
    let sel = si.word(X86_32.pending_sel).load(Ordering::Acquire);
    expect_eq!(sel, 1 << (port / 32), "the 32-bit selector at 4");
    // compat_sched_poll: ports (u32 handle), nr_ports, timeout (u64 at 8).
    let poll = |timeout: u64| {
        args.fill(AT_LIST, &port.to_le_bytes());
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&addr(p, args, AT_LIST).to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..16].copy_from_slice(&timeout.to_le_bytes());
        args.fill(AT_STRUCT, &b);
        call(SCHED_OP, [SCHEDOP_POLL as u32, a, 0, 0, 0])
    };
    expect_eq!(poll(0), 0, "poll of a pending port");
    expect_eq!(call(SCHED_OP, [SCHEDOP_BLOCK as u32, 0, 0, 0, 0]), 0, "block with an event pending");
    si.word(0).store(0, Ordering::Release);
    si.word(X86_32.pending_sel).store(0, Ordering::Release);
    si.test_and_clear(X86_32.evtchn_pending, port as usize);
    let now = || clock(si, 0).map_or(0, |t| t.system_time_at(cpu::rdtsc()));
    let start = now();
    expect_eq!(poll(start + 5_000_000), 0, "poll with a timeout");
    let waited = now().saturating_sub(start);
    ensure!(waited >= 4_000_000, "poll returned after {waited} ns, before its 5 ms timeout");
    expect_eq!(call(SCHED_OP, [SCHEDOP_YIELD as u32, 0, 0, 0, 0]), 0, "yield");
    say!(
        p,
        "legacy32: port {port} pending in the 32-bit words, selector {sel:#x} at 4; poll (16-byte struct): at once when pending, {} us for a 5 ms timeout; block, yield",
        waited / 1000
    );
    Ok(port)
}

/// `VCPUOP_register_vcpu_info` (one layout for both): the compat `vcpu_info` moves there.
fn vcpu_info(p: &impl Platform, args: &Page, vi: &Page) -> Outcome {
    let at = VCPU_INFO_AT;
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(p.gpa(vi.va()) >> 12).to_le_bytes());
    b[8..12].copy_from_slice(&(at as u32).to_le_bytes());
    args.fill(AT_STRUCT, &b);
    let r = call(VCPU_OP, [VCPUOP_REGISTER_VCPU_INFO as u32, 0, addr(p, args, AT_STRUCT), 0, 0]);
    expect_eq!(r, 0, "register_vcpu_info");
    let Some(t) = clock(vi, at) else { fail!("no pvclock at 32 of the registered vcpu_info") };
    ensure!(t.version != 0 && t.tsc_to_system_mul != 0, "no pvclock at 32 of the registered vcpu_info: {t:?}");
    let sel = vi.word(at + X86_32.pending_sel).load(Ordering::Acquire);
    ensure!(sel != 0, "the registered vcpu_info's 32-bit selector at 4 is not filled");
    expect_eq!(vi.word(at + 8).load(Ordering::Acquire), 0, "arch.cr2 (a 64-bit selector's place)");
    say!(p, "legacy32: vcpu_info registered at offset {at:#x}: pvclock at 32, selector {sel:#x} at 4");
    Ok(())
}

/// The 44-byte `compat_vcpu_runstate_info`: state at 0, `state_entry_time` at 4, `time`
/// at 12.
fn runstate(p: &impl Platform, args: &Page) -> Outcome {
    args.fill(AT_RUNSTATE, &[0xee; 48]);
    args.fill(AT_RUNSTATE_INFO, &[0xee; 48]);
    let mut b = [0xddu8; 8];
    b[..4].copy_from_slice(&addr(p, args, AT_RUNSTATE).to_le_bytes());
    args.fill(AT_STRUCT, &b);
    let r = call(VCPU_OP, [VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA as u32, 0, addr(p, args, AT_STRUCT), 0, 0]);
    expect_eq!(r, 0, "register_runstate_memory_area (the handle in the low half)");
    let r = call(VCPU_OP, [VCPUOP_GET_RUNSTATE_INFO as u32, 0, addr(p, args, AT_RUNSTATE_INFO), 0, 0]);
    expect_eq!(r, 0, "get_runstate_info");
    for (what, at) in [("area", AT_RUNSTATE), ("get_runstate_info", AT_RUNSTATE_INFO)] {
        let state = args.word(at).load(Ordering::Acquire);
        let entry = u64::from(args.word(at + 4).load(Ordering::Acquire))
            | u64::from(args.word(at + 8).load(Ordering::Acquire)) << 32;
        let running = u64::from(args.word(at + 12).load(Ordering::Acquire))
            | u64::from(args.word(at + 16).load(Ordering::Acquire)) << 32;
        expect_eq!(state, RUNSTATE_RUNNING, "{what}: state at 0");
        ensure!(entry != 0 && entry < 1 << 62, "{what}: state_entry_time at 4 is {entry:#x}");
        ensure!(running != 0 && running < 1 << 62, "{what}: time[running] at 12 is {running:#x}");
        expect_eq!(args.word(at + 44).load(Ordering::Acquire), 0xeeee_eeee, "{what}: bytes past 44 written");
    }
    say!(p, "legacy32: runstate area and get_runstate_info in 44 bytes: running, entry time at 4, times at 12");
    Ok(())
}

/// Grant `setup_table` with a list of 32-bit frames, `copy` with 24-byte ops.
fn grant_ops(
    p: &impl Platform,
    args: &Page,
    grants: &Page,
    from: &Page,
    to: &Page,
    physmap: &dyn Fn(u32, u32, &Page) -> i64,
) -> Outcome {
    expect_eq!(physmap(XENMAPSPACE_GRANT_TABLE, 0, grants), 0, "add_to_physmap of grant frame 0");
    let gfn = |page: &Page| (p.gpa(page.va()) >> 12) as u32;
    args.fill(AT_LIST, &[0xee; 8]);
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    b[8..10].copy_from_slice(&99i16.to_le_bytes());
    b[12..16].copy_from_slice(&addr(p, args, AT_LIST).to_le_bytes());
    args.fill(AT_STRUCT, &b);
    let a = addr(p, args, AT_STRUCT);
    expect_eq!(call(GRANT_TABLE_OP, [GNTTABOP_SETUP_TABLE as u32, a, 1, 0, 0]), 0, "setup_table");
    let status = args.word(AT_STRUCT + 8).load(Ordering::Acquire) as u16 as i16;
    expect_eq!(status, GNTST_OKAY, "setup_table status at 8");
    expect_eq!(args.word(AT_LIST).load(Ordering::Acquire), gfn(grants), "frame_list[0], a u32");
    expect_eq!(args.word(AT_LIST + 4).load(Ordering::Acquire), 0xeeee_eeee, "frame_list: bytes past one u32");

    from.fill(100, b"copied from legacy mode");
    // compat_gnttab_copy: source {gfn u32, domid, offset}, dest, len, flags, status at 20.
    let mut op = [0u8; 24];
    op[..4].copy_from_slice(&gfn(from).to_le_bytes());
    op[4..6].copy_from_slice(&DOMID_SELF.to_le_bytes());
    op[6..8].copy_from_slice(&100u16.to_le_bytes());
    op[8..12].copy_from_slice(&gfn(to).to_le_bytes());
    op[12..14].copy_from_slice(&DOMID_SELF.to_le_bytes());
    op[14..16].copy_from_slice(&8u16.to_le_bytes());
    op[16..18].copy_from_slice(&23u16.to_le_bytes());
    op[20..22].copy_from_slice(&99i16.to_le_bytes());
    args.fill(AT_STRUCT, &op);
    expect_eq!(call(GRANT_TABLE_OP, [GNTTABOP_COPY as u32, a, 1, 0, 0]), 0, "copy");
    let status = (args.word(AT_STRUCT + 20).load(Ordering::Acquire) & 0xffff) as u16 as i16;
    expect_eq!(status, GNTST_OKAY, "copy status at 20");
    let mut got = [0u8; 23];
    to.read(8, &mut got);
    expect_eq!(&got, b"copied from legacy mode", "the copied bytes");
    say!(
        p,
        "legacy32: grant setup_table (u32 frame list) gave frame {:#x}; copy (24-byte op) status {status}",
        gfn(grants)
    );
    Ok(())
}
