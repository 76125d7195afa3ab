//! Guest memory as an emulated instruction sees it, byte by byte through the guest's page
//! tables and the domain's EPT/NPT: the domain's RAM (and what is mapped into it) as it
//! is, and guest-physical space with nothing behind it as Xen shows a PVH domain (its
//! null I/O handler): reads all ones, writes dropped. A write to a page mapped read-only
//! (a read-only grant mapping) is refused with #GP, as Xen refuses it.

use super::super::emulate::{gva_to_gpa, read_guest_phys, GuestCpu, GP};
use super::super::walk::Access;
use super::super::Common;
use keel_kernel::arch::MemType;
use keel_kernel::mm::{translate, GuestPhysAddr};

/// What backs one guest-physical byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    /// Mapped readable normal memory (RAM, a hypervisor page, a grant mapping).
    Memory { writable: bool },
    /// Nothing Keel maps (or maps as device memory, which Keel never reads itself).
    Nothing,
}

fn backing(cpu: &dyn GuestCpu, gpa: u64) -> Backing {
    match translate::<crate::X86_64>(cpu.stage2_root(), GuestPhysAddr(gpa)) {
        Some((_, perms, MemType::Normal)) if perms.read => Backing::Memory { writable: perms.write },
        _ => Backing::Nothing,
    }
}

/// The guest-physical address of linear `la`, or #GP where the guest's tables do not
/// map it for `access` (the processor would have faulted first; Keel gives #GP rather
/// than #PF, as for string I/O).
fn physical(cpu: &dyn GuestCpu, la: u64, access: Access) -> Result<u64, u8> {
    gva_to_gpa(cpu.stage2_root(), &cpu.paging(), la, access).ok_or(GP)
}

/// Reads `size` bytes (at most 8) at linear `la`, little-endian; unbacked bytes are
/// `0xff`.
pub fn read(cpu: &dyn GuestCpu, la: u64, size: u8) -> Result<u64, u8> {
    let mut bytes = [0xffu8; 8];
    for (k, b) in bytes.iter_mut().enumerate().take(usize::from(size)) {
        let gpa = physical(cpu, la.wrapping_add(k as u64), Access::Read)?;
        if backing(cpu, gpa) != Backing::Nothing && !read_guest_phys(cpu.stage2_root(), gpa, core::slice::from_mut(b)) {
            *b = 0xff;
        }
    }
    Ok(u64::from_le_bytes(bytes))
}

/// Writes the low `size` bytes (at most 8) of `value` at linear `la`; bytes with
/// nothing behind them are dropped. Nothing is written if any byte is refused.
pub fn write(cpu: &dyn GuestCpu, common: &Common, la: u64, size: u8, value: u64) -> Result<(), u8> {
    let mut places = [None; 8];
    for (k, place) in places.iter_mut().enumerate().take(usize::from(size)) {
        let gpa = physical(cpu, la.wrapping_add(k as u64), Access::Write)?;
        *place = match backing(cpu, gpa) {
            Backing::Memory { writable: true } => Some(gpa),
            Backing::Memory { writable: false } => return Err(GP),
            Backing::Nothing => None,
        };
    }
    let bytes = value.to_le_bytes();
    for (place, byte) in places.iter().zip(bytes).take(usize::from(size)) {
        if let Some(gpa) = *place {
            let services = common.domain.services().ok_or(GP)?;
            services.write_phys(gpa, &[byte]).map_err(|_| GP)?;
        }
    }
    Ok(())
}
