//! `vm_assist`: only `runstate_update_flag` exists for Keel's guests.

use super::{Call, HcResult};
use crate::arch::Arch;
use core::sync::atomic::Ordering;
use keel_abi::xen::{VMASST_CMD_DISABLE, VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG};
use keel_abi::Errno;

/// Assists a guest may enable.
const VALID: u64 = 1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG;

/// `vm_assist(cmd, type)`.
pub fn vm_assist<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let kind = c.arg32(1) as u64;
    if kind >= 64 || VALID & (1 << kind) == 0 {
        return Err(Errno::EINVAL);
    }
    match c.arg32(0) as u64 {
        VMASST_CMD_ENABLE => c.domain.vm_assist.fetch_or(1 << kind, Ordering::AcqRel),
        VMASST_CMD_DISABLE => c.domain.vm_assist.fetch_and(!(1 << kind), Ordering::AcqRel),
        _ => return Err(Errno::ENOSYS),
    };
    Ok(0)
}
