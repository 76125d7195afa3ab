//! The backend's per-domain state ([`GuestDomain`]): the virtual GIC's distributor and
//! redistributor state, shared by the domain's vCPUs (each keeps its own list registers),
//! the virtual counter's offset, the vCPUs' PSCI power states and the virtual PL011.

use crate::irq;
use crate::layout::PL011_SPI;
use crate::vgic::{Version, Vgic};
use crate::vpl011::Vpl011;
use aarch64_cpu::registers::CNTPCT_EL0;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
use keel_kernel::arch::{DomainInit, GuestDomain, VcpuError};
use spin::Mutex;
use tock_registers::interfaces::Readable;

/// A vCPU's power state as PSCI `AFFINITY_INFO` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Power {
    On = 0,
    Off = 1,
    OnPending = 2,
}

/// An arm64 domain's backend state.
#[derive(Debug)]
pub struct Aarch64Domain {
    init: DomainInit,
    /// The virtual GIC (the host's version).
    pub vgic: Mutex<Vgic>,
    /// `CNTVOFF_EL2` for its vCPUs: the counter when the domain was created, so its
    /// virtual counter starts at zero.
    pub cntvoff: u64,
    /// Per vCPU: its [`Power`] state (vCPU 0 starts on).
    power: Vec<AtomicU8>,
    /// The virtual PL011, if the domain asked for one (`vpl011`).
    pub uart: Option<Mutex<Vpl011>>,
}

impl Aarch64Domain {
    /// How the domain was created.
    pub fn init(&self) -> &DomainInit {
        &self.init
    }

    pub fn power(&self, vcpu: u32) -> Power {
        match self.power.get(vcpu as usize).map(|p| p.load(Relaxed)) {
            Some(0) => Power::On,
            Some(2) => Power::OnPending,
            _ => Power::Off,
        }
    }

    /// Drives the virtual PL011's interrupt line into the virtual GIC after a change of
    /// `uart`; returns the vCPUs to kick.
    pub fn update_uart_line(&self, uart: &Vpl011) -> u128 {
        self.vgic.lock().set_spi_level(PL011_SPI, uart.line())
    }

    pub fn set_power(&self, vcpu: u32, p: Power) {
        if let Some(slot) = self.power.get(vcpu as usize) {
            slot.store(p as u8, Relaxed);
        }
    }
}

/// The virtual GIC's distributor and redistributors (`docs/vgic.md`) and the `vpl011`
/// (`docs/console.md`); `interrupt_pending` reads the virtual GIC; passed-through SPIs
/// become pending there (`docs/vgic.md`).
impl GuestDomain for Aarch64Domain {
    fn new(init: &DomainInit) -> Result<Self, VcpuError> {
        let version = if irq::version() == Some(2) { Version::V2 } else { Version::V3 };
        let power = (0..init.vcpus).map(|v| AtomicU8::new(if v == 0 { Power::On } else { Power::Off } as u8)).collect();
        Ok(Aarch64Domain {
            init: *init,
            vgic: Mutex::new(Vgic::new(version, init.vcpus)),
            cntvoff: CNTPCT_EL0.get(),
            power,
            uart: init.virtual_uart.then(|| Mutex::new(Vpl011::new())),
        })
    }

    /// An interrupt waits for the vCPU, or sits pending in its list registers.
    fn interrupt_pending(&self, vcpu: u32) -> bool {
        self.vgic.lock().has_pending(vcpu)
    }

    /// A passed-through SPI: pending as the same virtual INTID, hardware-linked.
    fn device_interrupt(&self, irq: u32) -> u128 {
        self.vgic.lock().hw_spi_fired(irq)
    }

    /// Input for the virtual PL011: queued, and its receive interrupt raised.
    fn uart_input(&self, bytes: &[u8]) -> Option<u128> {
        let mut uart = self.uart.as_ref()?.lock();
        uart.receive(bytes);
        Some(self.update_uart_line(&uart))
    }
}
