//! `keel.test=hypercalls`: what every guest learns first, and how Keel treats bad calls.

use crate::hcall::{err, name, Hv};
use crate::{ensure, expect_eq, say, Outcome, Platform};
use keel_abi::version::*;
use keel_abi::Errno;

/// A NUL-terminated string in `buf`.
fn c_str(buf: &[u8]) -> &str {
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    core::str::from_utf8(&buf[..n]).unwrap_or("<non-UTF-8>")
}

pub fn run<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    say!(p, "hypercalls on {}: {} CPU(s), RAM [{:#x}, {:#x})", P::ARCH, p.nr_cpus(), p.ram().0, p.ram().1);

    let v = hv.xen_version(XENVER_VERSION, 0);
    expect_eq!(v, 0x0004_0013, "XENVER_version");
    say!(p, "xen_version: {}.{}", v >> 16, v & 0xffff);

    let mut extra = [0xffu8; EXTRAVERSION_LEN];
    expect_eq!(hv.xen_version(XENVER_EXTRAVERSION, extra.as_mut_ptr() as usize), 0, "XENVER_extraversion");
    expect_eq!(c_str(&extra), XEN_EXTRAVERSION, "extraversion");
    ensure!(extra[XEN_EXTRAVERSION.len()..].iter().all(|&b| b == 0), "extraversion is not NUL-padded: {extra:x?}");
    say!(p, "extraversion: {}", c_str(&extra));

    let mut info = XenFeatureInfo { submap_idx: 0, submap: 0 };
    expect_eq!(hv.with(keel_abi::hypercall::XEN_VERSION, XENVER_GET_FEATURES, &mut info), 0, "XENVER_get_features");
    // XENFEAT_dom0 is the initial domain's alone; the harness checks which domain saw it.
    let dom0 = 1 << keel_abi::features::XENFEAT_DOM0;
    expect_eq!(info.submap & !dom0, P::FEATURES, "feature submap 0 (beside XENFEAT_dom0)");
    say!(p, "features: {:#010x}", info.submap);
    let mut info = XenFeatureInfo { submap_idx: 1, submap: 0 };
    let r = hv.with(keel_abi::hypercall::XEN_VERSION, XENVER_GET_FEATURES, &mut info);
    expect_eq!(r, err(Errno::EINVAL), "get_features submap 1");

    let mut changeset = [0u8; CHANGESET_LEN];
    expect_eq!(hv.xen_version(XENVER_CHANGESET, changeset.as_mut_ptr() as usize), 0, "XENVER_changeset");
    let abi = c_str(&changeset);
    ensure!(abi.starts_with(CHANGESET_PREFIX), "changeset '{abi}' does not name the Keel ABI");
    say!(p, "changeset: {abi}");
    expect_eq!(hv.xen_version(XENVER_PAGESIZE, 0), 4096, "XENVER_pagesize");

    // console_io: every line above went through it; the limits.
    let big = [b'x'; 8];
    let r = hv.raw(keel_abi::hypercall::CONSOLE_IO, [keel_abi::xen::CONSOLEIO_WRITE, 65537, big.as_ptr() as u64, 0, 0]);
    expect_eq!(r, err(Errno::EINVAL), "console_io write of 65537 bytes");
    expect_eq!(hv.raw(keel_abi::hypercall::CONSOLE_IO, [7, 0, 0, 0, 0]), err(Errno::ENOSYS), "console_io cmd 7");
    say!(p, "console_io: ok");

    for number in [63u64, 64, 1000, u64::MAX] {
        let r = hv.raw(number, [0; 5]);
        expect_eq!(r, err(Errno::ENOSYS), "an unknown hypercall");
        say!(p, "unknown hypercall {number:#x}: {}", name(r));
    }

    bad_pointers(p)?;
    aliased_pointer(p)
}

/// Pointers Keel cannot use give -EFAULT, and nothing is written.
fn bad_pointers<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    let unmapped = p.unmapped_va();
    let r = hv.xen_version(XENVER_EXTRAVERSION, unmapped);
    expect_eq!(r, err(Errno::EFAULT), "extraversion to an unmapped address");
    say!(p, "bad pointer (unmapped {unmapped:#x}): {}", name(r));
    // Mapped by the guest, but guest-physical space that is not RAM.
    let (hole, _) = p.hole();
    let r = hv.xen_version(XENVER_EXTRAVERSION, hole as usize);
    expect_eq!(r, err(Errno::EFAULT), "extraversion into a hole");
    say!(p, "bad pointer (hole {hole:#x}): {}", name(r));
    let r = hv.raw(keel_abi::hypercall::CONSOLE_IO, [keel_abi::xen::CONSOLEIO_WRITE, 4, unmapped as u64, 0, 0]);
    expect_eq!(r, err(Errno::EFAULT), "console_io from an unmapped address");
    Ok(())
}

/// A pointer through a second mapping of the same memory reaches that memory: Keel
/// walked the guest's page tables rather than taking the address as physical.
fn aliased_pointer<P: Platform>(p: &P) -> Outcome {
    let hv = Hv(p);
    let mut buf = [0u8; EXTRAVERSION_LEN];
    let Some(alias) = p.alias(buf.as_mut_ptr() as usize) else {
        say!(p, "aliased pointer: no alias mapping on this platform");
        return Ok(());
    };
    expect_eq!(hv.xen_version(XENVER_EXTRAVERSION, alias), 0, "extraversion through the alias");
    // Keel wrote through the alias; read the buffer through its own name.
    let seen = reread(&buf);
    expect_eq!(c_str(&seen), XEN_EXTRAVERSION, "extraversion written through the alias");
    say!(p, "aliased pointer {alias:#x} -> gpa {:#x}: ok", p.gpa(buf.as_ptr() as usize));
    Ok(())
}

/// Reads `buf` after Keel wrote it behind the compiler's back.
fn reread<const N: usize>(buf: &[u8; N]) -> [u8; N] {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    core::hint::black_box(*buf)
}
