//! Mock guest programs that use the hypercall ABI as a real guest does.
//!
//! An image is a code page at the start of RAM (the entry), a data page after it with
//! the hypercall argument structs, and an optional second code page (for a secondary
//! vCPU). Registers: `r0..r4` and `r7` belong to hypercalls, `r5` holds the address of
//! shared_info, `r6` is zero, `r8..r15` are the program's.

use crate::mock::{Asm, Cond, Insn, Label, Op, PlatformCall, GUEST_RAM};
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::event::*;
use keel_abi::hypercall::*;
use keel_abi::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use keel_abi::sched::*;
use keel_abi::vcpu::{
    VcpuRegisterRunstateMemoryArea, VcpuSetSingleshotTimer, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
    VCPUOP_SET_SINGLESHOT_TIMER,
};
use keel_abi::xen::{DomId, DOMID_SELF, VIRQ_TIMER};
use keel_abi::Errno;
use keel_abi::Wire;

mod events;
mod simple;
mod time;
mod vcpus;

pub use events::*;
pub use simple::*;
pub use time::*;
pub use vcpus::*;

pub const DATA: u64 = GUEST_RAM + 0x1000;
pub const SECOND: u64 = GUEST_RAM + 0x2000;
/// Where guests place shared_info: a hole after their 1 MiB of RAM.
pub const SHARED_INFO: u64 = GUEST_RAM + 0x20_0000;
/// `shared_info.evtchn_pending` in the x86_64 layout the mock uses.
const PENDING: i32 = 2048;
/// `vcpu_info[0].evtchn_pending_sel`.
const PENDING_SEL: i32 = 8;

// Data page offsets.
const PHYSMAP: u64 = 0x00;
const ALLOC_UNBOUND: u64 = 0x20;
const BIND_INTERDOMAIN: u64 = 0x30;
const SEND: u64 = 0x40;
const POWEROFF: u64 = 0x50;
const CRASH: u64 = 0x54;
const REBOOT: u64 = 0x58;
const POLL: u64 = 0x60;
const PORTS: u64 = 0x80;
const SINGLESHOT: u64 = 0x90;
const BIND_VIRQ: u64 = 0xa0;
const RUNSTATE_REG: u64 = 0xb0;
const RUNSTATE: u64 = 0x900;
const FLAG: u64 = 0xc0;
const FLAG2: u64 = 0xc8;
const WATCHDOG: u64 = 0xd0;
const CONSOLE: u64 = 0x100;
/// Two mock `VCPUOP_initialise` contexts (program counter, r0), 16 bytes each.
const CONTEXT: u64 = 0xe0;

/// A guest image under construction.
pub struct Image {
    pub a: Asm,
    pub second: Asm,
    data: Vec<u8>,
    pub(super) fail: Label,
    prefix_len: usize,
}

impl Image {
    /// An image whose program starts by setting `r5`/`r6` and mapping shared_info.
    pub fn new() -> Self {
        let mut a = Asm::new();
        let fail = a.label();
        let mut img = Image { a, second: Asm::new(), data: vec![0; 0x1000], fail, prefix_len: 0 };
        img.put(
            PHYSMAP,
            &XenAddToPhysmap {
                domid: DOMID_SELF,
                size: 0,
                space: XENMAPSPACE_SHARED_INFO,
                idx: 0,
                gpfn: SHARED_INFO >> 12,
            },
        );
        img.put(POWEROFF, &SchedShutdown { reason: SHUTDOWN_POWEROFF });
        img.put(CRASH, &SchedShutdown { reason: SHUTDOWN_CRASH });
        img.a.set(5, SHARED_INFO).set(6, 0);
        img.hypercall_ok(MEMORY_OP, &[XENMEM_ADD_TO_PHYSMAP, DATA + PHYSMAP]);
        img
    }

    pub fn put<T: Wire>(&mut self, off: u64, v: &T) {
        v.write_bytes(&mut self.data[off as usize..]).unwrap();
    }

