//! What a scenario needs from the machine it runs on. Each architecture's test guest
//! (`tests/guests/<arch>`) implements [`Platform`] once; the scenarios never name an
//! architecture.

/// A CPU's power state as the platform's firmware interface reports it (arm64 PSCI
/// `AFFINITY_INFO`: 0 on, 1 off, 2 on pending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuState {
    On,
    Off,
    OnPending,
}

/// The outcome of touching memory that may fault ([`Platform::probe_read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The read completed with this value.
    Value(u64),
    /// The access raised an exception in the guest (arm64: a data abort; its syndrome).
    Fault(u64),
}

/// The machine under a test guest. One static instance per guest image; every method
/// may be called on any of its CPUs.
/// Most registers [`Platform::owned_regs_fill`] may fill.
pub const MAX_OWNED_REGS: usize = 32;

pub trait Platform: Sync {
    /// The architecture's name, for messages.
    const ARCH: &'static str;
    /// The `XENVER_get_features` submap 0 this architecture's guests must see.
    const FEATURES: u32;
    /// The architecture's `shared_info`/`vcpu_info` layout.
    const LAYOUT: &'static keel_abi::layout::GuestLayout;

    /// The guest's command line (arm64: `/chosen/bootargs`; x86 PVH: `hvm_start_info`).
    fn cmdline(&self) -> &str;

    /// Issues hypercall `number` with `args` through the architecture's instruction
    /// (arm64 `hvc #0xEA1`, x86 `vmcall`/`vmmcall`) and returns the result register.
    fn hypercall(&self, number: u64, args: [u64; 5]) -> u64;

    /// This CPU's index (0 = the boot CPU).
    fn cpu(&self) -> u32;
    /// CPUs the guest was given (vCPUs).
    fn nr_cpus(&self) -> u32;

    /// A monotonic counter the guest reads directly (arm64 `CNTVCT_EL0`, x86 TSC).
    fn ticks(&self) -> u64;
    /// The counter's frequency in Hz.
    fn tick_hz(&self) -> u64;

