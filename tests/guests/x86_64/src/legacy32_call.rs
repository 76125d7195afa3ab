//! Calls into 32-bit legacy protected mode for `keel.test=legacy32` (`legacy32.rs` and
//! the parts beside it): the trampoline of `legacy32.s`, the paging the 32-bit code runs
//! with, hypercalls through the hypercall page its WRMSR installs, and where the
//! scenario puts its arguments.

use core::sync::atomic::Ordering;
use keel_abi::layout::{VcpuTimeInfo, X86_32};
use keel_abi::Wire;
use keel_test_guest::pages::Page;
use keel_test_guest::Platform;

core::arch::global_asm!(include_str!("legacy32.s"), options(att_syntax));

extern "C" {
    fn guest_legacy32_call(target: u32, regs: *const [u32; 6], cr3: u32, pae: u32) -> u32;
    fn guest_legacy32_rdmsr();
    fn guest_legacy32_wrmsr();
    fn guest_legacy32_cr0();
    fn guest_legacy32_cr4();
}

const HYPERCALL_MSR: u32 = 0x4000_0000;
const EFER: u32 = 0xc000_0080;
pub(crate) const EFER_LME_LMA: u32 = 1 << 8 | 1 << 10;
pub(crate) const CR0_PG: u32 = 1 << 31;
/// Where the argument structs go in the argument page.
pub(crate) const AT_STRUCT: usize = 0;
pub(crate) const AT_LIST: usize = 0x100;
pub(crate) const AT_TEXT: usize = 0x200;
pub(crate) const AT_RUNSTATE: usize = 0x400;
pub(crate) const AT_RUNSTATE_INFO: usize = 0x500;
/// Where in its page the vcpu_info is registered.
pub(crate) const VCPU_INFO_AT: usize = 0x80;

/// The hypercall page, filled by Keel on the WRMSR made in legacy mode.
static HYPERCALL_PAGE: Page = Page([const { core::sync::atomic::AtomicU32::new(0) }; 1024]);

/// How the 32-bit code runs: paging off, 32-bit paging on the page directory at the
/// address given, or PAE paging on the four PDPTEs at the address given.
#[derive(Clone, Copy)]
pub(crate) enum Paging {
    Off,
    Bits32(u32),
    Pae(u32),
}

/// Runs the 32-bit function at `target` in legacy protected mode with EAX, EBX, ECX,
/// EDX, ESI, EDI = `regs` and `paging`; its EAX.
pub(crate) fn legacy_with(target: usize, regs: [u32; 6], paging: Paging) -> u32 {
    let target = u32::try_from(target).expect("legacy-mode code below 4 GiB");
    let (cr3, pae) = match paging {
        Paging::Off => (0, 0),
        Paging::Bits32(root) => (root, 0),
        Paging::Pae(root) => (root, 1),
    };
    // SAFETY: the trampoline saves every callee-saved register, masks interrupts and
    // restores the 64-bit IDT; the targets are this guest's 32-bit functions or Keel's
    // hypercall stubs, every address passed is this guest's memory below 4 GiB, and the
    // tables (`legacy32_paged`) map the guest's memory as the identity (and again at an
    // alias where nothing of the guest is).
    unsafe { guest_legacy32_call(target, &regs, cr3, pae) }
}

/// [`legacy_with`], paging off.
pub(crate) fn legacy(target: usize, regs: [u32; 6]) -> u32 {
    legacy_with(target, regs, Paging::Off)
}

/// The address of hypercall `nr`'s stub in the hypercall page.
pub(crate) fn stub(nr: u64) -> usize {
    HYPERCALL_PAGE.va() + 32 * nr as usize
}

/// Hypercall `nr` from legacy mode through the hypercall page with `paging`; the result
/// as a 32-bit guest sees it (sign-extended).
pub(crate) fn call_with(nr: u64, args: [u32; 5], paging: Paging) -> i64 {
    i64::from(legacy_with(stub(nr), [0, args[0], args[1], args[2], args[3], args[4]], paging) as i32)
}

/// [`call_with`], paging off.
pub(crate) fn call(nr: u64, args: [u32; 5]) -> i64 {
    call_with(nr, args, Paging::Off)
}

/// EFER (low half), CR0 and CR4 as 32-bit code running with `paging` reads them.
pub(crate) fn mode(paging: Paging) -> (u32, u32, u32) {
    let efer = legacy_with(guest_legacy32_rdmsr as *const () as usize, [0, 0, EFER, 0, 0, 0], paging);
    let cr0 = legacy_with(guest_legacy32_cr0 as *const () as usize, [0; 6], paging);
    let cr4 = legacy_with(guest_legacy32_cr4 as *const () as usize, [0; 6], paging);
    (efer, cr0, cr4)
}

/// Installs the hypercall page by a WRMSR from legacy mode (which latches the compat
/// shared_info layout); the WRMSR's EAX (0).
pub(crate) fn install_hypercall_page(p: &impl Platform) -> u32 {
    let page = u32::try_from(p.gpa(HYPERCALL_PAGE.va())).expect("below 4 GiB");
    legacy(guest_legacy32_wrmsr as *const () as usize, [page, 0, HYPERCALL_MSR, 0, 0, 0])
}

/// A guest address as a 32-bit guest with paging off passes it (guest-physical).
pub(crate) fn addr(p: &impl Platform, page: &Page, at: usize) -> u32 {
    u32::try_from(p.gpa(page.va() + at)).expect("guest pages below 4 GiB")
}

/// The pvclock in the compat `vcpu_info` at `slot` of `page`.
pub(crate) fn clock(page: &Page, slot: usize) -> Option<VcpuTimeInfo> {
    let at = slot + X86_32.vcpu_info_time;
    for _ in 0..1000 {
        let v1 = page.word(at).load(Ordering::Acquire);
        let mut b = [0u8; 32];
        page.read(at, &mut b);
        if v1 == page.word(at).load(Ordering::Acquire) && v1.is_multiple_of(2) {
            return VcpuTimeInfo::from_bytes(&b);
        }
    }
    None
}
