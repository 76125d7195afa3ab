//! `vcpu_op`: online state, runstate, timers, `vcpu_info` placement.

use super::{Call, HcResult};
use crate::arch::{Arch, Vcpu, VcpuContext, VCPU_CONTEXT_MAX};
use crate::domain::{Domain, DomainState, Periodic, RunState};
use crate::guest_memory::{GuestTranslate, GuestVirt};
use crate::hypervisor::Hypervisor;
use core::sync::atomic::Ordering;
use keel_abi::vcpu::*;
use keel_abi::xen::{VIRQ_TIMER, VMASST_TYPE_RUNSTATE_UPDATE_FLAG};
use keel_abi::Errno;

/// The shortest periodic timer period: 1 ms.
const MIN_PERIOD_NS: u64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`.
const MAX_PERIOD_NS: u64 = u64::MAX >> 2;

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let v = c.arg32(1);
    let arg = c.args[2];
    if v >= c.domain.nr_vcpus() {
        return Err(Errno::ENOENT);
    }
    let state = &c.domain.vcpus[v as usize];
    match c.arg32(0) as u64 {
        VCPUOP_INITIALISE => initialise(c, v, arg),
        VCPUOP_UP => {
            {
                let mut s = state.lock();
                if !s.initialised {
                    return Err(Errno::EINVAL);
                }
                s.online = true;
                if s.run_state() == RunState::Offline && c.domain.state() == DomainState::Running {
                    s.set_run_state(RunState::Runnable, c.hv.now());
                }
            }
            c.hv.hooks.vcpu_online(c.domain.id(), v, true);
            c.hv.hooks.kick(c.domain.id(), v);
            Ok(0)
        }
        VCPUOP_DOWN => {
            c.hv.vcpu_down(c.domain, v);
            Ok(0)
        }
        VCPUOP_IS_UP => Ok(state.lock().online as u64),
        VCPUOP_GET_RUNSTATE_INFO => {
            let info = state.lock().runstate(c.hv.now());
            if c.compat {
                // 44 bytes: the 64-bit fields 4-aligned.
                c.guest.write_struct(arg, &VcpuRunstateInfoCompat::narrow(&info))?;
            } else {
                c.guest.write_struct(arg, &info)?;
            }
            Ok(0)
        }
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            let area: VcpuRegisterRunstateMemoryArea = c.guest.read_struct(arg)?;
            // A 32-bit caller's handle is the union's low half (Xen's `addr.h`).
            let addr = if c.compat { area.addr & 0xffff_ffff } else { area.addr };
            state.lock().runstate_area = Some(addr);
            if v == c.vcpu {
                update_runstate_area(c.hv, c.domain, v, c.translate);
            }
            Ok(0)
        }
        VCPUOP_SET_PERIODIC_TIMER => {
            let t: VcpuSetPeriodicTimer = c.guest.read_struct(arg)?;
            if !(MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&t.period_ns) {
                return Err(Errno::EINVAL);
            }
            let next_ns = c.hv.now().saturating_add(t.period_ns);
            state.lock().periodic = Some(Periodic { period_ns: t.period_ns, next_ns });
            c.hv.timers_changed(c.domain, v);
            Ok(0)
        }
        VCPUOP_STOP_PERIODIC_TIMER => {
            state.lock().periodic = None;
            c.hv.timers_changed(c.domain, v);
            Ok(0)
        }
        VCPUOP_SET_SINGLESHOT_TIMER => {
            if v != c.vcpu {
                return Err(Errno::EINVAL);
            }
            // Only `timeout_abs_ns` is used: its first 8 bytes, the same for 32-bit callers
            // (whose struct is 12 bytes, not 16).
            let mut b = [0u8; 8];
            c.guest.read(arg, &mut b)?;
            let t = VcpuSetSingleshotTimer { timeout_abs_ns: u64::from_le_bytes(b), ..Default::default() };
            if t.timeout_abs_ns < c.hv.now() {
                state.lock().singleshot_ns = None;
                c.hv.send_virq(c.domain, v, VIRQ_TIMER);
            } else {
                state.lock().singleshot_ns = Some(t.timeout_abs_ns);
            }
            c.hv.timers_changed(c.domain, v);
            Ok(0)
        }
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            if v != c.vcpu {
                return Err(Errno::EINVAL);
            }
            state.lock().singleshot_ns = None;
            c.hv.timers_changed(c.domain, v);
            Ok(0)
        }
        VCPUOP_REGISTER_VCPU_INFO => {
            let info: VcpuRegisterVcpuInfo = c.guest.read_struct(arg)?;
            let w = c.domain.events.lock().register_vcpu_info(&c.domain.mm, v, info.mfn, info.offset as u64)?;
            c.hv.apply(c.domain, w);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `VCPUOP_initialise`: the register state a vCPU that was never started begins in once
/// `VCPUOP_up` brings it online (the run loop creates it from the context). Xen's rules:
/// `-EEXIST` once the vCPU was initialised (started by any means), `-EINVAL` for a
/// context the architecture refuses.
fn initialise<A: Arch>(c: &Call<'_, '_, A>, v: u32, arg: u64) -> HcResult {
    let size = <A::Vcpu as Vcpu>::CONTEXT_SIZE;
    if size == 0 || size > VCPU_CONTEXT_MAX {
        return Err(Errno::ENOSYS);
    }
    let mut context = VcpuContext([0; VCPU_CONTEXT_MAX]);
    c.guest.read(arg, &mut context.0[..size])?;
    let mut s = c.domain.vcpus[v as usize].lock();
    if s.initialised {
        return Err(Errno::EEXIST);
    }
    <A::Vcpu as Vcpu>::check_context(&context.0[..size])?;
    s.initialised = true;
    s.context = Some(context);
    Ok(0)
}

/// Copies `vcpu`'s runstate into its registered runstate area (a guest virtual address,
/// translated by `translate`, which must be that vCPU's translation). With the
/// `runstate_update_flag` assist, `XEN_RUNSTATE_UPDATE` is set in `state_entry_time`
/// while the area is inconsistent. The area has the layout of the domain's shared_info
/// (Xen's `has_32bit_shinfo`): 44 bytes with `state_entry_time` at 4 once 32-bit code
/// latched the compat layout, else 48 with it at 8. The scheduler calls this when the
/// vCPU's state changes; failures are ignored, as Xen does.
pub fn update_runstate_area<A: Arch>(hv: &Hypervisor<'_, A>, d: &Domain<A>, vcpu: u32, translate: &dyn GuestTranslate) {
    let Some(s) = d.vcpus.get(vcpu as usize) else { return };
    let (area, info) = {
        let s = s.lock();
        let Some(area) = s.runstate_area else { return };
        (area, s.runstate(hv.now()))
    };
    let g = GuestVirt::new(&d.mm, translate);
    let flag = d.vm_assist.load(Ordering::Acquire) & (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG) != 0;
    let compat = d.shared_layout().word_bytes == 4;
    let entry = area.wrapping_add(if compat { VcpuRunstateInfoCompat::STATE_ENTRY_TIME as u64 } else { 8 });
    if flag {
        let _ = g.write(entry, &(info.state_entry_time | XEN_RUNSTATE_UPDATE).to_le_bytes());
    }
    let mut tagged = info;
    if flag {
        tagged.state_entry_time |= XEN_RUNSTATE_UPDATE;
    }
    let written = if compat {
        g.write_struct(area, &VcpuRunstateInfoCompat::narrow(&tagged))
    } else {
        g.write_struct(area, &tagged)
    };
    if written.is_ok() && flag {
        let _ = g.write(entry, &info.state_entry_time.to_le_bytes());
    }
}
