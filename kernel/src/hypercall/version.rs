//! `xen_version`: the version Keel reports, its strings, and the feature bits.

use super::{Call, HcResult};
use crate::arch::Arch;
use alloc::format;
use keel_abi::features::{FEATURES_AARCH64, FEATURES_X86_64, XENFEAT_DOM0};
use keel_abi::layout::GuestArch;
use keel_abi::version::*;
use keel_abi::Errno;

/// Copies `s` NUL-padded into a `len`-byte guest buffer.
fn write_str<A: Arch>(c: &Call<'_, '_, A>, va: u64, s: &str, len: usize) -> HcResult {
    let mut buf = alloc::vec![0u8; len];
    let n = s.len().min(len - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    c.guest.write(va, &buf)?;
    Ok(0)
}

fn field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

/// `xen_version(cmd, arg)`. The sub-ops that only return a value (guests' null
/// hypercall is `XENVER_version`) are answered without the others' stack frame.
pub fn xen_version<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    match c.arg32(0) as u64 {
        XENVER_VERSION => Ok(XEN_VERSION_REPORTED.packed() as u64),
        XENVER_PAGESIZE => Ok(4096),
        cmd => xen_version_info(c, cmd),
    }
}

/// The sub-ops of `xen_version` that read or write guest memory.
#[inline(never)]
fn xen_version_info<A: Arch>(c: &Call<'_, '_, A>, cmd: u64) -> HcResult {
    let arg = c.args[1];
    let arch = || c.domain.layout().arch;
    match cmd {
        XENVER_EXTRAVERSION => write_str(c, arg, XEN_EXTRAVERSION, EXTRAVERSION_LEN),
        XENVER_COMPILE_INFO => {
            let info = XenCompileInfo {
                compiler: field("rustc"),
                compile_by: field("keel"),
                compile_domain: field(""),
                compile_date: field(""),
            };
            c.guest.write_struct(arg, &info)?;
            Ok(0)
        }
        XENVER_CAPABILITIES => {
            let caps = match arch() {
                GuestArch::X86_64 => "hvm-3.0-x86_64",
                GuestArch::Aarch64 => "xen-3.0-aarch64",
            };
            write_str(c, arg, caps, CAPABILITIES_LEN)
        }
        XENVER_CHANGESET => write_str(c, arg, &format!("{CHANGESET_PREFIX}{ABI_VERSION}"), CHANGESET_LEN),
        XENVER_PLATFORM_PARAMETERS => {
            if c.compat {
                // A 32-bit `xen_ulong_t`.
                c.guest.write(arg, &0u32.to_le_bytes())?;
            } else {
                c.guest.write_struct(arg, &XenPlatformParameters { virt_start: 0 })?;
            }
            Ok(0)
        }
        XENVER_GET_FEATURES => {
            let mut fi: XenFeatureInfo = c.guest.read_struct(arg)?;
            if fi.submap_idx != 0 {
                return Err(Errno::EINVAL);
            }
            let base = match arch() {
                GuestArch::X86_64 => FEATURES_X86_64,
                GuestArch::Aarch64 => FEATURES_AARCH64,
            };
            // Xen sets XENFEAT_dom0 for its hardware domain; arm64 Linux takes it as
            // SIF_INITDOMAIN (without it, its privcmd waits for a xenstore `target`).
            let dom0 = if c.domain.config().initial { 1 << XENFEAT_DOM0 } else { 0 };
            fi.submap = base | dom0;
            c.guest.write_struct(arg, &fi)?;
            Ok(0)
        }
        XENVER_GUEST_HANDLE => {
            c.guest.write(arg, &c.domain.config().handle)?;
            Ok(0)
        }
        XENVER_COMMANDLINE | XENVER_BUILD_ID => Err(Errno::EPERM),
        _ => Err(Errno::ENOSYS),
    }
}