    /// The guest-physical address behind `va` in the guest's own mapping.
    fn gpa(&self, va: usize) -> u64;
    /// A second virtual address that maps the same memory as `va` through a different
    /// translation, if the platform has one: a hypercall pointer passed through it
    /// proves that Keel translates pointers with the guest's page tables.
    fn alias(&self, va: usize) -> Option<usize> {
        let _ = va;
        None
    }
    /// A virtual address that the guest's page tables do not map.
    fn unmapped_va(&self) -> usize;
    /// A guest-physical range `[start, end)` that is not RAM, mapped (identity) in the
    /// guest's page tables, for grant frames and foreign mappings.
    fn hole(&self) -> (u64, u64);
    /// A virtual address at which the guest reaches guest-physical `gpa` (a page Keel
    /// placed outside RAM, such as the PV console ring), if the platform maps it.
    fn phys_to_virt(&self, gpa: u64) -> Option<usize> {
        let _ = gpa;
        None
    }
    /// The guest's RAM, `[start, end)` (the first bank).
    fn ram(&self) -> (u64, u64);
    /// The first module Keel handed the domain (its ramdisk), mapped, if it has one and
    /// the platform reads it.
    fn boot_module(&self) -> Option<&'static [u8]> {
        None
    }

    /// Prepares this CPU's interrupt delivery for the event upcall, its timer and IPIs
    /// (unmasks them in the interrupt controller; interrupts stay masked at the CPU).
    fn init_interrupts(&self);
    /// Lets interrupts in at the CPU (arm64: clears PSTATE.I; x86: `sti`).
    fn enable_interrupts(&self);
    /// Masks interrupts at the CPU.
    fn disable_interrupts(&self);
    /// Waits for an interrupt with interrupts masked at the CPU: returns once one is
    /// pending (it is taken when interrupts are enabled), or spuriously.
    fn wait_for_interrupt(&self);

    /// Arms this CPU's one-shot timer for `deadline` in [`Platform::ticks`]; its interrupt
    /// reaches [`crate::irq::timer`].
    fn set_timer(&self, deadline: u64);
    /// Disarms this CPU's timer.
    fn stop_timer(&self);
    /// Sends IPI number `n` (0..[`crate::irq::NR_IPIS`]) to `cpu`; it reaches
    /// [`crate::irq::ipi`] there (arm64: SGI `n`; x86: a vector per `n`).
    fn send_ipi(&self, cpu: u32, n: u32);

    /// Starts `cpu`, which then runs [`crate::secondary`]. `Err` carries the platform's
    /// code (arm64: the PSCI return value).
    fn start_cpu(&self, cpu: u32) -> Result<(), i64>;
    /// The power state of `cpu`, if the platform can tell (arm64 PSCI `AFFINITY_INFO`).
    fn cpu_state(&self, cpu: u32) -> Option<CpuState> {
        let _ = cpu;
        None
    }
    /// Turns the calling CPU off (arm64 PSCI `CPU_OFF`); returns only on failure.
    fn cpu_off(&self) -> i64;

    /// Reads 8 bytes at guest-physical `gpa` (mapped identity by the platform for this
    /// purpose), catching the exception the access may raise.
    fn probe_read(&self, gpa: u64) -> Probe;
    /// Writes `value` (8 bytes) at guest-physical `gpa` likewise; `Value(0)` if it
    /// completed.
    fn probe_write(&self, gpa: u64, value: u64) -> Probe;

    /// Fills every FP/SIMD register of this CPU with a pattern derived from `seed`.
    fn fp_fill(&self, seed: u64);
    /// Checks the pattern of [`Platform::fp_fill`]; `Err(n)`: register `n` differs.
    fn fp_check(&self, seed: u64) -> Result<(), u32>;

    /// Fills the system registers the guest owns and may write without changing how it
    /// runs (arm64: EL1 registers, the virtual timer, FPCR/FPSR) with a pattern of `seed`;
    /// returns how many (at most [`MAX_OWNED_REGS`]; the default: none).
    fn owned_regs_fill(&self, seed: u64) -> usize {
        let _ = seed;
        0
    }
    /// Reads the registers of [`Platform::owned_regs_fill`] into `out`, in its order.
    fn owned_regs_read(&self, out: &mut [u64]) {
        let _ = out;
    }
    /// The name of owned register `i`, for messages.
    fn owned_reg_name(&self, i: usize) -> &'static str {
        let _ = i;
        "?"
    }

    /// For `bench`: reads a system register the hypervisor traps and emulates (arm64:
    /// `ID_AA64PFR0_EL1`, trapped by `HCR_EL2.TID3`); `None` if the platform has none.
    fn bench_sysreg_read(&self) -> Option<u64> {
        None
    }
    /// For `bench`: reads a register of a device the hypervisor emulates (arm64: the
    /// vPL011's flag register; the domain must have one); `None` if the platform has none.
    fn bench_mmio_read(&self) -> Option<u64> {
        None
    }
    /// What [`Platform::bench_mmio_read`] reads, as `bench` names the figure.
    fn bench_mmio_name(&self) -> &'static str {
        "emulated MMIO read (vPL011 UARTFR)"
    }

    /// Whether guest-physical space with nothing behind it reads all ones and drops
    /// writes (Xen's x86 HVM/PVH domains), rather than aborting the access (arm64).
    fn unbacked_reads_all_ones(&self) -> bool {
        false
    }

    /// Host addresses (device frames of the machine Keel runs on) the isolation scenario
    /// tries to reach through the guest-physical space; none may be reachable.
    fn host_addresses(&self) -> &'static [u64] {
        &[]
    }

    /// Executes each instruction the platform knows Keel must refuse (an `hvc` or `smc`
    /// Keel does not answer, a trapped register); returns how many there were and how
    /// many raised an undefined-instruction exception in the guest.
    fn refused_instructions(&self) -> (u32, u32) {
        (0, 0)
    }

    /// Breaks this CPU's exception handling (an unmapped vector table) and takes an
    /// exception: a guest that cannot go on.
    fn wreck(&self) -> !;

    /// Runs a scenario of this platform's own (firmware interfaces and the like) if it
    /// has one called `name`; the portable scenarios are tried first.
    fn platform_scenario(&self, name: &str) -> Option<crate::Outcome> {
        let _ = name;
        None
    }

    /// From now on, a data access to [`Platform::hole`] that faults (a foreign mapping
    /// Keel revoked because its granter ended) completes as a no-op (a load leaves its
    /// register as it was) instead of failing the guest; [`Platform::hole_faults`]
    /// counts them. For programs that serve other domains' pages (the xenstore domain).
    /// Platforms that cannot do it do nothing (such a fault stays fatal).
    fn tolerate_hole_faults(&self) {}

    /// Hole faults tolerated so far, and the address of the last one.
    fn hole_faults(&self) -> (u64, u64) {
        (0, 0)
    }

    /// How far the guest's clock runs behind the machine's, in [`Platform::ticks`]
    /// (arm64: CNTPCT − CNTVCT, the domain's CNTVOFF), if the platform can tell.
    fn clock_offset(&self) -> Option<u64> {
        None
    }
}
