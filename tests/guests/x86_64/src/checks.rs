//! What only an x86 guest can check, run before every scenario: the hypercall made from
//! 32-bit code at entry, Xen's CPUID leaves and the filtered host leaves, the hypercall
//! page Xen's MSR fills, both vendors' hypercall instructions, MSRs and ports real
//! hardware would refuse or ignore, and a CR0 write that VMX makes Keel emulate.

use crate::cpu;
use crate::platform::{hypercall_with, intel, Pvh};
use crate::traps::{rdmsr, wrmsr};
use core::arch::asm;
use core::cell::UnsafeCell;
use keel_abi::hypercall::XEN_VERSION;
use keel_abi::version::XENVER_VERSION;
use keel_test_guest::{ensure, expect_eq, say, Outcome, Platform};

const GP: u8 = 13;
const HYPERCALL_MSR: u32 = 0x4000_0000;
const EFER: u32 = 0xc000_0080;
const APIC_BASE: u32 = 0x1b;
const PAT: u32 = 0x277;
const XEN_4_19: u64 = 0x0004_0013;

#[repr(C, align(4096))]
struct Page(UnsafeCell<[u8; 4096]>);

// SAFETY: only the boot CPU touches it, before any other CPU runs.
unsafe impl Sync for Page {}

static HYPERCALL_PAGE: Page = Page(UnsafeCell::new([0; 4096]));

pub fn run(p: &Pvh, result32: u32) -> Outcome {
    expect_eq!(result32, 0, "console_io from 32-bit code");
    say!(p, "x86: 32-bit hypercall: ok");
    cpuid(p)?;
    hypercall_page(p)?;
    let other = hypercall_with(!intel(), XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]);
    expect_eq!(other, XEN_4_19, "xen_version through the other vendor's instruction");
    say!(
        p,
        "x86: {} and {}: ok",
        if intel() { "vmcall" } else { "vmmcall" },
        if intel() { "vmmcall" } else { "vmcall" }
    );
    msrs(p)?;
    xapic_page(p)?;
    ports(p);
    control_registers(p)
}

fn cpuid(p: &Pvh) -> Outcome {
    let base = cpu::cpuid(0x4000_0000, 0);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&base.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&base.ecx.to_le_bytes());
    sig[8..].copy_from_slice(&base.edx.to_le_bytes());
    expect_eq!(&sig, b"XenVMMXenVMM", "CPUID 0x40000000 signature");
    ensure!(base.eax >= 0x4000_0004, "CPUID 0x40000000: highest leaf {:#x}", base.eax);
    let version = cpu::cpuid(0x4000_0001, 0).eax;
    expect_eq!(version, 0x0004_0013, "CPUID 0x40000001 (Xen 4.19)");
    let msr = cpu::cpuid(0x4000_0002, 0);
    expect_eq!((msr.eax, msr.ebx), (1, HYPERCALL_MSR), "CPUID 0x40000002 (pages, MSR)");
    let hvm = cpu::cpuid(0x4000_0004, 0);
    ensure!(hvm.eax & (1 << 3 | 1 << 4) == 1 << 3 | 1 << 4, "CPUID 0x40000004 flags {:#x}", hvm.eax);
    expect_eq!(hvm.ebx, p.cpu(), "CPUID 0x40000004 vCPU id");
    let leaf1 = cpu::cpuid(1, 0);
    ensure!(leaf1.ecx & (1 << 31) != 0, "CPUID 1: no hypervisor bit");
    ensure!(leaf1.ecx & (1 << 5) == 0, "CPUID 1: VMX is offered");
    expect_eq!(leaf1.ebx >> 24, p.cpu(), "CPUID 1 initial APIC id");
    ensure!(cpu::cpuid(0x8000_0001, 0).ecx & (1 << 2) == 0, "CPUID 0x80000001: SVM is offered");
    say!(
        p,
        "x86: cpuid: {}, Xen {}.{}, hypercall MSR {:#x}, vCPU {} of domain {}",
        core::str::from_utf8(&sig).unwrap_or("?"),
        version >> 16,
        version & 0xffff,
        msr.ebx,
        hvm.ebx,
        hvm.ecx
    );
    Ok(())
}

