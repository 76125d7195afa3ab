//! `keel.test=task-switch`: a hardware task switch (`jmp` and `call` to a TSS, `int` through
//! a task gate, `iret` with EFLAGS.NT) from 32-bit protected mode, which a guest that
//! once crashed its domain made. Keel refuses each with #GP(TSS selector) and the guest
//! goes on (`docs/x86-guests.md`); the domain must never be crashed. A processor that
//! ignores the intercept (QEMU's TCG SVM) performs the switch itself, as Xen would: the
//! guest reports which happened, and the boot test expects the machine's answer.
//! `task_switch.s` leaves long mode and attempts them with the tables built here.

use core::cell::UnsafeCell;
use keel_test_guest::{ensure, say, Outcome, Platform};

core::arch::global_asm!(include_str!("task_switch.s"), options(att_syntax));

extern "C" {
    static guest_ts_stubs: u8;
    static guest_ts_switched: u8;
    fn guest_task_switches(gdt_pointer: u64, idt_pointer: u64, results: *mut u32);
}

const TSS_B: u16 = 0x28;
const CODE32: u64 = 0x18;
const DATA: u32 = 0x10;
/// A 32-bit TSS without an I/O bitmap: 104 bytes.
const TSS_WORDS: usize = 26;
const GP: u32 = 13;
const SWITCHED: u32 = 0xffff_ff00;
const NOTHING: u32 = 0xffff_fffe;

#[repr(C, align(16))]
struct Tables {
    gdt: [u64; 6],
    gdt_pointer: [u16; 5],
    idt_pointer: [u16; 5],
    idt: [u64; 256],
    tss_a: [u32; TSS_WORDS],
    tss_b: [u32; TSS_WORDS],
    stack_b: [u64; 64],
    results: [u32; 8],
}

struct Shared(UnsafeCell<Tables>);

// SAFETY: used by one CPU of a one-vCPU scenario.
unsafe impl Sync for Shared {}

static TABLES: Shared = Shared(UnsafeCell::new(Tables {
    gdt: [0; 6],
    gdt_pointer: [0; 5],
    idt_pointer: [0; 5],
    idt: [0; 256],
    tss_a: [0; TSS_WORDS],
    tss_b: [0; TSS_WORDS],
    stack_b: [0; 64],
    results: [0; 8],
}));

/// TSS A (0x20, the task the probes run in) and TSS B (0x28, the target): a descriptor of an available 32-bit TSS (type 9) at `base`.
fn tss_descriptor(base: u64) -> u64 {
    let limit = (TSS_WORDS * 4 - 1) as u64;
    limit | (base & 0xff_ffff) << 16 | 0x89 << 40 | (base >> 24 & 0xff) << 56
}

/// A pseudo-descriptor: limit, then the base (10 bytes; 32-bit code reads the first 6).
fn pointer(base: u64, limit: u16) -> [u16; 5] {
    [limit, base as u16, (base >> 16) as u16, (base >> 32) as u16, (base >> 48) as u16]
}

fn describe(vector: u32, error: u32) -> &'static str {
    match (vector, error) {
        (SWITCHED, _) => "the task switch happened",
        (NOTHING, _) => "nothing happened",
        (GP, e) if e == TSS_B as u32 => "#GP(TSS selector)",
        _ => "another exception",
    }
}

/// `keel.test=task-switch`.
pub fn run(p: &impl Platform) -> Outcome {
    let t = TABLES.0.get();
    let stubs = &raw const guest_ts_stubs as u64;
    // SAFETY: only this CPU touches the tables, and only here and in the assembly called
    // below, which returns before they are read again.
    unsafe {
        let t = &mut *t;
        t.gdt = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0x00cf_9a00_0000_ffff, 0, 0];
        t.gdt[4] = tss_descriptor(t.tss_a.as_ptr() as u64);
        t.gdt[5] = tss_descriptor(t.tss_b.as_ptr() as u64);
        t.gdt_pointer = pointer(t.gdt.as_ptr() as u64, (t.gdt.len() * 8 - 1) as u16);
        for v in 0..32 {
            let handler = stubs + 16 * v;
            t.idt[v as usize] = (handler & 0xffff) | CODE32 << 16 | 0x8e00 << 32 | (handler >> 16 & 0xffff) << 48;
        }
        t.idt[0x80] = (TSS_B as u64) << 16 | 0x8500 << 32; // a task gate
        t.idt_pointer = pointer(t.idt.as_ptr() as u64, (t.idt.len() * 8 - 1) as u16);
        t.tss_a = [0; TSS_WORDS];
        t.tss_a[0] = TSS_B as u32; // the back link IRET returns to
        t.tss_a[25] = ((TSS_WORDS * 4) as u32) << 16; // no I/O bitmap
        t.tss_b = [0; TSS_WORDS];
        t.tss_b[7] = crate::cpu::read_cr3() as u32;
        t.tss_b[8] = &raw const guest_ts_switched as u32;
        t.tss_b[9] = 2; // EFLAGS: interrupts masked
        t.tss_b[13] = t.results.as_ptr() as u32; // EBX, EBP, ESI: as the assembly has them
        t.tss_b[14] = t.stack_b.as_ptr_range().end as u32;
        t.tss_b[15] = t.gdt_pointer.as_ptr() as u32;
        t.tss_b[16] = t.idt_pointer.as_ptr() as u32;
        t.tss_b[18..24].copy_from_slice(&[DATA, CODE32 as u32, DATA, DATA, DATA, DATA]);
        t.tss_b[25] = ((TSS_WORDS * 4) as u32) << 16;
        t.results = [0; 8];
        guest_task_switches(t.gdt_pointer.as_ptr() as u64, t.idt_pointer.as_ptr() as u64, t.results.as_mut_ptr());
    }
    // SAFETY: the assembly has returned; nothing else writes the results.
    let results = unsafe { (*t).results };
    let names = ["ljmp to a TSS", "lcall to a TSS", "int through a task gate", "iret with NT"];
    for (i, name) in names.iter().enumerate() {
        let (vector, error) = (results[2 * i], results[2 * i + 1]);
        say!(p, "task-switch: {name}: vector {vector:#x} error {error:#x}: {}", describe(vector, error));
    }
    let refused = (0..4).filter(|&i| results[2 * i] == GP && results[2 * i + 1] == u32::from(TSS_B)).count();
    let switched = (0..4).filter(|&i| results[2 * i] == SWITCHED).count();
    ensure!(
        refused + switched == 4,
        "{} task switches neither refused with #GP({TSS_B:#x}) nor performed",
        4 - refused - switched
    );
    say!(p, "task-switch: {refused} refused with #GP(TSS selector), {switched} performed by the processor; the domain runs on");
    Ok(())
}
