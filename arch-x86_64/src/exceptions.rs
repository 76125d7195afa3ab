//! The IDT: exceptions print a full register dump on the emergency console and power the
//! machine off with a failure status; interrupts (vectors 32..=255) are recorded for
//! [`crate::irq`] and return.

use crate::cpu;
use crate::gdt;
use crate::regs;
use keel_kernel::arch::{CpuOps, ExitStatus};
use keel_kernel::console;
use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

core::arch::global_asm!(include_str!("asm/vectors.s"), options(att_syntax));

extern "C" {
    static keel_vectors: [u8; 256 * STUB_SIZE];
}

const STUB_SIZE: usize = 16;

/// The state the common entry path saved (see `asm/vectors.s`).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

static IDT: Once<InterruptDescriptorTable> = Once::new();

fn stub(vector: usize) -> VirtAddr {
    let base = &raw const keel_vectors as u64;
    VirtAddr::new(base + (vector * STUB_SIZE) as u64)
}

fn build() -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    // SAFETY: each address is the entry stub for exactly that vector, which handles the
    // CPU's frame layout (with or without an error code).
    unsafe {
        idt.divide_error.set_handler_addr(stub(0));
        idt.debug.set_handler_addr(stub(1));
        idt.non_maskable_interrupt.set_handler_addr(stub(2)).set_stack_index(gdt::IST_NMI);
        idt.breakpoint.set_handler_addr(stub(3));
        idt.overflow.set_handler_addr(stub(4));
        idt.bound_range_exceeded.set_handler_addr(stub(5));
        idt.invalid_opcode.set_handler_addr(stub(6));
        idt.device_not_available.set_handler_addr(stub(7));
        idt.double_fault.set_handler_addr(stub(8)).set_stack_index(gdt::IST_DOUBLE_FAULT);
        idt.invalid_tss.set_handler_addr(stub(10));
        idt.segment_not_present.set_handler_addr(stub(11));
        idt.stack_segment_fault.set_handler_addr(stub(12));
        idt.general_protection_fault.set_handler_addr(stub(13));
        idt.page_fault.set_handler_addr(stub(14));
        idt.x87_floating_point.set_handler_addr(stub(16));
        idt.alignment_check.set_handler_addr(stub(17));
        idt.machine_check.set_handler_addr(stub(18)).set_stack_index(gdt::IST_MACHINE_CHECK);
        idt.simd_floating_point.set_handler_addr(stub(19));
        idt.virtualization.set_handler_addr(stub(20));
        idt.cp_protection_exception.set_handler_addr(stub(21));
        idt.hv_injection_exception.set_handler_addr(stub(28));
        idt.vmm_communication_exception.set_handler_addr(stub(29));
        idt.security_exception.set_handler_addr(stub(30));
        for vector in 32..=255u8 {
            idt[vector].set_handler_addr(stub(vector as usize));
        }
    }
    idt
}

/// Loads the IDT on the calling CPU (built on first use).
pub fn load() {
    IDT.call_once(build).load();
}

/// The mnemonic and name of exception `vector`.
fn name(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        9 => ("#MF", "coprocessor segment overrun"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "reserved vector"),
    }
}

/// Called by the common entry path with the saved state.
#[no_mangle]
extern "sysv64" fn keel_trap(frame: &mut TrapFrame) {
    if frame.vector >= 32 {
        crate::irq::on_interrupt(frame.vector as u8);
        return;
    }
    fatal(frame)
}

fn fatal(f: &TrapFrame) -> ! {
    let this = cpu::this_cpu();
    let path = crate::power::failure_exit_path();
    if this.in_fatal.swap(true, core::sync::atomic::Ordering::AcqRel) {
        // The dump itself faulted: do not try again.
        crate::power::power_off(path, ExitStatus::Failure)
    }
    let (mnemonic, what) = name(f.vector);
    let c = crate::cpu::X86Cpu::current();
    console::emergency(format_args!(
        "[PANIC {c}] exception {mnemonic} ({what}, vector {}), error code {:#x}, on cpu {c}",
        f.vector, f.error
    ));
    let dump = |a: (&str, u64), b: (&str, u64), c: (&str, u64), d: (&str, u64)| {
        console::emergency(format_args!(
            "  {:>6}={:#018x} {:>6}={:#018x} {:>6}={:#018x} {:>6}={:#018x}",
            a.0, a.1, b.0, b.1, c.0, c.1, d.0, d.1
        ))
    };
    dump(("rax", f.rax), ("rbx", f.rbx), ("rcx", f.rcx), ("rdx", f.rdx));
    dump(("rsi", f.rsi), ("rdi", f.rdi), ("rbp", f.rbp), ("rsp", f.rsp));
    dump(("r8", f.r8), ("r9", f.r9), ("r10", f.r10), ("r11", f.r11));
    dump(("r12", f.r12), ("r13", f.r13), ("r14", f.r14), ("r15", f.r15));
    dump(("rip", f.rip), ("rflags", f.rflags), ("cs", f.cs), ("ss", f.ss));
    dump(("cr0", regs::read_cr0()), ("cr2", regs::read_cr2()), ("cr3", regs::read_cr3()), ("cr4", regs::read_cr4()));
    console::emergency(format_args!("  {:>6}={:#018x}", "efer", regs::read_efer()));
    crate::power::power_off(path, ExitStatus::Failure)
}
