//! `keel.test=legacy32`, its events taken as interrupts: 32-bit code with EFER.LMA clear
//! sets `HVM_PARAM_CALLBACK_IRQ` to Xen's callback vector, loads a 32-bit IDT, sends an
//! event and opens interrupts; the vector's 32-bit gate runs a handler that reads and
//! acknowledges the compat `vcpu_info` (`evtchn_upcall_pending`, the 32-bit selector at
//! 4) as a 32-bit Xen guest's upcall does (`guest_legacy32_upcall` in `legacy32.s`).
//! Then the same code halts after arming a single-shot timer: the vCPU blocks and the
//! timer's `VIRQ_TIMER` wakes it through the vector. Then FIFO event channels set up from 32-bit code: `EVTCHNOP_init_control` and
//! `expand_array`, whose structs a 32-bit caller shares with a 64-bit one (Xen checks
//! rather than translates them), and an event linked on its queue and taken by the same
//! handler.

use crate::legacy32_call::{addr, call, legacy, stub, AT_LIST, AT_STRUCT, AT_TEXT, VCPU_INFO_AT};
use core::sync::atomic::Ordering;
use keel_abi::event::{
    EVTCHNOP_BIND_IPI, EVTCHNOP_BIND_VIRQ, EVTCHNOP_EXPAND_ARRAY, EVTCHNOP_INIT_CONTROL, EVTCHNOP_SEND,
    EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_BITS, EVTCHN_FIFO_PENDING, EVTCHN_FIFO_PRIORITY_DEFAULT,
};
use keel_abi::hvm::{
    XenHvmParam, HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CALLBACK_TYPE_SHIFT, HVM_PARAM_CALLBACK_TYPE_VECTOR,
};
use keel_abi::hypercall::{EVENT_CHANNEL_OP, HVM_OP, VCPU_OP};
use keel_abi::layout::X86_32;
use keel_abi::vcpu::VCPUOP_SET_SINGLESHOT_TIMER;
use keel_abi::xen::DOMID_SELF;
use keel_test_guest::pages::Page;
use keel_test_guest::{ensure, expect_eq, fail, say, Outcome, Platform};

extern "C" {
    fn guest_legacy32_upcall();
    fn guest_legacy32_upcall_wait();
    fn guest_legacy32_upcall_end();
    fn guest_legacy32_upcall_handler();
}

/// The callback vector (Linux's).
const VECTOR: u8 = 0xf3;
/// The flat 32-bit code segment the 32-bit code runs in.
const CODE32: u32 = 0x18;
/// The block `guest_legacy32_upcall` reads and its handler fills, in the argument page.
const AT_BLOCK: usize = 0x600;
/// How long the 32-bit code waits for the interrupt at most (loop iterations).
const SPINS: u32 = 1 << 24;
/// The FIFO control block's `head[]`.
const FIFO_HEAD: usize = 8;

/// What the 32-bit handler saw.
struct Taken {
    /// The result of the hypercall that raised the event.
    result: i64,
    count: u32,
    selector: u32,
    upcall_pending: u32,
    cs: u32,
    eip: u32,
}

/// The 32-bit IDT in `idt`: only the callback vector's gate is present (a 32-bit
/// interrupt gate to the handler in the flat 32-bit code segment).
fn build_idt(idt: &Page) {
    for i in 0..512 {
        idt.word(4 * i).store(0, Ordering::Release);
    }
    let handler = guest_legacy32_upcall_handler as *const () as usize as u32;
    let at = 8 * usize::from(VECTOR);
    idt.word(at).store(CODE32 << 16 | (handler & 0xffff), Ordering::Release);
    // Present, DPL 0, 32-bit interrupt gate (type 0xe).
    idt.word(at + 4).store((handler & 0xffff_0000) | 0x8e00, Ordering::Release);
}

/// How the 32-bit code raises the event and waits for it.
struct Raise {
    /// The hypercall that raises it (or arms a timer that will) and its EBX, ECX, EDX.
    nr: u64,
    regs: [u32; 3],
    /// Spin at most this long with interrupts open, or (0) halt until the interrupt.
    spins: u32,
}

/// `EVTCHNOP_send` of `port` (its struct at `AT_LIST`), then spinning.
fn send(p: &impl Platform, args: &Page, port: u32) -> Raise {
    args.fill(AT_LIST, &port.to_le_bytes());
    Raise { nr: EVENT_CHANNEL_OP, regs: [EVTCHNOP_SEND as u32, addr(p, args, AT_LIST), 0], spins: SPINS }
}

