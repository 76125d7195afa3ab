//! Processor control.

/// A physical CPU's index: 0 is the boot CPU, the others are numbered in start-up order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub u32);

impl CpuId {
    /// The CPU at `index` of a per-CPU table. CPU masks hold far fewer than 2^32 CPUs; an
    /// index beyond `u32` (impossible) becomes `u32::MAX`, which names no CPU.
    pub fn from_index(index: usize) -> CpuId {
        CpuId(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

impl core::fmt::Display for CpuId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The outcome Keel reports when it powers the machine off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
}

/// How to power off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOffPath {
    /// The platform firmware's power-off interface, falling back to a reset.
    Firmware,
    /// An emulator's test-exit device, which carries [`ExitStatus`] out as the emulator's
    /// exit status; falls back to [`PowerOffPath::Firmware`] where no such device answers.
    TestDevice,
}

/// Processor control for the current CPU. All functions act on the calling CPU.
pub trait CpuOps {
    /// The calling CPU's index.
    fn current() -> CpuId;

    /// Waits until an interrupt (or another wake-up event) arrives; may return early.
    fn halt();

    /// A pause in a loop that waits for another CPU: it lets that CPU make progress where
    /// both share one host thread (an emulator's round robin), and costs no more than a
    /// spin-loop hint elsewhere.
    fn relax() {
        core::hint::spin_loop();
    }

    /// Starts every secondary CPU the firmware tables describe. Each runs `entry` with its
    /// index once its hypervisor-mode state is set up. Returns how many start-up requests
    /// were accepted; a CPU is online only once it runs `entry`.
    fn start_secondaries(entry: fn(CpuId) -> !) -> u32;

    /// Powers the machine off, reporting `status` where `path` can carry it.
    fn power_off(path: PowerOffPath, status: ExitStatus) -> !;
}
