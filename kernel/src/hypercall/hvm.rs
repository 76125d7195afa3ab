//! `hvm_op`: HVM parameters and the x86 per-vCPU upcall vector.

use super::{Call, HcResult};
use crate::arch::Arch;
use keel_abi::hvm::*;
use keel_abi::layout::GuestArch;
use keel_abi::Errno;

/// `hvm_op(op, arg)`.
pub fn hvm_op<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let arg = c.args[1];
    match c.args[0] {
        op @ (HVMOP_SET_PARAM | HVMOP_GET_PARAM) => {
            let mut p: XenHvmParam = c.guest.read_struct(arg)?;
            if p.index >= HVM_NR_PARAMS {
                return Err(Errno::EINVAL);
            }
            let d = c.hv.resolve(c.domain, p.domid).ok_or(Errno::ESRCH)?;
            if d.id() != c.domain.id() {
                return Err(Errno::EPERM);
            }
            if op == HVMOP_SET_PARAM {
                if !GUEST_WRITABLE_PARAMS.contains(&p.index) {
                    return Err(Errno::EPERM);
                }
                d.params.lock()[p.index as usize] = p.value;
            } else {
                if !GUEST_READABLE_PARAMS.contains(&p.index) {
                    return Err(Errno::EPERM);
                }
                p.value = d.params.lock()[p.index as usize];
                c.guest.write_struct(arg, &p)?;
            }
            Ok(0)
        }
        HVMOP_SET_EVTCHN_UPCALL_VECTOR if c.domain.layout().arch == GuestArch::X86_64 => {
            let u: XenHvmEvtchnUpcallVector = c.guest.read_struct(arg)?;
            if u.vector < 0x10 {
                return Err(Errno::EINVAL);
            }
            let v = c.domain.vcpus.get(u.vcpu as usize).ok_or(Errno::ENOENT)?;
            v.lock().upcall_vector = Some(u.vector);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
