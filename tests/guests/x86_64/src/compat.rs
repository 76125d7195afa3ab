//! `keel.test=compat-hypercalls`: hypercalls from 32-bit code (a 32-bit code segment
//! under long mode, EAX and EBX..EDI), whose structs have Xen's compat layouts. The one
//! that stopped every 32-bit guest — `XENMEM_add_to_physmap` of shared_info, 16 bytes —
//! now places it (the same bytes read with the 64-bit layout are refused); a 32-bit
//! `xen_memory_reservation` gives a frame back; calls whose layouts are the same answer
//! as for 64-bit code; `SCHEDOP_poll` and grant `setup_table` read their 16-byte compat
//! structs (`docs/abi.md` §2). `legacy32` makes these calls with EFER.LMA clear.

use keel_abi::grant::GNTTABOP_SETUP_TABLE;
use keel_abi::hvm::{HVMOP_GET_PARAM, HVM_PARAM_CONSOLE_PFN};
use keel_abi::hypercall::{GRANT_TABLE_OP, HVM_OP, MEMORY_OP, SCHED_OP, XEN_VERSION};
use keel_abi::memory::{XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP, XENMEM_DECREASE_RESERVATION};
use keel_abi::sched::SCHEDOP_POLL;
use keel_abi::xen::DOMID_SELF;
use keel_abi::Errno;
use keel_test_guest::hcall::{err, name, Hv};
use keel_test_guest::{ensure, expect_eq, say, Outcome, Platform};

core::arch::global_asm!(
    r#"
/* i32 guest_compat_hypercall(u32 nr, u32 a1, u32 a2, u32 a3, u32 a4, u32 a5): enters
 * compatibility mode through the flat 32-bit code segment (0x18), makes the hypercall
 * with Xen's 32-bit convention, and comes back to 64-bit code (0x08). Interrupts are
 * masked meanwhile; every pointer passed must be below 4 GiB. */
        .global guest_compat_hypercall
guest_compat_hypercall:
        push    %rbx
        push    %rbp
        pushfq
        cli
        mov     %edi, %eax
        mov     %esi, %ebx
        mov     %ecx, %r10d
        mov     %edx, %ecx
        mov     %r10d, %edx
        mov     %r8d, %esi
        mov     %r9d, %edi
        lea     1f(%rip), %r11
        pushq   $0x18
        push    %r11
        lretq
        .code32
1:      vmcall
        ljmp    $0x08, $2f
        .code64
2:      popfq
        pop     %rbp
        pop     %rbx
        ret
"#,
    options(att_syntax)
);

extern "C" {
    fn guest_compat_hypercall(nr: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32) -> i32;
}

/// Hypercall `nr` from 32-bit code; the result sign-extended as a 32-bit guest sees it.
pub(crate) fn call32(nr: u64, args: [u64; 2]) -> i64 {
    // SAFETY: the trampoline preserves the registers the ABI asks for; the arguments are
    // numbers or addresses of this guest's memory below 4 GiB.
    i64::from(unsafe { guest_compat_hypercall(nr as u32, args[0] as u32, args[1] as u32, 0, 0, 0) })
}