fn hypercall_page(p: &Pvh) -> Outcome {
    let page = HYPERCALL_PAGE.0.get() as u64;
    expect_eq!(wrmsr(HYPERCALL_MSR, p.gpa(page as usize)), Ok(()), "WRMSR 0x40000000");
    // SAFETY: Keel filled the page behind the compiler's back; read it as bytes.
    let stub = |n: usize| unsafe { core::ptr::read_volatile((page as *const [u8; 9]).byte_add(32 * n)) };
    let insn = if intel() { [0x0f, 0x01, 0xc1] } else { [0x0f, 0x01, 0xd9] };
    expect_eq!(stub(17), [0xb8, 17, 0, 0, 0, insn[0], insn[1], insn[2], 0xc3], "hypercall stub 17");
    expect_eq!([stub(23)[0], stub(23)[1]], [0x0f, 0x0b], "stub 23 (iret) is ud2");
    let ret: u64;
    // SAFETY: calls stub 17 (xen_version) of the page Keel filled: `mov $17, %eax;
    // vmcall; ret`, with the hypercall convention's registers.
    unsafe {
        asm!("call {stub}", stub = in(reg) page + 32 * 17, out("rax") ret, inout("rdi") XENVER_VERSION => _,
             inout("rsi") 0u64 => _, out("rdx") _, out("r10") _, out("r8") _, out("rcx") _, out("r11") _)
    };
    expect_eq!(ret, XEN_4_19, "xen_version through the hypercall page");
    expect_eq!(rdmsr(HYPERCALL_MSR), Err(GP), "RDMSR 0x40000000");
    expect_eq!(wrmsr(HYPERCALL_MSR, p.gpa(page as usize) | 1), Err(GP), "WRMSR 0x40000000 of page 1");
    say!(p, "x86: hypercall page: stubs in place, xen_version through stub 17: {:#x}", ret);
    Ok(())
}

fn msrs(p: &Pvh) -> Outcome {
    let efer = rdmsr(EFER).unwrap_or(0);
    ensure!(efer & (1 << 8 | 1 << 10) == 1 << 8 | 1 << 10, "EFER {efer:#x}: long mode not active");
    ensure!(efer & (1 << 12) == 0, "EFER {efer:#x} shows SVME");
    expect_eq!(rdmsr(APIC_BASE), Ok(0xfee0_0900), "APIC_BASE of the boot vCPU");
    for index in [0x2ff, 0xc001_0114, 0x1234_5678] {
        expect_eq!(rdmsr(index), Err(GP), "RDMSR of a hidden or unknown MSR");
    }
    expect_eq!(wrmsr(0x2ff, 0), Err(GP), "WRMSR of MTRRdefType");
    expect_eq!(wrmsr(PAT, 0x02), Err(GP), "WRMSR PAT with a reserved type");
    expect_eq!(wrmsr(PAT, 0x0007_0406_0007_0406), Ok(()), "WRMSR PAT");
    expect_eq!(rdmsr(PAT), Ok(0x0007_0406_0007_0406), "RDMSR PAT");
    expect_eq!(wrmsr(EFER, efer | 1 << 12), Err(GP), "WRMSR EFER.SVME");
    say!(p, "x86: msrs: EFER {efer:#x}, APIC_BASE 0xfee00900, unknown and hidden MSRs raise #GP");
    Ok(())
}

/// The boot vCPU's local APIC starts in xAPIC mode: its registers are on the page at
/// 0xfee00000, which Keel emulates by decoding the accessing instruction (an 8-byte MOV
/// reads the 32-bit register and the reserved word after it, 0).
fn xapic_page(p: &Pvh) -> Outcome {
    let (version, id) = (crate::traps::probe_read(0xfee0_0030), crate::traps::probe_read(0xfee0_0020));
    expect_eq!(version, Ok(0x0006_0014), "the xAPIC version register");
    expect_eq!(id, Ok(0), "the xAPIC ID register of vCPU 0");
    say!(p, "x86: xAPIC page: version {:#x}, ID {:#x}", version.unwrap_or(0), id.unwrap_or(0));
    Ok(())
}

fn ports(p: &Pvh) {
    for &b in b"x86: debug port out\n" {
        cpu::outb(0xe9, b);
    }
    cpu::outsb(0xe9, b"x86: debug port rep outsb\n");
    let (byte, word) = (cpu::inb(0x80), cpu::inl(0xcf8));
    cpu::outb(0x80, 0x55);
    say!(p, "x86: ports: in 0x80 = {byte:#x}, in 0xcf8 = {word:#x}");
}

fn control_registers(p: &Pvh) -> Outcome {
    const NE_WP_MP: u64 = 1 << 5 | 1 << 16 | 1 << 1;
    let (before, after): (u64, u64);
    // SAFETY: sets CR0.NE, WP and MP, which change nothing the guest relies on (its
    // page tables are writable, it uses no x87 exceptions).
    unsafe {
        asm!("mov {0}, cr0", "mov {1}, {0}", "or {1}, {2}", "mov cr0, {1}", "mov {1}, cr0",
             out(reg) before, out(reg) after, in(reg) NE_WP_MP, options(nostack));
    }
    ensure!(after & NE_WP_MP == NE_WP_MP, "CR0 {before:#x} -> {after:#x}: NE, WP, MP not kept");
    say!(p, "x86: cr0: {before:#x} -> {after:#x}");
    Ok(())
}