    pub fn put_bytes(&mut self, off: u64, bytes: &[u8]) {
        self.data[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
    }

    /// A hypercall whose result must be 0 (else the program fails with it).
    pub fn hypercall_ok(&mut self, nr: u64, args: &[u64]) {
        let fail = self.fail;
        self.a.hypercall(nr, args).br(Cond::Ne, 0, 6, fail);
    }

    /// Waits until event port `r8` is pending and consumes it, the 2-level way: clear the
    /// upcall flag and the selector, test the port's bit, block if it is clear. After a
    /// block, the event upcall interrupt must be asserted (`Upcall` reads 1).
    pub fn wait_port(&mut self) {
        let a = &mut self.a;
        let (wait, got) = (a.here(), a.label());
        a.store(1, 6, 5, 0).store(8, 6, 5, PENDING_SEL);
        // r11 = address of the pending word, r14 = the port's bit, r12 = the word.
        a.set(11, 6).alu(Op::Shr, 11, 8, 11).set(12, 3).alu(Op::Shl, 11, 11, 12);
        a.alu(Op::Add, 11, 11, 5).i(Insn::AddI(11, 11, PENDING));
        a.set(12, 63).alu(Op::And, 12, 8, 12).set(14, 1).alu(Op::Shl, 14, 14, 12);
        a.load(8, 12, 11, 0).alu(Op::And, 15, 12, 14).br(Cond::Ne, 15, 6, got);
        let fail = self.fail;
        self.hypercall_ok(SCHED_OP, &[SCHEDOP_BLOCK]);
        let a = &mut self.a;
        a.i(Insn::Upcall(15)).set(0, 0x0b10c).br(Cond::Eq, 15, 6, fail).jmp(wait);
        a.bind(got).alu(Op::Xor, 12, 12, 14).store(8, 12, 11, 0);
    }

    /// Sends on the port stored by [`Image::set_send_port`].
    pub fn send(&mut self) {
        self.hypercall_ok(EVENT_CHANNEL_OP, &[EVTCHNOP_SEND, DATA + SEND]);
    }

    /// Stores `r8` as the port [`Image::send`] uses.
    pub fn set_send_port(&mut self) {
        self.a.set(11, DATA + SEND).store(4, 8, 11, 0);
    }

    /// Prints `prefix` followed by `reg` in 16 hex digits on the console.
    pub fn print_hex(&mut self, prefix: &str, reg: u8) {
        assert!(prefix.len() < 0x80 && [9, 10, 11, 12, 13].iter().all(|&r| r != reg));
        let at = CONSOLE + 0x100 * (self.prefix_len as u64 % 8);
        self.prefix_len += 1;
        let start = at as usize;
        self.data[start..start + prefix.len()].copy_from_slice(prefix.as_bytes());
        self.data[start + prefix.len() + 16] = b'\n';
        let a = &mut self.a;
        a.set(9, DATA + at + prefix.len() as u64).set(10, 60).set(13, 10);
        let (top, letter, store) = (a.here(), a.label(), a.label());
        a.alu(Op::Shr, 11, reg, 10).set(12, 15).alu(Op::And, 11, 11, 12);
        a.br(Cond::Geu, 11, 13, letter).i(Insn::AddI(11, 11, b'0' as i32)).jmp(store);
        a.bind(letter).i(Insn::AddI(11, 11, b'a' as i32 - 10));
        a.bind(store).store(1, 11, 9, 0).i(Insn::AddI(9, 9, 1));
        let done = a.label();
        a.br(Cond::Eq, 10, 6, done).i(Insn::AddI(10, 10, -4)).jmp(top).bind(done);
        let len = prefix.len() as u64 + 17;
        self.hypercall_ok(CONSOLE_IO, &[0, len, DATA + at]);
    }

    /// Powers the domain off; on failure (any earlier check) prints the failing value
    /// and shuts down with reason crash.
    pub fn finish(mut self) -> Vec<u8> {
        let a = &mut self.a;
        a.hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + POWEROFF]);
        let park = a.here();
        a.i(Insn::Halt).jmp(park);
        let fail = self.fail;
        self.a.bind(fail).i(Insn::Mov(8, 0));
        // Printing may fail too: do not loop back into `fail`.
        self.fail = self.a.label();
        self.print_hex("fail ", 8);
        let a = &mut self.a;
        a.bind(self.fail).hypercall(SCHED_OP, &[SCHEDOP_SHUTDOWN, DATA + CRASH]).jmp(park);
        let mut out = self.a.assemble();
        assert!(out.len() <= 0x1000, "program too large: {} bytes", out.len());
        out.resize(0x1000, 0);
        out.extend_from_slice(&self.data);
        let second = self.second.assemble();
        if !second.is_empty() {
            out.extend_from_slice(&second);
        }
        out
    }
}
