//! The system registers and instructions the guest uses.

macro_rules! read_sysreg {
    ($name:ident, $reg:literal) => {
        #[inline(always)]
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: reading this register has no side effect.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
            v
        }
    };
}

read_sysreg!(esr, "esr_el1");
read_sysreg!(far, "far_el1");
read_sysreg!(counter, "cntvct_el0");
read_sysreg!(physical_counter, "cntpct_el0");
read_sysreg!(counter_hz, "cntfrq_el0");
read_sysreg!(mpidr, "mpidr_el1");

/// Waits for an interrupt.
pub fn wfi() {
    // SAFETY: waiting has no effect on memory.
    unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack)) };
}

/// Unmasks IRQs at the CPU.
pub fn irq_enable() {
    // SAFETY: the vectors are installed before any scenario enables interrupts.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nostack)) };
}

/// Masks IRQs at the CPU.
pub fn irq_disable() {
    // SAFETY: masking interrupts has no effect on memory.
    unsafe { core::arch::asm!("msr daifset, #2", options(nostack)) };
}

/// Sets the virtual timer's comparator and control.
pub fn set_virtual_timer(cval: u64, ctl: u64) {
    // SAFETY: the guest owns its EL1 virtual timer.
    unsafe {
        core::arch::asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb", in(reg) cval, in(reg) ctl, options(nostack))
    };
}

/// The `hvc #0xEA1` hypercall, in the registers of
/// `keel_abi::hypercall_registers::AARCH64` (number in x16, arguments in x0..x4, result in
/// x0).
pub fn hypercall(number: u64, a: [u64; 5]) -> u64 {
    // SAFETY: Keel handles the call; it may read and write memory the arguments point to
    // (so no `nomem`), and clobbers x16 and the argument registers.
    unsafe { keel_abi::aarch64_hypercall!(number, a) }
}

/// An SMCCC call over `hvc #0` (PSCI): function id in w0, arguments in x1..x3.
pub fn smccc(function: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u64;
    // SAFETY: Keel answers PSCI calls; SMCCC allows x0-x17 to be clobbered.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inout("x0") function as u64 => r,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    r as i64
}
