//! x86 scenarios of guests that cannot go on (`keel.test=triple-fault`, `garbage`): Keel
//! must end each domain alone, with the others running on; and of a guest poking the
//! machine at random (`x86-fuzz`): CPUID, MSRs and ports get what hardware would give.

use crate::traps;
use keel_test_guest::{say, Outcome, Platform};

/// An exception with an empty IDT: #GP on delivery, then #DF, then a triple fault, which
/// Keel turns into the domain's crash.
pub fn triple_fault(p: &impl Platform) -> Outcome {
    say!(p, "triple-fault: IDT limit 0, then int3");
    p.disable_interrupts();
    traps::empty_idt();
    // SAFETY: the guest gives up: the breakpoint cannot be delivered.
    unsafe { core::arch::asm!("int3", options(nomem, nostack, noreturn)) }
}

/// 4 KiB of pseudo-random bytes (a fixed seed) executed with interrupts masked and an
/// empty IDT: whatever the bytes do, the domain ends in a triple fault, a halt or a loop
/// that `keel.timeout` ends, or a shutdown it asks for.
pub fn garbage(p: &impl Platform) -> Outcome {
    let Some(page) = keel_test_guest::pages::alloc() else { keel_test_guest::fail!("out of guest pages") };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: [u8; 4096] = core::array::from_fn(|_| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    });
    page.fill(0, &bytes);
    say!(p, "garbage: executing 4096 pseudo-random bytes at {:#x} with no IDT", page.va());
    p.disable_interrupts();
    traps::empty_idt();
    // SAFETY: the guest gives up: it jumps into bytes that are not code.
    unsafe { core::arch::asm!("jmp {}", in(reg) page.va(), options(noreturn)) }
}

/// MSRs the machine fuzzer does not write: what the guest itself depends on (its local
/// APIC, EFER, PAT, GS base for its CPU index, the hypercall page, which Keel would write
/// into a random page of the guest).
fn protected(index: u32) -> bool {
    matches!(index, 0x10 | 0x1b | 0x277 | 0x6e0 | 0x800..=0x8ff | 0xc000_0080 | 0xc000_0100..=0xc000_0102)
        || (0x4000_0000..0x4000_0100).contains(&index)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An MSR index: mostly from the architectural, Xen and AMD ranges, sometimes any.
    fn msr(&mut self) -> u32 {
        let base = [0, 0x4000_0000, 0xc000_0000, 0xc001_0000][self.below(4) as usize];
        match self.below(5) {
            0 => self.next() as u32,
            _ => base + self.below(0x2000) as u32,
        }
    }
}

/// Port input of `size` bytes.
fn port_in(port: u16, size: u64) -> u32 {
    let v: u32;
    // SAFETY: port reads reach Keel's emulation (every port exits), not a device.
    unsafe {
        match size {
            1 => core::arch::asm!("in al, dx", in("dx") port, inout("eax") 0u32 => v, options(nomem, nostack)),
            2 => core::arch::asm!("in ax, dx", in("dx") port, inout("eax") 0u32 => v, options(nomem, nostack)),
            _ => core::arch::asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack)),
        }
    }
    v
}

/// Port output of `size` bytes.
fn port_out(port: u16, size: u64, v: u32) {
    // SAFETY: port writes reach Keel's emulation (every port exits), not a device.
    unsafe {
        match size {
            1 => core::arch::asm!("out dx, al", in("dx") port, in("eax") v, options(nomem, nostack)),
            2 => core::arch::asm!("out dx, ax", in("dx") port, in("eax") v, options(nomem, nostack)),
            _ => core::arch::asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack)),
        }
    }
}

/// `keel.test=x86-fuzz [keel.count=N] [keel.seed=S]`: CPUID leaves, RDMSR and WRMSR of
/// random MSRs with random values, and port reads and writes of random ports and sizes.
/// Every MSR access either completes or raises #GP, every port read gives all ones, and
/// Keel keeps answering hypercalls.
pub fn machine_fuzz(p: &impl Platform) -> Outcome {
    let line = p.cmdline();
    let count = keel_test_guest::cmdline::get_u64(line, "keel.count").unwrap_or(3000);
    let mut r = Rng(keel_test_guest::cmdline::get_u64(line, "keel.seed").unwrap_or(1) | 1);
    let (mut cpuids, mut reads, mut read_gp, mut writes, mut write_gp, mut ins, mut outs) = (0, 0, 0, 0, 0, 0, 0);
    for _ in 0..count {
        match r.below(4) {
            0 => {
                let base = [0, 0x4000_0000, 0x8000_0000][r.below(3) as usize];
                let leaf = if r.below(8) == 0 { r.next() as u32 } else { base + r.below(0x20) as u32 };
                let _ = crate::cpu::cpuid(leaf, r.below(4) as u32);
                cpuids += 1;
            }
            1 => {
                let index = r.msr();
                match traps::rdmsr(index) {
                    Ok(_) => {}
                    Err(13) => read_gp += 1,
                    Err(v) => keel_test_guest::fail!("RDMSR {index:#x} raised vector {v}"),
                }
                reads += 1;
            }
            2 => {
                let index = r.msr();
                if protected(index) {
                    continue;
                }
                let value = if r.below(2) == 0 { r.next() } else { r.below(0x1000) };
                match traps::wrmsr(index, value) {
                    Ok(()) => {}
                    Err(13) => write_gp += 1,
                    Err(v) => keel_test_guest::fail!("WRMSR {index:#x} = {value:#x} raised vector {v}"),
                }
                writes += 1;
            }
            _ => {
                let port = r.next() as u16;
                if port == 0xe9 {
                    continue;
                }
                let size = [1, 2, 4][r.below(3) as usize];
                if r.below(2) == 0 {
                    let v = port_in(port, size);
                    let ones = if size == 4 { u32::MAX } else { (1 << (8 * size)) - 1 };
                    keel_test_guest::ensure!(v == ones, "in{size} from port {port:#x}: {v:#x}");
                    ins += 1;
                } else {
                    port_out(port, size, r.next() as u32);
                    outs += 1;
                }
            }
        }
    }
    let hv = keel_test_guest::hcall::Hv(p);
    keel_test_guest::expect_eq!(hv.xen_version(keel_abi::version::XENVER_VERSION, 0), 0x0004_0013, "xen_version");
    say!(
        p,
        "x86-fuzz: {cpuids} CPUID, {reads} RDMSR ({read_gp} #GP), {writes} WRMSR ({write_gp} #GP), \
         {ins} port reads (all ones), {outs} port writes; Keel still answers"
    );
    Ok(())
}
