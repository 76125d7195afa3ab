//! `sched_op`: yield, block, poll, shutdown, watchdogs — through the scheduler hooks.

use super::{Call, HcResult};
use crate::arch::Arch;
use crate::domain::{Poll, ShutdownReason};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use keel_abi::sched::*;
use keel_abi::Errno;

/// `sched_op(cmd, arg)`.
pub fn sched_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let arg = c.args[1];
    match c.arg32(0) as u64 {
        SCHEDOP_YIELD => {
            c.hv.hooks.yield_vcpu(c.domain.id(), c.vcpu);
            Ok(0)
        }
        SCHEDOP_BLOCK => {
            c.hv.block(c.domain, c.vcpu, None);
            Ok(0)
        }
        SCHEDOP_SHUTDOWN => {
            let s: SchedShutdown = c.guest.read_struct(arg)?;
            let reason = ShutdownReason::from_abi(s.reason).ok_or(Errno::EINVAL)?;
            c.hv.shutdown_guest(c.domain, reason);
            Ok(0)
        }
        SCHEDOP_POLL if c.compat => {
            // `compat_sched_poll`: a 32-bit handle, the timeout 4-aligned.
            let p: SchedPollCompat = c.guest.read_struct(arg)?;
            poll(c, u64::from(p.ports), p.nr_ports, p.timeout.get())
        }
        SCHEDOP_POLL => {
            let p: SchedPoll = c.guest.read_struct(arg)?;
            poll(c, p.ports, p.nr_ports, p.timeout)
        }
        SCHEDOP_REMOTE_SHUTDOWN => {
            let r: SchedRemoteShutdown = c.guest.read_struct(arg)?;
            let d = c.hv.resolve(c.domain, r.domain_id).ok_or(Errno::ESRCH)?;
            if !crate::control::is_control(c.domain) {
                return Err(Errno::EPERM);
            }
            c.hv.control_shutdown(c.domain, &d, r.reason)?;
            Ok(0)
        }
        SCHEDOP_SHUTDOWN_CODE => {
            let s: SchedShutdown = c.guest.read_struct(arg)?;
            ShutdownReason::from_abi(s.reason).ok_or(Errno::EINVAL)?;
            let _ = c.domain.shutdown_code.compare_exchange(
                crate::domain::NO_SHUTDOWN_CODE,
                s.reason,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            Ok(0)
        }
        SCHEDOP_WATCHDOG => {
            let w: SchedWatchdog = c.guest.read_struct(arg)?;
            let r = c.domain.watchdogs.lock().op(w.id, w.timeout, c.hv.now())?;
            c.hv.timers_changed(c.domain, 0);
            Ok(r as u64)
        }
        SCHEDOP_PIN_OVERRIDE => Err(Errno::EPERM),
        _ => Err(Errno::ENOSYS),
    }
}

/// `SCHEDOP_poll` of the `nr_ports` ports listed at `list` (a guest handle), until
/// `timeout` (absolute system time; 0: none).
fn poll<A: Arch>(c: &Call<'_, '_, A>, list: u64, nr_ports: u32, timeout: u64) -> HcResult {
    if nr_ports > SCHED_POLL_MAX_PORTS {
        return Err(Errno::EINVAL);
    }
    let mut ports = Vec::with_capacity(nr_ports as usize);
    for i in 0..u64::from(nr_ports) {
        ports.push(c.guest.read_u32(list, i)?);
    }
    {
        let ev = c.domain.events.lock();
        for &port in &ports {
            if !ev.is_valid(port) {
                return Err(Errno::EINVAL);
            }
            if ev.is_pending(port) {
                return Ok(0);
            }
        }
    }
    let deadline = (timeout != 0).then_some(timeout);
    c.hv.block(c.domain, c.vcpu, Some(Poll { ports, deadline }));
    // A port may have become pending between the check and the block.
    let pending = {
        let ev = c.domain.events.lock();
        c.domain.vcpus[c.vcpu as usize].lock().poll.as_ref().is_some_and(|p| p.ports.iter().any(|&x| ev.is_pending(x)))
    };
    if pending {
        c.hv.wake_vcpu(c.domain, c.vcpu, true);
    }
    Ok(0)
}
