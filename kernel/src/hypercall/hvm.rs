//! `hvm_op`: HVM parameters and the x86 per-vCPU upcall vector.

use super::{Call, HcResult};
use crate::arch::Arch;
use keel_abi::hvm::*;
use keel_abi::layout::GuestArch;
use keel_abi::Errno;

/// Xen's marker in `VM86_TSS_SIZED` that the TSS was set (never read back).
const VM86_TSS_UPDATED: u64 = 1 << 63;
/// The smallest and largest useful VM86 TSS: a 32-bit TSS (104 bytes), then with the
/// interrupt redirection and I/O bitmaps and a padding byte.
const VM86_TSS_MIN: u64 = 104;
const VM86_TSS_MAX: u64 = 104 + 0x100 / 8 + 0x10000 / 8 + 1;

/// What an x86 guest's write of `value` to parameter `index` stores, and where, as Xen
/// 4.17's `hvmop_set_param` checks and folds it: `VM86_TSS` becomes `VM86_TSS_SIZED`
/// (a 32-bit address, 128 bytes), `VM86_TSS_SIZED` needs at least a 32-bit TSS and is
/// capped, `X87_FIP_WIDTH` is 0, 4 or 8. (Xen also crashes a domain that gives itself a
/// VM86 TSS address above 4 GiB or too small a size; Keel only refuses it.)
fn x86_param_write(index: u32, value: u64) -> Result<(u32, u64), Errno> {
    match index {
        HVM_PARAM_VM86_TSS => {
            if value >> 32 != 0 {
                return Err(Errno::EINVAL);
            }
            let sized = if value == 0 { 0 } else { value | 128 << 32 | VM86_TSS_UPDATED };
            Ok((HVM_PARAM_VM86_TSS_SIZED, sized))
        }
        HVM_PARAM_VM86_TSS_SIZED => {
            let size = value >> 32;
            if size < VM86_TSS_MIN {
                return Err(Errno::EINVAL);
            }
            let value = if size > VM86_TSS_MAX { (value & 0xffff_ffff) | VM86_TSS_MAX << 32 } else { value };
            Ok((index, value | VM86_TSS_UPDATED))
        }
        HVM_PARAM_X87_FIP_WIDTH if !matches!(value, 0 | 4 | 8) => Err(Errno::EINVAL),
        _ => Ok((index, value)),
    }
}

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
            let x86 = c.domain.layout().arch == GuestArch::X86_64;
            let mut params = d.params.lock();
            if op == HVMOP_SET_PARAM {
                if !GUEST_WRITABLE_PARAMS.contains(&p.index) {
                    return Err(Errno::EPERM);
                }
                let (index, value) = if x86 { x86_param_write(p.index, p.value)? } else { (p.index, p.value) };
                *params.get_mut(usize::try_from(index).map_err(|_| Errno::EINVAL)?).ok_or(Errno::EINVAL)? = value;
                drop(params);
                if index == HVM_PARAM_CALLBACK_IRQ {
                    // Xen latches the shared_info layout here (`hvm_latch_shinfo_size`).
                    d.latch_shared_layout(c.compat);
                }
            } else {
                if !GUEST_READABLE_PARAMS.contains(&p.index) {
                    return Err(Errno::EPERM);
                }
                let stored = |i: u32| usize::try_from(i).ok().and_then(|i| params.get(i).copied()).unwrap_or(0);
                p.value = match p.index {
                    HVM_PARAM_VM86_TSS if x86 => stored(HVM_PARAM_VM86_TSS_SIZED) & 0xffff_ffff,
                    HVM_PARAM_VM86_TSS_SIZED if x86 => stored(HVM_PARAM_VM86_TSS_SIZED) & !VM86_TSS_UPDATED,
                    i => stored(i),
                };
                drop(params);
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
