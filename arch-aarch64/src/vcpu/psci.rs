//! PSCI 1.1 for guests (`hvc #0`, or `smc #0` trapped by `HCR_EL2.TSC`): the calls that
//! need the core become exits (`StartVcpu`, `StopVcpu`, `Shutdown`, `Halt`); the rest
//! are answered here. The domain keeps each vCPU's power state for `AFFINITY_INFO`.

use super::Aarch64Vcpu;
use crate::domain::Power;
use crate::layout::vcpu_of_affinity;
use crate::vpsci::{self, code, Call};
use keel_kernel::arch::{StartResult, VmExit};
use keel_kernel::domain::ShutdownReason;
use keel_kernel::mm::GuestPhysAddr;

/// Affinity fields of an MPIDR (Aff3, Aff2, Aff1, Aff0).
const AFFINITY: u64 = 0xff_00ff_ffff;

impl Aarch64Vcpu {
    /// Carries out the call in x0..x3; returns the exit the core must see, if any. The
    /// result (if any) is in x0; the PC is past the call.
    pub(super) fn psci(&mut self) -> Option<VmExit> {
        let x = [self.regs.x[0], self.regs.x[1], self.regs.x[2], self.regs.x[3]];
        let vcpus = self.domain.init().vcpus;
        let target_of = |mpidr: u64| vcpu_of_affinity(mpidr & AFFINITY).filter(|&v| v < vcpus);
        let result = match vpsci::decode(x) {
            Call::Version => vpsci::VERSION_1_1 as i64,
            Call::CpuSuspend => {
                // Standby: wait for an interrupt, then return success.
                self.regs.x[0] = 0;
                return Some(VmExit::Halt);
            }
            Call::CpuOff => {
                self.domain.set_power(self.vcpu_id, Power::Off);
                return Some(VmExit::StopVcpu);
            }
            Call::CpuOn { target, entry, context } => match target_of(target) {
                Some(t) => return Some(VmExit::StartVcpu { target: t, entry: GuestPhysAddr(entry), arg: context }),
                None => code::INVALID_PARAMETERS,
            },
            Call::AffinityInfo { target, level } => match (target_of(target), level) {
                (Some(t), 0) => self.domain.power(t) as i64,
                _ => code::INVALID_PARAMETERS,
            },
            Call::MigrateInfoType => vpsci::NO_TRUSTED_OS as i64,
            Call::SystemOff => return Some(VmExit::Shutdown(ShutdownReason::Poweroff)),
            Call::SystemReset => return Some(VmExit::Shutdown(ShutdownReason::Reboot)),
            Call::Features(fid) => vpsci::features(fid),
            Call::Unknown(_) => code::NOT_SUPPORTED,
        };
        self.regs.x[0] = result as u64;
        None
    }

    /// The answer to the `CPU_ON` this vCPU made.
    pub(super) fn start_result(&mut self, result: StartResult) {
        let code = match result {
            StartResult::Started => code::SUCCESS,
            StartResult::InvalidTarget => code::INVALID_PARAMETERS,
            StartResult::AlreadyOn => code::ALREADY_ON,
            StartResult::Pending => code::ON_PENDING,
            StartResult::Failed => code::INTERNAL_FAILURE,
            StartResult::InvalidEntry => code::INVALID_ADDRESS,
        };
        // The power state is the started vCPU's own business (`Vcpu::new` sets it on,
        // its `CPU_OFF` off): it may already have run and turned off again by now.
        self.regs.x[0] = code as u64;
    }
}
