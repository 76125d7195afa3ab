//! All access to guest memory.
//!
//! - [`GuestPhys`]: copies to and from guest-physical addresses of one domain, translated
//!   through its own P2M ([`Memory::lookup`]), crossing page boundaries. Only the domain's
//!   RAM and its hypervisor pages (shared_info, grant frames, the console ring) are reachable; grant
//!   mappings of other domains' frames and device memory are not. Every failure is
//!   -EFAULT.
//! - [`virt`]: the same through guest *virtual* addresses, which is what hypercall
//!   pointer arguments are, translated by the calling vCPU's page tables.
//! - [`atomic`]: atomic operations on words of guest memory shared with the guest (event
//!   words, bitmaps, grant flags), with bounded retries so a guest racing on them cannot
//!   make the hypervisor spin.
//!
//! Nothing here panics on guest input.

pub mod atomic;
pub mod virt;

pub use atomic::{GuestWord32, GuestWord64, Unstable};
pub use virt::{GuestTranslate, GuestVirt, IdentityTranslation, NoTranslation};

use crate::arch::{Arch, HostMemory};
use crate::mm::{bytes_to_page_end, PhysAddr, PAGE_SIZE};
use crate::p2m::{Memory, PageKind};
use keel_abi::{Errno, Wire};

/// Runs `f` on a zeroed stack buffer of `size` bytes, the wire size of an ABI struct:
/// -EFAULT beyond 256 bytes. Most hypercall structs are small, and clearing 256 bytes
/// for each (as a single buffer size would) was a tenth of an event send.
pub(crate) fn with_wire_buf<R>(size: usize, f: impl FnOnce(&mut [u8]) -> Result<R, Errno>) -> Result<R, Errno> {
    if size <= 8 {
        // `evtchn_send` and the other one-port structs: one register's worth.
        let mut buf = [0u8; 8];
        f(&mut buf[..size])
    } else if size <= 32 {
        let mut buf = [0u8; 32];
        f(&mut buf[..size])
    } else {
        let mut buf = [0u8; 256];
        f(buf.get_mut(..size).ok_or(Errno::EFAULT)?)
    }
}

/// The kind of access a copy makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Guest-physical access to one domain, under its `mm` lock.
pub struct GuestPhys<'a, A: Arch> {
    mm: &'a Memory<A>,
}

/// How many host-contiguous runs [`GuestPhys::pieces`] remembers from its checking pass.
const RUNS: usize = 4;

impl<'a, A: Arch> GuestPhys<'a, A> {
    pub fn new(mm: &'a Memory<A>) -> Self {
        GuestPhys { mm }
    }

    /// The host address of guest-physical `gpa`, if the domain may make `access` there.
    pub fn translate(&self, gpa: u64, access: Access) -> Result<PhysAddr, Errno> {
        let l = self.mm.lookup(gpa / PAGE_SIZE).ok_or(Errno::EFAULT)?;
        let allowed = match access {
            Access::Read => l.perms.read,
            Access::Write => l.perms.write,
        };
        match l.kind {
            PageKind::Ram | PageKind::SharedInfo | PageKind::GrantFrame(_) | PageKind::ConsoleRing if allowed => {
                Ok(PhysAddr(l.frame.0 + gpa % PAGE_SIZE))
            }
            _ => Err(Errno::EFAULT),
        }
    }

    /// Calls `f(host address, offset in the buffer, length)` for each piece of
    /// `[gpa, gpa + len)` that is contiguous in host memory: one call per page, or, for
    /// ranges that form at most [`RUNS`] host-contiguous runs (RAM comes in 2 MiB chunks),
    /// one call per run.
    #[inline]
    fn pieces(
        &self,
        gpa: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(PhysAddr, usize, usize),
    ) -> Result<(), Errno> {
        gpa.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if len == 0 {
            return Ok(());
        }
        if len <= bytes_to_page_end(gpa) {
            // Inside one page (every small struct that does not straddle a page): one
            // translation, no run bookkeeping.
            f(self.translate(gpa, access)?, 0, len);
            return Ok(());
        }
        self.pieces_across(gpa, len, access, f)
    }

    /// [`GuestPhys::pieces`] of a range across pages: out of line, so that the one-page
    /// case pays none of its frame.
    #[inline(never)]
    fn pieces_across(
        &self,
        gpa: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(PhysAddr, usize, usize),
    ) -> Result<(), Errno> {
        // Translate everything first, so a fault leaves guest memory untouched; note the
        // runs meanwhile.
        let mut runs = [(PhysAddr(0), 0usize, 0usize); RUNS];
        let mut count = 0;
        let mut done = 0;
        while done < len {
            let a = gpa + done as u64;
            let n = bytes_to_page_end(a).min(len - done);
            let pa = self.translate(a, access)?;
            let extends = (1..=RUNS).contains(&count) && {
                let (start, _, bytes) = runs[count - 1];
                start.0 + bytes as u64 == pa.0
            };
            if extends {
                runs[count - 1].2 += n;
            } else {
                if count < RUNS {
                    runs[count] = (pa, done, n);
                }
                count += 1;
            }
            done += n;
        }
        if count <= RUNS {
            for &(pa, at, n) in &runs[..count] {
                f(pa, at, n);
            }
            return Ok(());
        }
        let mut done = 0;
        while done < len {
            let a = gpa + done as u64;
            let n = bytes_to_page_end(a).min(len - done);
            f(self.translate(a, access)?, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes from guest-physical `gpa`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let len = buf.len();
        self.pieces(gpa, len, Access::Read, |pa, at, n| A::Memory::read(pa, &mut buf[at..at + n]))
    }

    /// Copies `data` to guest-physical `gpa`.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), Errno> {
        self.pieces(gpa, data.len(), Access::Write, |pa, at, n| A::Memory::write(pa, &data[at..at + n]))
    }

    /// Reads an ABI struct at `gpa`.
    pub fn read_struct<T: Wire>(&self, gpa: u64) -> Result<T, Errno> {
        with_wire_buf(T::SIZE, |b| {
            self.read(gpa, b)?;
            T::from_bytes(b).ok_or(Errno::EFAULT)
        })
    }

    /// Writes an ABI struct to `gpa`.
    pub fn write_struct<T: Wire>(&self, gpa: u64, value: &T) -> Result<(), Errno> {
        with_wire_buf(T::SIZE, |b| {
            value.write_bytes(b).ok_or(Errno::EFAULT)?;
            self.write(gpa, b)
        })
    }

    /// A guest word for atomic access at `gpa`, which must be aligned to `align` and
    /// writable: used for words the hypervisor shares with a running guest.
    pub fn word_address(&self, gpa: u64, align: u64) -> Result<PhysAddr, Errno> {
        if !gpa.is_multiple_of(align) {
            return Err(Errno::EFAULT);
        }
        self.translate(gpa, Access::Write)
    }
}

#[cfg(test)]
mod tests;
