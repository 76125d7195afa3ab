//! Guest-virtual access: hypercall pointer arguments and guest handles are addresses in
//! the calling vCPU's virtual address space (Xen on arm translates them with the
//! guest's stage-1 tables; on x86 HVM/PVH they are linear addresses). The backend walks
//! the guest's page tables through [`GuestTranslate`]; this module splits every access
//! at virtual page boundaries and copies through [`GuestPhys`].

use super::GuestPhys;
use crate::arch::Arch;
use crate::mm::{bytes_to_page_end, GuestPhysAddr};
use crate::p2m::Memory;
use keel_abi::{Errno, Wire};
use spin::Mutex;

/// Translates the calling vCPU's virtual addresses to guest-physical ones.
///
/// The backend implements it with the vCPU's current translation regime (arm64: the
/// EL1&0 stage-1 tables, e.g. `AT S1E1R`/`S1E1W` or a software walk; x86: CR3/CR4/EFER
/// paging). While the guest runs with its MMU off, virtual equals physical
/// ([`IdentityTranslation`]).
pub trait GuestTranslate {
    /// The guest-physical address of `gva` for a read (`write == false`) or a write, or
    /// `None` if the guest's tables do not map it with that right.
    fn gva_to_gpa(&self, gva: u64, write: bool) -> Option<GuestPhysAddr>;
}

/// A vCPU running with its MMU off: virtual addresses are physical.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityTranslation;

impl GuestTranslate for IdentityTranslation {
    fn gva_to_gpa(&self, gva: u64, _write: bool) -> Option<GuestPhysAddr> {
        Some(GuestPhysAddr(gva))
    }
}

/// No translation available: every virtual access faults.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTranslation;

impl GuestTranslate for NoTranslation {
    fn gva_to_gpa(&self, _gva: u64, _write: bool) -> Option<GuestPhysAddr> {
        None
    }
}

/// Copies to and from one domain's guest-virtual addresses.
pub struct GuestVirt<'a, A: Arch> {
    mm: &'a Mutex<Memory<A>>,
    tr: &'a dyn GuestTranslate,
}

impl<'a, A: Arch> GuestVirt<'a, A> {
    pub fn new(mm: &'a Mutex<Memory<A>>, tr: &'a dyn GuestTranslate) -> Self {
        GuestVirt { mm, tr }
    }

    /// Out of line: `read`'s one-page case pays none of its frame.
    #[inline(never)]
    fn each_page(
        &self,
        va: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&GuestPhys<'_, A>, u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mm = self.mm.lock();
        let phys = GuestPhys::new(&mm);
        let mut done = 0;
        while done < len {
            let a = va + done as u64;
            let n = bytes_to_page_end(a).min(len - done);
            let gpa = self.tr.gva_to_gpa(a, write).ok_or(Errno::EFAULT)?;
            f(&phys, gpa.0, done, n)?;
            done += n;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes from `va`.
    pub fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if !buf.is_empty() && buf.len() <= bytes_to_page_end(va) {
            // Inside one page (every small hypercall argument that does not straddle
            // one): one translation, no page loop. The same steps as `each_page`, in
            // the same order.
            let mm = self.mm.lock();
            let gpa = self.tr.gva_to_gpa(va, false).ok_or(Errno::EFAULT)?;
            return GuestPhys::new(&mm).read(gpa.0, buf);
        }
        self.each_page(va, buf.len(), false, |p, gpa, at, n| p.read(gpa, &mut buf[at..at + n]))
    }

    /// Copies `data` to `va`.
    pub fn write(&self, va: u64, data: &[u8]) -> Result<(), Errno> {
        self.each_page(va, data.len(), true, |p, gpa, at, n| p.write(gpa, &data[at..at + n]))
    }

    /// Reads an ABI struct (at most 256 bytes) at `va`.
    pub fn read_struct<T: Wire>(&self, va: u64) -> Result<T, Errno> {
        super::with_wire_buf(T::SIZE, |b| {
            self.read(va, b)?;
            T::from_bytes(b).ok_or(Errno::EFAULT)
        })
    }

    /// Writes an ABI struct (at most 256 bytes) to `va`.
    pub fn write_struct<T: Wire>(&self, va: u64, value: &T) -> Result<(), Errno> {
        super::with_wire_buf(T::SIZE, |b| {
            value.write_bytes(b).ok_or(Errno::EFAULT)?;
            self.write(va, b)
        })
    }

    /// Reads element `index` of an array of `T` at `va`.
    pub fn read_element<T: Wire>(&self, va: u64, index: u64) -> Result<T, Errno> {
        let off = index.checked_mul(T::SIZE as u64).ok_or(Errno::EFAULT)?;
        self.read_struct(va.checked_add(off).ok_or(Errno::EFAULT)?)
    }

    /// Writes element `index` of an array of `T` at `va`.
    pub fn write_element<T: Wire>(&self, va: u64, index: u64, value: &T) -> Result<(), Errno> {
        let off = index.checked_mul(T::SIZE as u64).ok_or(Errno::EFAULT)?;
        self.write_struct(va.checked_add(off).ok_or(Errno::EFAULT)?, value)
    }

    /// Reads a little-endian `u32` at `va + 4 * index`.
    pub fn read_u32(&self, va: u64, index: u64) -> Result<u32, Errno> {
        let mut b = [0u8; 4];
        let off = index.checked_mul(4).and_then(|o| va.checked_add(o)).ok_or(Errno::EFAULT)?;
        self.read(off, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64` at `va + 8 * index`.
    pub fn read_u64(&self, va: u64, index: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        let off = index.checked_mul(8).and_then(|o| va.checked_add(o)).ok_or(Errno::EFAULT)?;
        self.read(off, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u32` at `va + 4 * index`.
    pub fn write_u32(&self, va: u64, index: u64, value: u32) -> Result<(), Errno> {
        let off = index.checked_mul(4).and_then(|o| va.checked_add(o)).ok_or(Errno::EFAULT)?;
        self.write(off, &value.to_le_bytes())
    }

    /// Writes a little-endian `u64` at `va + 8 * index`.
    pub fn write_u64(&self, va: u64, index: u64, value: u64) -> Result<(), Errno> {
        let off = index.checked_mul(8).and_then(|o| va.checked_add(o)).ok_or(Errno::EFAULT)?;
        self.write(off, &value.to_le_bytes())
    }
}
