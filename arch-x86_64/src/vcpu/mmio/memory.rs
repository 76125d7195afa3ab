//! Guest memory as an emulated instruction sees it, byte by byte through the guest's page
//! tables and the domain's EPT/NPT: the domain's RAM (and what is mapped into it) as it
//! is, and guest-physical space with nothing behind it as Xen shows a PVH domain (its
//! null I/O handler): reads all ones, writes dropped. A write to a page mapped read-only
//! (a read-only grant mapping) is refused with #GP, as Xen refuses it.

use super::super::common::Common;
use super::super::guest_cpu::{gva_to_gpa, read_guest_phys, GuestCpu, GP};
use super::super::walk::Access;
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

/// The pieces of an access of `size` bytes (at most 8) at linear `la` that lie in one
/// page each (one or two): offset in the access, length, guest-physical address.
fn pieces(cpu: &dyn GuestCpu, la: u64, size: u8, access: Access) -> Result<[(usize, usize, u64); 2], u8> {
    let size = usize::from(size.min(8));
    let first = usize::try_from(0x1000 - (la & 0xfff)).unwrap_or(size).min(size);
    let mut out = [(0, first, physical(cpu, la, access)?), (first, size - first, 0)];
    if first < size {
        out[1].2 = physical(cpu, la.wrapping_add(first as u64), access)?;
    }
    Ok(out)
}

/// Reads `size` bytes (at most 8) at linear `la`, little-endian; unbacked bytes are
/// `0xff`.
pub fn read(cpu: &dyn GuestCpu, la: u64, size: u8) -> Result<u64, u8> {
    let mut bytes = [0xffu8; 8];
    for (at, len, gpa) in pieces(cpu, la, size, Access::Read)? {
        let chunk = &mut bytes[at..at + len];
        if len > 0 && backing(cpu, gpa) != Backing::Nothing && !read_guest_phys(cpu.stage2_root(), gpa, chunk) {
            chunk.fill(0xff);
        }
    }
    Ok(u64::from_le_bytes(bytes))
}

/// Writes the low `size` bytes (at most 8) of `value` at linear `la`; bytes with
/// nothing behind them are dropped. Nothing is written if any byte is refused.
pub fn write(cpu: &dyn GuestCpu, common: &Common, la: u64, size: u8, value: u64) -> Result<(), u8> {
    let pieces = pieces(cpu, la, size, Access::Write)?;
    let mut writable = [false; 2];
    for (w, &(_, len, gpa)) in writable.iter_mut().zip(&pieces) {
        *w = match (len, backing(cpu, gpa)) {
            (0, _) | (_, Backing::Nothing) => false,
            (_, Backing::Memory { writable: true }) => true,
            (_, Backing::Memory { writable: false }) => return Err(GP),
        };
    }
    let bytes = value.to_le_bytes();
    for (&(at, len, gpa), _) in pieces.iter().zip(writable).filter(|(_, w)| *w) {
        let services = common.domain.services().ok_or(GP)?;
        services.write_phys(gpa, &bytes[at..at + len]).map_err(|_| GP)?;
    }
    Ok(())
}
