//! Control-register accesses that exit on VMX: writes to CR0 and CR4 that touch bits the
//! host owns (CR0.NE, which VMX forces on; CR4.VMXE and the bits of features the guest is
//! not shown) and every CR8 access (the task priority must not reach the host's local
//! APIC). Keel checks what the processor would, keeps the guest's view in the read
//! shadow, and completes what the processor would have done: the switch into or out of
//! long mode (EFER.LMA and the "IA-32e mode guest" entry control) and the PAE
//! page-directory pointers.

use super::state::{set, visible};
use super::{field, vmcs, VmxVcpu, CR0_CD, CR0_NW, CR0_PE, CR0_PG, CR4_PAE};
use crate::regs::efer;
use crate::vcpu::control::Cr4Write;
use crate::vcpu::cpuid::cr4_allowed;
use crate::vcpu::guest::gpr;
use crate::vcpu::guest_cpu::{read_guest_phys, GuestCpu};
use crate::vcpu::Common;

const AR_LONG_MODE: u32 = 1 << 13;

/// A decoded CR-access exit (Intel SDM vol. 3, table 28-3).
pub(super) struct CrAccess {
    pub cr: u8,
    /// 0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW.
    pub kind: u8,
    pub gpr: usize,
}

impl CrAccess {
    pub fn decode(q: u64) -> Self {
        CrAccess { cr: (q & 0xf) as u8, kind: ((q >> 4) & 3) as u8, gpr: ((q >> 8) & 0xf) as usize }
    }
}

impl VmxVcpu {
    fn read_gpr(&mut self, n: usize) -> u64 {
        if n == gpr::RSP {
            field(vmcs::GUEST_RSP)
        } else {
            self.regs.gpr[n]
        }
    }

    fn write_gpr(&mut self, n: usize, v: u64) {
        if n == gpr::RSP {
            set(vmcs::GUEST_RSP, v);
        } else {
            self.regs.gpr[n] = v;
        }
    }

    /// Emulates the access; `false` means #GP.
    pub(super) fn cr_access(&mut self, a: &CrAccess, common: &mut Common) -> bool {
        match (a.cr, a.kind) {
            (0, 0) => {
                let v = self.read_gpr(a.gpr);
                self.write_cr0(v)
            }
            (4, 0) => {
                let v = self.read_gpr(a.gpr);
                self.write_cr4(v)
            }
            (8, 0) => {
                let v = self.read_gpr(a.gpr);
                if v > 0xf {
                    return false;
                }
                common.vlapic.set_tpr((v as u8) << 4);
                true
            }
            (8, 1) => {
                self.write_gpr(a.gpr, (common.vlapic.tpr() >> 4) as u64);
                true
            }
            _ => {
                log::warn!("unexpected CR{} access type {} exit", a.cr, a.kind);
                false
            }
        }
    }

    fn write_cr0(&mut self, value: u64) -> bool {
        if value >> 32 != 0
            || (value & CR0_PG != 0 && value & CR0_PE == 0)
            || (value & CR0_NW != 0 && value & CR0_CD == 0)
        {
            return false;
        }
        let old = visible(vmcs::GUEST_CR0, vmcs::CR0_GUEST_HOST_MASK, vmcs::CR0_READ_SHADOW);
        let cr4 = visible(vmcs::GUEST_CR4, vmcs::CR4_GUEST_HOST_MASK, vmcs::CR4_READ_SHADOW);
        let mut guest_efer = field(vmcs::GUEST_IA32_EFER);
        let mut entry = field(vmcs::ENTRY_CONTROLS);
        let ia32e = vmcs::entry::IA32E_MODE_GUEST;
        if value & CR0_PG != 0 && old & CR0_PG == 0 && guest_efer & efer::LME != 0 {
            if cr4 & CR4_PAE == 0 || field(vmcs::GUEST_CS_ACCESS_RIGHTS) & AR_LONG_MODE != 0 {
                return false;
            }
            guest_efer |= efer::LMA;
            entry |= ia32e;
        } else if value & CR0_PG == 0 && old & CR0_PG != 0 && guest_efer & efer::LMA != 0 {
            guest_efer &= !efer::LMA;
            entry &= !ia32e;
        }
        set(vmcs::GUEST_CR0, self.caps.fixed_cr0(value, true));
        set(vmcs::CR0_READ_SHADOW, value);
        set(vmcs::GUEST_IA32_EFER, guest_efer);
        self.cache.code64.set(None);
        set(vmcs::ENTRY_CONTROLS, entry);
        self.paging_changed()
    }

    fn write_cr4(&mut self, value: u64) -> bool {
        let write = Cr4Write {
            value,
            old: visible(vmcs::GUEST_CR4, vmcs::CR4_GUEST_HOST_MASK, vmcs::CR4_READ_SHADOW),
            allowed: cr4_allowed(&crate::regs::cpuid),
            long_mode: field(vmcs::GUEST_IA32_EFER) & efer::LMA != 0,
            cr3: field(vmcs::GUEST_CR3),
        };
        if !write.valid() {
            return false;
        }
        set(vmcs::GUEST_CR4, self.caps.fixed_cr4(value));
        set(vmcs::CR4_READ_SHADOW, value);
        self.paging_changed()
    }

    /// After an emulated CR0/CR4 write: PAE paging outside long mode needs its four
    /// page-directory pointers in the VMCS (the processor loads them itself on the
    /// writes it performs); cached translations are dropped.
    fn paging_changed(&mut self) -> bool {
        let p = self.paging();
        if p.cr0 & CR0_PG != 0 && p.cr4 & CR4_PAE != 0 && !p.long_mode() {
            let mut b = [0u8; 32];
            if !read_guest_phys(self.root, p.cr3 & 0xffff_ffe0, &mut b) {
                return false;
            }
            for (i, e) in b.chunks(8).enumerate() {
                if let Some(f) = vmcs::guest_pdpte(i) {
                    set(f, u64::from_le_bytes(e.try_into().unwrap_or([0; 8])));
                }
            }
        }
        self.flush_guest_tlb();
        true
    }
}
