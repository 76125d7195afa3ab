use super::*;

/// A host like Bochs' `corei7_skylake_x` in the bits that matter here.
fn host(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = |eax, ebx, ecx, edx| CpuidResult { eax, ebx, ecx, edx };
    match (leaf, subleaf) {
        (0, _) => r(0x16, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
        (1, _) => r(0x50654, 0x0410_0800, 0x7ffa_f3bf, 0xbfeb_fbff),
        (4, 0) => r(0x3c00_4121, 0x01c0_003f, 0x3f, 0),
        (7, 0) => r(0, 0xd19f_4fbb, 0x0000_0008, 0x9c00_0000),
        (0xb, _) => r(1, 2, 0x100, 3),
        (0xd, 0) => r(7, 0x340, 0x340, 0),
        (0x8000_0000, _) => r(0x8000_0008, 0, 0, 0),
        (0x8000_0001, _) => r(0, 0, 0x121, 0x2c10_0800),
        (0x8000_0007, _) => r(0, 0, 0, 0x100),
        (0x8000_0008, _) => r(0x3027, 0x0100_d000, 0x0000_0003, 0),
        _ => r(0xdead, 0xbeef, 0xdead, 0xbeef),
    }
}

fn ctx(vcpu_id: u32) -> Context {
    Context { vcpu_id, domain_id: 3, tsc_khz: 2_000_000, x2apic: false, tsc_deadline: false, upcall_vector: true }
}

#[test]
fn xen_leaves() {
    let c = ctx(5);
    let q = |l, s| leaf(l, s, &c, &host);
    assert_eq!(q(0x4000_0000, 0), [0x4000_0005, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e]);
    let sig: Vec<u8> = q(0x4000_0000, 0)[1..].iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(&sig, b"XenVMMXenVMM");
    assert_eq!(q(0x4000_0001, 0), [0x0004_0013, 0, 0, 0], "Xen 4.19");
    assert_eq!(q(0x4000_0002, 0), [1, 0x4000_0000, 0, 0], "one hypercall page through MSR 0x40000000");
    assert_eq!(q(0x4000_0003, 0), [0, 0, 2_000_000, 0]);
    assert_eq!(q(0x4000_0004, 0), [0x58, 5, 3, 0], "VCPU_ID_PRESENT, DOMID_PRESENT, UPCALL_VECTOR");
    assert_eq!(leaf(0x4000_0004, 0, &Context { upcall_vector: false, ..c }, &host)[0], 0x18);
    assert_eq!(q(0x4000_0005, 0), [0; 4]);
    assert_eq!(q(0x4000_0006, 0), [0; 4], "past the last Xen leaf");
    assert_eq!(q(0x4000_0100, 0), [0; 4]);
}

#[test]
fn host_leaves_are_filtered() {
    let c = ctx(2);
    let q = |l, s| leaf(l, s, &c, &host);
    assert_eq!(q(0, 0), [0x16, 0x756e_6547, 0x6c65_746e, 0x4965_6e69], "the real vendor");
    let [a, b, cx, d] = q(1, 0);
    assert_eq!(a, 0x50654);
    assert_eq!(b >> 24, 2, "APIC id = vCPU id");
    assert_eq!((b >> 16) & 0xff, 1);
    assert_eq!(cx & (1 << 5), 0, "no VMX");
    assert_ne!(cx & (1 << 31), 0, "hypervisor bit");
    assert_eq!(
        cx & (1 << 3 | 1 << 21 | 1 << 24 | 1 << 26 | 1 << 27 | 1 << 28),
        0,
        "no monitor, x2APIC, deadline, XSAVE, AVX"
    );
    assert_eq!(d & (1 << 7 | 1 << 12 | 1 << 14 | 1 << 28), 0, "no MCE, MTRR, MCA, HTT");
    assert_ne!(d & (1 << 9), 0, "a local APIC");
    let with_apic = Context { x2apic: true, tsc_deadline: true, ..c };
    assert_eq!(leaf(1, 0, &with_apic, &host)[2] & (1 << 21 | 1 << 24), 1 << 21 | 1 << 24);
    assert_eq!(q(4, 0)[0], 0x121, "no core or thread counts");
    assert_eq!(
        q(7, 0),
        [
            0,
            0xd19f_4fbb & (1 | 1 << 3 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 24 | 1 << 29),
            0,
            0
        ]
    );
    assert_eq!(q(7, 1), [0; 4]);
    assert_eq!(q(0xb, 0), [0; 4], "no topology leaf");
    assert_eq!(q(0xd, 0), [0; 4], "no XSAVE");
    assert_eq!(q(0x17, 0), [0; 4], "above the basic range");
    let ext = q(0x8000_0001, 0);
    assert_eq!(ext[2] & (1 << 2), 0, "no SVM");
    assert_eq!(ext[3] & (1 << 27), 0, "no RDTSCP");
    assert_ne!(ext[3] & (1 << 29 | 1 << 20 | 1 << 11), 0, "LM, NX, SYSCALL");
    assert_eq!(q(0x8000_0007, 0), [0, 0, 0, 0x100], "invariant TSC");
    assert_eq!(q(0x8000_0008, 0), [0x3027, 0, 0, 0]);
    assert_eq!(q(0x8000_000a, 0), [0; 4], "no SVM leaf");
}

#[test]
fn cr4_follows_the_features() {
    let allowed = cr4_allowed(&host);
    assert_eq!(allowed & (1 << 13 | 1 << 18 | 1 << 22 | 1 << 12 | 1 << 6), 0, "no VMXE, OSXSAVE, PKE, LA57, MCE");
    assert_eq!(
        allowed & (1 << 5 | 1 << 7 | 1 << 9 | 1 << 16 | 1 << 20 | 1 << 21),
        1 << 5 | 1 << 7 | 1 << 9 | 1 << 16 | 1 << 20 | 1 << 21
    );
}