/// Runs `raise` from 32-bit code with the 32-bit IDT `idt` loaded, interrupts open while
/// it waits for the handler to acknowledge the upcall in the compat `vcpu_info` at
/// guest-physical `vcpu_info`.
fn take(p: &impl Platform, args: &Page, idt: &Page, raise: &Raise, vcpu_info: u32) -> Taken {
    let mut b = [0u8; 56];
    let mut put = |word: usize, v: u32| b[4 * word..4 * word + 4].copy_from_slice(&v.to_le_bytes());
    put(1, addr(p, idt, 0));
    put(2, stub(raise.nr) as u32);
    put(4, vcpu_info);
    put(5, raise.spins);
    for (i, &r) in raise.regs.iter().enumerate() {
        put(11 + i, r);
    }
    b[2..4].copy_from_slice(&(256u16 * 8 - 1).to_le_bytes());
    args.fill(AT_BLOCK, &b);
    let r = legacy(guest_legacy32_upcall as *const () as usize, [0, addr(p, args, AT_BLOCK), 0, 0, 0, 0]);
    let word = |i: usize| args.word(AT_BLOCK + 4 * i).load(Ordering::Acquire);
    Taken {
        result: i64::from(r as i32),
        count: word(6),
        selector: word(7),
        upcall_pending: word(8),
        cs: word(9) & 0xffff,
        eip: word(10),
    }
}

/// Checks what every upcall must show: the raising call worked, one interrupt, in the flat
/// 32-bit code segment, in the loop that waited for it, with the upcall pending.
fn check(t: &Taken) -> Outcome {
    expect_eq!(t.result, 0, "the hypercall that raises the event, from 32-bit code");
    expect_eq!(t.count, 1, "upcalls taken by the 32-bit handler");
    expect_eq!(t.cs, CODE32, "the interrupted CS in the 32-bit frame");
    let (wait, end) =
        (guest_legacy32_upcall_wait as *const () as usize, guest_legacy32_upcall_end as *const () as usize);
    ensure!(
        (wait..end).contains(&(t.eip as usize)),
        "interrupted at EIP {:#x}, outside the waiting loop {wait:#x}..{end:#x}",
        t.eip
    );
    expect_eq!(t.upcall_pending, 1, "evtchn_upcall_pending the handler read");
    Ok(())
}

/// Sets `HVM_PARAM_CALLBACK_IRQ` from 32-bit code.
fn set_callback(p: &impl Platform, args: &Page, value: u64) -> i64 {
    let q = XenHvmParam { domid: DOMID_SELF, _pad: [0; 2], index: HVM_PARAM_CALLBACK_IRQ, value };
    args.fill(AT_STRUCT, &q.to_bytes());
    call(HVM_OP, [HVMOP_SET_PARAM as u32, addr(p, args, AT_STRUCT), 0, 0, 0])
}

/// 2-level: `port` raised and taken through the callback vector by 32-bit code; `si` is
/// shared_info (its compat `vcpu_info` 0 the vCPU's).
pub fn two_level(p: &impl Platform, args: &Page, si: &Page, port: u32) -> Outcome {
    let Some(idt) = keel_test_guest::pages::alloc() else { fail!("out of guest pages") };
    build_idt(idt);
    let callback = HVM_PARAM_CALLBACK_TYPE_VECTOR << HVM_PARAM_CALLBACK_TYPE_SHIFT | u64::from(VECTOR);
    expect_eq!(set_callback(p, args, callback), 0, "set_param(CALLBACK_IRQ, vector) from legacy mode");
    si.word(0).store(0, Ordering::Release);
    si.word(X86_32.pending_sel).store(0, Ordering::Release);
    si.test_and_clear(X86_32.evtchn_pending, port as usize);
    let t = take(p, args, idt, &send(p, args, port), addr(p, si, 0));
    check(&t)?;
    expect_eq!(t.selector, 1 << (port / 32), "the 32-bit selector the handler took at 4");
    ensure!(si.test_bit(X86_32.evtchn_pending, port as usize), "port {port} not pending in the 32-bit words");
    expect_eq!(si.word(0).load(Ordering::Acquire) & 0xff, 0, "evtchn_upcall_pending after the handler");
    si.test_and_clear(X86_32.evtchn_pending, port as usize);
    say!(
        p,
        "legacy32: callback vector {VECTOR:#x} taken by 32-bit code through a 32-bit IDT (CS {:#x}): upcall_pending 1, selector {:#x} at 4, port {port} pending",
        t.cs,
        t.selector
    );
    timer(p, args, si, idt)
}

