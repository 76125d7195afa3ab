//! Typed hypercalls over [`Platform::hypercall`]. Structs go through Keel's ABI crate
//! ([`Wire`]) into buffers on the stack, whose virtual addresses are the pointers.

use crate::Platform;
use keel_abi::hypercall::*;
use keel_abi::Wire;

/// A hypercall result: ≥ 0 success, < 0 a negated errno.
pub type Ret = i64;

/// An 8-aligned scratch buffer for one struct.
#[repr(C, align(8))]
struct Buf([u8; 160]);

/// The name of a negative result (`"-EINVAL"`), or `"ok"`.
pub fn name(ret: Ret) -> &'static str {
    if ret >= 0 {
        return "ok";
    }
    match keel_abi::Errno::ALL.iter().find(|e| -(e.code() as i64) == ret) {
        Some(e) => e.name(),
        None => "E?",
    }
}

/// `-errno` as a [`Ret`].
pub const fn err(e: keel_abi::Errno) -> Ret {
    -(e.code() as i64)
}

/// Hypercalls of one platform.
#[derive(Clone, Copy)]
pub struct Hv<'p, P: Platform>(pub &'p P);

impl<P: Platform> Hv<'_, P> {
    /// A raw hypercall.
    pub fn raw(&self, number: u64, args: [u64; 5]) -> Ret {
        self.0.hypercall(number, args) as i64
    }

    /// Hypercall `number(cmd, &s)`: `s` is encoded into a stack buffer, whose address
    /// is the pointer, and read back afterwards.
    pub fn with<T: Wire>(&self, number: u64, cmd: u64, s: &mut T) -> Ret {
        let mut buf = Buf([0; 160]);
        assert!(T::SIZE <= buf.0.len(), "struct too large for the hypercall buffer");
        let _ = s.write_bytes(&mut buf.0);
        let r = self.raw(number, [cmd, buf.0.as_ptr() as u64, 0, 0, 0]);
        if let Some(v) = T::from_bytes(&buf.0) {
            *s = v;
        }
        r
    }

    /// A hypercall whose first argument is a command and whose second is `ptr`.
    pub fn cmd_ptr(&self, number: u64, cmd: u64, ptr: usize) -> Ret {
        self.raw(number, [cmd, ptr as u64, 0, 0, 0])
    }

    pub fn xen_version(&self, cmd: u64, arg: usize) -> Ret {
        self.cmd_ptr(XEN_VERSION, cmd, arg)
    }

    /// `console_io(CONSOLEIO_write, len, bytes)`.
    pub fn console_write(&self, bytes: &[u8]) -> Ret {
        self.raw(CONSOLE_IO, [keel_abi::xen::CONSOLEIO_WRITE, bytes.len() as u64, bytes.as_ptr() as u64, 0, 0])
    }

    /// `vcpu_op(cmd, vcpu, &arg)`.
    pub fn vcpu_op<T: Wire>(&self, cmd: u64, vcpu: u32, arg: &T) -> Ret {
        let mut buf = Buf([0; 160]);
        let _ = arg.write_bytes(&mut buf.0);
        self.raw(VCPU_OP, [cmd, vcpu as u64, buf.0.as_ptr() as u64, 0, 0])
    }

    pub fn event_op<T: Wire>(&self, cmd: u64, s: &mut T) -> Ret {
        self.with(EVENT_CHANNEL_OP, cmd, s)
    }

    pub fn sched_op<T: Wire>(&self, cmd: u64, s: &mut T) -> Ret {
        self.with(SCHED_OP, cmd, s)
    }

    pub fn memory_op<T: Wire>(&self, cmd: u64, s: &mut T) -> Ret {
        self.with(MEMORY_OP, cmd, s)
    }

    pub fn hvm_op<T: Wire>(&self, cmd: u64, s: &mut T) -> Ret {
        self.with(HVM_OP, cmd, s)
    }

    /// `grant_table_op(cmd, ops, count)` on an array already encoded in `ops`.
    pub fn grant_op(&self, cmd: u64, ops: &mut [u8], count: u32) -> Ret {
        self.raw(GRANT_TABLE_OP, [cmd, ops.as_mut_ptr() as u64, count as u64, 0, 0])
    }

    /// `SCHEDOP_shutdown(reason)`; returns only if Keel refused.
    pub fn shutdown(&self, reason: u32) -> Ret {
        let mut s = keel_abi::sched::SchedShutdown { reason };
        self.sched_op(keel_abi::sched::SCHEDOP_SHUTDOWN, &mut s)
    }

    pub fn yield_cpu(&self) -> Ret {
        self.raw(SCHED_OP, [keel_abi::sched::SCHEDOP_YIELD, 0, 0, 0, 0])
    }

    pub fn block(&self) -> Ret {
        self.raw(SCHED_OP, [keel_abi::sched::SCHEDOP_BLOCK, 0, 0, 0, 0])
    }
}
