//! `keel.test=hvm-params`: `HVMOP_get_param` of every index below `HVM_NR_PARAMS` (and
//! past it) for the calling domain, and of another domain, reported as a table the boot
//! test holds against what Xen 4.17 answers a PVH domU (`docs/abi.md` §5.10 and §8):
//! the guest-readable indices succeed with their values, the others are `EPERM`, indices
//! from `HVM_NR_PARAMS` on are `EINVAL`; a domain that does not exist is `ESRCH`. Then the writes Xen checks: `X87_FIP_WIDTH`
//! takes only 0, 4 and 8, and `VM86_TSS` reads back as the low half of `VM86_TSS_SIZED`.

use core::fmt::Write;
use keel_abi::hvm::*;
use keel_abi::xen::DOMID_SELF;
use keel_abi::Errno;
use keel_test_guest::console::Text;
use keel_test_guest::hcall::{err, name, Hv, Ret};
use keel_test_guest::{expect_eq, say, Outcome, Platform};

fn get(p: &impl Platform, domid: u16, index: u32) -> (Ret, u64) {
    let mut a = XenHvmParam { domid, _pad: [0; 2], index, value: 0x5a5a };
    let r = Hv(p).hvm_op(HVMOP_GET_PARAM, &mut a);
    (r, a.value)
}

fn set(p: &impl Platform, index: u32, value: u64) -> Ret {
    let mut a = XenHvmParam { domid: DOMID_SELF, _pad: [0; 2], index, value };
    Hv(p).hvm_op(HVMOP_SET_PARAM, &mut a)
}

/// Appends `indices` (ascending) to `t` as ranges: `3-14 16 20-33`.
fn ranges(t: &mut Text<400>, indices: &[u32]) {
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        let _ = if j > i { write!(t, " {}-{}", indices[i], indices[j]) } else { write!(t, " {}", indices[i]) };
        i = j + 1;
    }
}

/// `keel.test=hvm-params`.
pub fn run(p: &impl Platform) -> Outcome {
    let mut readable = Text::<400>::new();
    let (mut eperm, mut einval, mut other) = ([0u32; 64], [0u32; 64], [0u32; 64]);
    let (mut n_eperm, mut n_einval, mut n_other) = (0, 0, 0);
    let _ = write!(readable, "hvm-params: readable");
    for index in 0..HVM_NR_PARAMS + 2 {
        match get(p, DOMID_SELF, index) {
            (0, v) => {
                let _ = write!(readable, " {index}={v:#x}");
            }
            (r, _) if r == err(Errno::EPERM) => {
                eperm[n_eperm] = index;
                n_eperm += 1;
            }
            (r, _) if r == err(Errno::EINVAL) => {
                einval[n_einval] = index;
                n_einval += 1;
            }
            (r, _) => {
                say!(p, "hvm-params: index {index}: {}", name(r));
                other[n_other] = index;
                n_other += 1;
            }
        }
    }
    let (r, _) = get(p, DOMID_SELF, u32::MAX);
    expect_eq!(r, err(Errno::EINVAL), "get_param of index 0xffffffff");
    say!(p, "{}", readable.as_str());
    let mut t = Text::<400>::new();
    let _ = write!(t, "hvm-params: EPERM");
    ranges(&mut t, &eperm[..n_eperm]);
    let _ = write!(t, "; EINVAL");
    ranges(&mut t, &einval[..n_einval]);
    if n_other > 0 {
        let _ = write!(t, "; other");
        ranges(&mut t, &other[..n_other]);
    }
    say!(p, "{}", t.as_str());
    // (Another live domain's parameters are EPERM: the host tests check that, as the
    // other domains of a boot may have ended by now.)
    let (r, _) = get(p, 0x100, HVM_PARAM_CALLBACK_IRQ);
    say!(p, "hvm-params: CALLBACK_IRQ of a domain that does not exist {}", name(r));
    let fip: [Ret; 4] = [0, 4, 8, 3].map(|v| set(p, HVM_PARAM_X87_FIP_WIDTH, v));
    let (_, width) = get(p, DOMID_SELF, HVM_PARAM_X87_FIP_WIDTH);
    say!(
        p,
        "hvm-params: X87_FIP_WIDTH set 0 {}, 4 {}, 8 {}, 3 {}; reads {width}",
        name(fip[0]),
        name(fip[1]),
        name(fip[2]),
        name(fip[3])
    );
    let r = set(p, HVM_PARAM_VM86_TSS, 0x1000);
    let (_, tss) = get(p, DOMID_SELF, HVM_PARAM_VM86_TSS);
    let (_, sized) = get(p, DOMID_SELF, HVM_PARAM_VM86_TSS_SIZED);
    say!(p, "hvm-params: VM86_TSS set 0x1000 {}; reads {tss:#x}, VM86_TSS_SIZED {sized:#x}", name(r));
    Ok(())
}