/// `VIRQ_TIMER` bound, a single-shot timer 2 ms ahead armed from 32-bit code, which then
/// halts: the vCPU blocks, and the timer's event wakes it as the callback vector.
fn timer(p: &impl Platform, args: &Page, si: &Page, idt: &Page) -> Outcome {
    let a = addr(p, args, AT_STRUCT);
    args.fill(AT_STRUCT, &[0u8; 12]);
    expect_eq!(call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_VIRQ as u32, a, 0, 0, 0]), 0, "bind_virq(TIMER)");
    let port = args.word(AT_STRUCT + 8).load(Ordering::Acquire);
    ensure!(port > 0 && port < 1024, "VIRQ_TIMER bound to port {port}");
    let Some(start) = now(si) else { fail!("no pvclock in the compat vcpu_info") };
    let deadline = start + 2_000_000;
    // compat vcpu_set_singleshot_timer: timeout_abs_ns (u64 at 0), flags (u32 at 8).
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&deadline.to_le_bytes());
    args.fill(AT_TEXT, &b);
    let raise = Raise { nr: VCPU_OP, regs: [VCPUOP_SET_SINGLESHOT_TIMER as u32, 0, addr(p, args, AT_TEXT)], spins: 0 };
    let t = take(p, args, idt, &raise, addr(p, si, 0));
    let woke = now(si).unwrap_or(0);
    check(&t)?;
    ensure!(t.selector & 1 << (port / 32) != 0, "selector {:#x} without port {port}'s bit", t.selector);
    ensure!(si.test_and_clear(X86_32.evtchn_pending, port as usize), "timer port {port} not pending");
    ensure!(woke >= deadline, "woken at {woke} ns, before the timer's {deadline} ns");
    say!(
        p,
        "legacy32: 32-bit code halted until its single-shot timer: VIRQ_TIMER port {port} taken through the callback vector, {} us after arming it",
        (woke - start) / 1000
    );
    Ok(())
}

/// System time from the pvclock of the compat `vcpu_info` 0 in `si`.
fn now(si: &Page) -> Option<u64> {
    crate::legacy32_call::clock(si, 0).map(|t| t.system_time_at(crate::cpu::rdtsc()))
}

/// FIFO from 32-bit code, then an event on its queue taken through the callback vector;
/// `vi` holds the registered compat `vcpu_info` (at [`VCPU_INFO_AT`]), `port` the
/// 2-level port bound so far.
pub fn fifo(p: &impl Platform, args: &Page, si: &Page, vi: &Page, port: u32) -> Outcome {
    let (Some(control), Some(array), Some(idt)) =
        (keel_test_guest::pages::alloc(), keel_test_guest::pages::alloc(), keel_test_guest::pages::alloc())
    else {
        fail!("out of guest pages")
    };
    build_idt(idt);
    // Nothing pending in the 2-level words when they are left.
    si.test_and_clear(X86_32.evtchn_pending, port as usize);
    vi.word(VCPU_INFO_AT).store(0, Ordering::Release);
    vi.word(VCPU_INFO_AT + X86_32.pending_sel).store(0, Ordering::Release);
    let gfn = |page: &Page| u64::from(addr(p, page, 0) >> 12);
    // evtchn_init_control: control_gfn, offset, vcpu, link_bits (OUT), 7 bytes of pad.
    let mut b = [0xeeu8; 24];
    b[..8].copy_from_slice(&gfn(control).to_le_bytes());
    b[8..16].copy_from_slice(&[0; 8]);
    b[16] = 0;
    args.fill(AT_STRUCT, &b);
    let a = addr(p, args, AT_STRUCT);
    expect_eq!(call(EVENT_CHANNEL_OP, [EVTCHNOP_INIT_CONTROL as u32, a, 0, 0, 0]), 0, "init_control");
    let link_bits = args.word(AT_STRUCT + 16).load(Ordering::Acquire) & 0xff;
    expect_eq!(link_bits, EVTCHN_FIFO_LINK_BITS, "init_control: link_bits at 16");
    args.fill(AT_STRUCT, &gfn(array).to_le_bytes());
    expect_eq!(call(EVENT_CHANNEL_OP, [EVTCHNOP_EXPAND_ARRAY as u32, a, 0, 0, 0]), 0, "expand_array");
    args.fill(AT_STRUCT, &[0u8; 8]);
    expect_eq!(call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_IPI as u32, a, 0, 0, 0]), 0, "bind_ipi under FIFO");
    let fifo_port = args.word(AT_STRUCT + 4).load(Ordering::Acquire);
    ensure!(fifo_port > 0 && fifo_port < 1024, "bound port {fifo_port}");

    let t = take(p, args, idt, &send(p, args, fifo_port), addr(p, vi, VCPU_INFO_AT));
    check(&t)?;
    expect_eq!(t.selector, 0, "the 2-level selector under FIFO");
    let word = array.word(4 * fifo_port as usize).load(Ordering::Acquire);
    let linked = 1 << EVTCHN_FIFO_PENDING | 1 << EVTCHN_FIFO_LINKED;
    ensure!(word & linked == linked, "port {fifo_port}'s event word {word:#x}: not pending and linked");
    let q = EVTCHN_FIFO_PRIORITY_DEFAULT;
    let ready = control.word(0).load(Ordering::Acquire);
    ensure!(ready & 1 << q != 0, "READY {ready:#x}: queue {q} not ready");
    let head = control.word(FIFO_HEAD + 4 * q as usize).load(Ordering::Acquire);
    expect_eq!(head, fifo_port, "HEAD[{q}] of the control block");
    say!(
        p,
        "legacy32: FIFO from 32-bit code: init_control (24 bytes) link_bits {link_bits}, expand_array; port {fifo_port} pending and linked at HEAD[{q}], READY {ready:#x}; taken through the callback vector (upcall_pending 1, no selector)"
    );
    Ok(())
}
