//! Keel's control hypercall (`KEEL_CONTROL_OP`, `docs/control-abi.md`): the capability
//! check and the decoding and validation of each sub-op's struct; the operations are in
//! `crate::control`.

use super::{Call, HcResult};
use crate::arch::Arch;
use crate::control::{is_control, is_xenstore};
use keel_abi::control::*;
use keel_abi::Errno;

/// The sub-ops a xenstore domain without the control capability may use: what it needs
/// to find and introduce the domains.
const XENSTORE_OPS: [u32; 4] = [CTL_VERSION, CTL_LIST, CTL_QUERY, CTL_STORE_INFO];

/// `control_op(cmd, arg)`.
pub fn control_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    // Keel's own interface has one (64-bit) layout.
    if c.compat {
        return Err(Errno::ENOSYS);
    }
    let allowed = is_control(c.domain) || (is_xenstore(c.domain) && XENSTORE_OPS.contains(&c.arg32(0)));
    if !allowed {
        return Err(Errno::EPERM);
    }
    let arg = c.args[1];
    let hv = c.hv;
    match c.arg32(0) {
        CTL_VERSION => Ok(u64::from(CONTROL_VERSION.packed())),
        CTL_LIST => list(c, arg),
        CTL_QUERY => {
            let q: CtlDomainInfo = c.guest.read_struct(arg)?;
            let d = hv.control_query_target(c.domain, q.domid)?;
            c.guest.write_struct(arg, &hv.control_info(&d))?;
            Ok(0)
        }
        CTL_PAUSE | CTL_UNPAUSE | CTL_DESTROY => {
            let a: CtlDomain = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            let d = hv.control_target(c.domain, a.domid)?;
            match c.arg32(0) {
                CTL_PAUSE => hv.control_pause(c.domain, &d)?,
                CTL_UNPAUSE => hv.control_unpause(c.domain, &d)?,
                _ => hv.control_destroy(c.domain, d)?,
            }
            Ok(0)
        }
        CTL_SHUTDOWN => {
            let a: CtlShutdown = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            let d = hv.control_target(c.domain, a.domid)?;
            hv.control_shutdown(c.domain, &d, a.reason)?;
            Ok(0)
        }
        CTL_GET_SCHED => {
            let a: CtlSched = c.guest.read_struct(arg)?;
            let d = hv.control_target(c.domain, a.domid)?;
            let p = hv.control_sched(&d)?;
            let out = CtlSched { domid: a.domid, weight: p.weight, cap: p.cap, _pad: [0; 3] };
            c.guest.write_struct(arg, &out)?;
            Ok(0)
        }
        CTL_SET_SCHED => {
            let a: CtlSched = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            let d = hv.control_target(c.domain, a.domid)?;
            hv.control_set_sched(&d, a.weight, a.cap)?;
            Ok(0)
        }
        CTL_SET_AFFINITY => {
            let a: CtlAffinity = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            let d = hv.control_target(c.domain, a.domid)?;
            hv.control_set_affinity(&d, a.vcpu, a.cpumap)?;
            Ok(0)
        }
        CTL_CONSOLE_READ => console_read(c, arg),
        CTL_CONSOLE_WRITE => {
            let a: CtlConsole = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            if a.len > CTL_CONSOLE_MAX || a.offset != 0 {
                return Err(Errno::EINVAL);
            }
            let d = hv.control_target(c.domain, a.domid)?;
            let mut bytes = alloc::vec![0u8; usize::try_from(a.len).map_err(|_| Errno::EINVAL)?];
            c.guest.read(a.buffer, &mut bytes)?;
            hv.control_console_write(&d, &bytes);
            Ok(u64::from(a.len))
        }
        CTL_STORE_INFO => {
            let a: CtlStore = c.guest.read_struct(arg)?;
            let d = hv.control_target(c.domain, a.domid)?;
            let evtchn = d.param(keel_abi::hvm::HVM_PARAM_STORE_EVTCHN);
            let out = CtlStore {
                domid: a.domid,
                _pad: [0; 2],
                evtchn: u32::try_from(evtchn).map_err(|_| Errno::EINVAL)?,
                gfn: d.param(keel_abi::hvm::HVM_PARAM_STORE_PFN),
            };
            c.guest.write_struct(arg, &out)?;
            Ok(0)
        }
        CTL_CREATE => create(c, arg),
        CTL_LOAD => {
            let a: CtlLoad = c.guest.read_struct(arg)?;
            hv.control_load(&c.guest, &a)?;
            Ok(0)
        }
        CTL_START => {
            let a: CtlStart = c.guest.read_struct(arg)?;
            hv.control_queue_start((c.domain.id(), c.vcpu), &a)?;
            Ok(0)
        }
        CTL_PHYSINFO => {
            c.guest.write_struct(arg, &hv.control_physinfo())?;
            Ok(0)
        }
        CTL_STORE_CONNECT => {
            let a: CtlStore = c.guest.read_struct(arg)?;
            zero(&a._pad)?;
            if a.gfn != 0 {
                return Err(Errno::EINVAL);
            }
            let d = hv.control_target(c.domain, a.domid)?;
            hv.store_connect(&d, a.evtchn)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `CTL_CREATE`: the checks, the command line read from the caller; the run loop creates
/// the domain and makes its id the result (`run/create.rs`).
fn create<A: Arch>(c: &Call<'_, '_, A>, arg: u64) -> HcResult {
    let a: CtlCreate = c.guest.read_struct(arg)?;
    let mut args = crate::control::builds::check_create(&a)?;
    if a.cmdline_len > 0 {
        let mut bytes = alloc::vec![0u8; usize::try_from(a.cmdline_len).map_err(|_| Errno::EINVAL)?];
        c.guest.read(a.cmdline, &mut bytes)?;
        let text = core::str::from_utf8(&bytes).map_err(|_| Errno::EINVAL)?;
        if text.contains('\0') {
            return Err(Errno::EINVAL);
        }
        args.cmdline = Some(text.into());
    }
    c.hv.control_queue_create((c.domain.id(), c.vcpu), args)?;
    Ok(0)
}

/// `-EINVAL` unless every padding byte is zero.
fn zero(pad: &[u8]) -> Result<(), Errno> {
    if pad.iter().any(|&b| b != 0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn list<A: Arch>(c: &Call<'_, '_, A>, arg: u64) -> HcResult {
    let a: CtlList = c.guest.read_struct(arg)?;
    zero(&a._pad)?;
    if a.max_entries > CTL_LIST_MAX {
        return Err(Errno::EINVAL);
    }
    let max = usize::try_from(a.max_entries).map_err(|_| Errno::EINVAL)?;
    let infos = c.hv.control_list(a.start_domid, max);
    for (i, info) in infos.iter().enumerate() {
        c.guest.write_element(a.buffer, i as u64, info)?;
    }
    Ok(infos.len() as u64)
}

fn console_read<A: Arch>(c: &Call<'_, '_, A>, arg: u64) -> HcResult {
    let a: CtlConsole = c.guest.read_struct(arg)?;
    zero(&a._pad)?;
    if a.len > CTL_CONSOLE_MAX {
        return Err(Errno::EINVAL);
    }
    let d = c.hv.control_target(c.domain, a.domid)?;
    let max = usize::try_from(a.len).map_err(|_| Errno::EINVAL)?;
    let (start, bytes) = c.hv.control_console_read(&d, a.offset, max);
    c.guest.write(a.buffer, &bytes)?;
    c.guest.write_struct(arg, &CtlConsole { offset: start, ..a })?;
    Ok(bytes.len() as u64)
}