/// `keel.test=compat-hypercalls`.
pub fn run(p: &impl Platform) -> Outcome {
    let version = call32(XEN_VERSION, [0, 0]);
    expect_eq!(version, 0x0004_0013, "xen_version from 32-bit code");
    let (Some(args), Some(target), Some(list)) =
        (keel_test_guest::pages::alloc(), keel_test_guest::pages::alloc(), keel_test_guest::pages::alloc())
    else {
        keel_test_guest::fail!("out of guest pages")
    };
    let a = args.va() as u64;
    ensure!(a < 1 << 32 && target.va() < 1 << 32, "guest pages above 4 GiB");
    target.fill(0, &[0xaa; 64]);
    let gfn = p.gpa(target.va()) >> 12;
    // compat_add_to_physmap: domid, size, space, idx (u32), gpfn (u32); then 8 bytes a
    // 64-bit reader would take as the rest of idx and gpfn.
    let mut bytes = [0u8; 24];
    bytes[..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    bytes[4..8].copy_from_slice(&XENMAPSPACE_SHARED_INFO.to_le_bytes());
    bytes[12..16].copy_from_slice(&(gfn as u32).to_le_bytes());
    bytes[16..24].copy_from_slice(&[0xee; 8]);
    args.fill(0, &bytes);
    let wide = Hv(p).raw(MEMORY_OP, [XENMEM_ADD_TO_PHYSMAP, a, 0, 0, 0]);
    expect_eq!(wide, err(Errno::EINVAL), "the compat add_to_physmap bytes from 64-bit code");
    expect_eq!(call32(MEMORY_OP, [XENMEM_ADD_TO_PHYSMAP, a]), 0, "add_to_physmap of shared_info from 32-bit code");
    ensure!(target.load64(0) != 0xaaaa_aaaa_aaaa_aaaa, "the frame does not show shared_info");
    say!(
        p,
        "compat: add_to_physmap (16-byte layout) placed shared_info at frame {gfn:#x}; 64-bit code reading it: EINVAL"
    );
    // compat xen_memory_reservation: extent_start (u32 handle), nr_extents (u32),
    // extent_order, mem_flags, domid; the list of u32 frame numbers.
    let given = p.gpa(list.va()) >> 12;
    args.fill(0x100, &(given as u32).to_le_bytes());
    let mut r = [0u8; 20];
    r[..4].copy_from_slice(&((a + 0x100) as u32).to_le_bytes());
    r[4..8].copy_from_slice(&1u32.to_le_bytes());
    r[16..18].copy_from_slice(&DOMID_SELF.to_le_bytes());
    args.fill(0x200, &r);
    let done = call32(MEMORY_OP, [XENMEM_DECREASE_RESERVATION, a + 0x200]);
    expect_eq!(done, 1, "decrease_reservation (20-byte layout, 32-bit frame list) from 32-bit code");
    // xen_hvm_param has one layout: the same answer as from 64-bit code.
    let mut q = [0u8; 16];
    q[..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    q[4..8].copy_from_slice(&HVM_PARAM_CONSOLE_PFN.to_le_bytes());
    args.fill(0x300, &q);
    expect_eq!(call32(HVM_OP, [HVMOP_GET_PARAM, a + 0x300]), 0, "get_param from 32-bit code");
    let console = args.load64(0x308);
    // compat_sched_poll of 129 ports: EINVAL (read with the 64-bit layout, nr_ports would
    // be the timeout's low half, 0, and the call would block for ever).
    let mut poll = [0u8; 16];
    poll[..4].copy_from_slice(&((a + 0x500) as u32).to_le_bytes());
    poll[4..8].copy_from_slice(&129u32.to_le_bytes());
    args.fill(0x400, &poll);
    let poll = call32(SCHED_OP, [SCHEDOP_POLL, a + 0x400]);
    // compat_gnttab_setup_table of one frame not placed yet: its frame does not fit the
    // 32-bit list (GNTST_address_too_big at 8, as Xen's translation gives).
    let mut setup = [0u8; 16];
    setup[..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    setup[4..8].copy_from_slice(&1u32.to_le_bytes());
    setup[12..16].copy_from_slice(&((a + 0x500) as u32).to_le_bytes());
    args.fill(0x400, &setup);
    // SAFETY: as in `call32`, with three arguments.
    let setup_table = i64::from(unsafe {
        guest_compat_hypercall(GRANT_TABLE_OP as u32, GNTTABOP_SETUP_TABLE as u32, (a + 0x400) as u32, 1, 0, 0)
    });
    let setup_status = args.word(0x408).load(core::sync::atomic::Ordering::Acquire) as u16 as i16;
    say!(
        p,
        "compat: decrease_reservation (20-byte layout) gave back {done} frame; CONSOLE_PFN {console:#x}; poll of 129 ports {}; grant setup_table {} with status {setup_status}",
        name(poll),
        name(setup_table)
    );
    crate::compat_shared::run(p, target, args)
}
