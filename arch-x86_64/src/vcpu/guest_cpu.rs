//! The guest CPU as both vendors present it to the shared emulation: [`GuestCpu`], the
//! segment names, the exceptions Keel injects, and reads of guest memory through the
//! guest's page tables and the EPT/NPT. A leaf of the vCPU code: the exit dispatcher
//! (`emulate.rs`), the MMIO and interrupt emulation and both vendors build on it.

use super::guest::GuestRegisters;
use super::msr::StateMsr;
use super::walk::cache::{EntryMemory, WalkCache};
use super::walk::{self, Access, Paging};
use crate::memory::X86Memory;
use keel_host_memory::PoolPage;
use keel_kernel::arch::{HostMemory, MemType};
use keel_kernel::mm::{translate, GuestPhysAddr, PhysAddr};

/// Exception vectors Keel injects.
pub const UD: u8 = 6;
pub const GP: u8 = 13;
/// Segment registers in x86 encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

impl Segment {
    pub fn from_encoding(n: u64) -> Segment {
        [Segment::Es, Segment::Cs, Segment::Ss, Segment::Ds, Segment::Fs, Segment::Gs][(n % 6) as usize]
    }
}

/// A vCPU's architectural state, as the vendor keeps it.
pub trait GuestCpu {
    fn regs(&mut self) -> &mut GuestRegisters;
    fn rip(&self) -> u64;
    /// Moves RIP (ending any STI/MOV SS interrupt shadow).
    fn set_rip(&mut self, rip: u64);
    fn rflags(&self) -> u64;
    /// Sets RFLAGS (an emulated instruction's status flags).
    fn set_rflags(&mut self, rflags: u64);
    /// The guest's IDTR: base and limit.
    fn idtr(&self) -> (u64, u32);
    /// The guest's paging registers as it sees them.
    fn paging(&self) -> Paging;
    /// Whether the guest runs 64-bit code (EFER.LMA and CS.L).
    fn in_64bit_code(&self) -> bool;
    fn segment_base(&self, seg: Segment) -> u64;
    /// Queues exception `vector` (with `error` code) for the next entry.
    fn inject(&mut self, vector: u8, error: Option<u32>);
    fn read_state_msr(&mut self, m: StateMsr) -> u64;
    /// Stores a value [`check_state_write`](super::msr::check_state_write) accepted.
    fn write_state_msr(&mut self, m: StateMsr, value: u64);
    /// The root of the domain's EPT/NPT.
    fn stage2_root(&self) -> PhysAddr;
    /// Whether the guest can take an external interrupt now (RFLAGS.IF, no interrupt
    /// shadow, no event queued).
    fn interruptible(&self) -> bool;
    /// Whether an event (exception, interrupt) is queued for the next entry.
    fn event_queued(&self) -> bool;
    /// Queues external interrupt `vector` for the next entry.
    fn inject_interrupt(&mut self, vector: u8);
    /// Asks for (or stops asking for) an exit as soon as the guest can take an
    /// interrupt.
    fn interrupt_window(&mut self, on: bool);
    /// The guest's CR8 where the vendor keeps it (SVM's V_TPR); `None` where every CR8
    /// access exits (VMX).
    fn cr8(&self) -> Option<u8>;
    /// Sets the vendor's copy of CR8 (SVM), after a write of the APIC's TPR.
    fn set_cr8(&mut self, cr8: u8);
}

/// Reads `buf.len()` bytes at guest-physical `gpa` through the EPT/NPT without the
/// domain's lock (page walks and instruction fetches; writes go through the core).
pub fn read_guest_phys(root: PhysAddr, gpa: u64, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let at = gpa.wrapping_add(done as u64);
        // One translation per page: the rest of this page, or of the buffer.
        let in_page = usize::try_from(0x1000 - (at & 0xfff)).unwrap_or(1).min(buf.len() - done);
        match translate::<crate::X86_64>(root, GuestPhysAddr(at)) {
            Some((pa, perms, MemType::Normal)) if perms.read => {
                X86Memory::read(pa, &mut buf[done..done + in_page]);
            }
            _ => return false,
        }
        done += in_page;
    }
    true
}

/// The guest-physical address of virtual `va` for `access`, by the guest's page tables.
pub fn gva_to_gpa(root: PhysAddr, paging: &Paging, va: u64, access: Access) -> Option<u64> {
    let mut read = |gpa: u64, size: usize| {
        let mut b = [0u8; 8];
        read_guest_phys(root, gpa, &mut b[..size]).then(|| u64::from_le_bytes(b))
    };
    walk::translate(paging, va, access, &mut read)
}

/// The domain's EPT/NPT as [`WalkCache`] reads table entries: through page handles of
/// the frames the stage 2 maps them to, valid while its generation stands.
pub struct Stage2Entries {
    pub root: PhysAddr,
}

impl EntryMemory for Stage2Entries {
    type Location = (PoolPage, usize);

    fn generation(&self) -> u64 {
        crate::stage2::generation()
    }

    fn locate(&self, gpa: u64) -> Option<(PoolPage, usize)> {
        match translate::<crate::X86_64>(self.root, GuestPhysAddr(gpa)) {
            Some((pa, perms, MemType::Normal)) if perms.read => {
                let offset = usize::try_from(pa.0 & 0xfff).ok()?;
                Some((X86Memory::frame(PhysAddr(pa.0 & !0xfff)), offset))
            }
            _ => None,
        }
    }

    fn load(&self, (page, offset): (PoolPage, usize), size: usize) -> u64 {
        if size == 4 {
            u64::from(X86Memory::frame_load_u32(page, offset))
        } else {
            X86Memory::frame_load_u64(page, offset)
        }
    }
}

/// A vCPU's remembered walks of its page tables ([`WalkCache`]).
pub type VcpuWalks = WalkCache<(PoolPage, usize)>;

/// [`gva_to_gpa`] through the vCPU's remembered walks: a hit re-reads the walk's entries
/// through their page handles instead of walking the guest's tables and the stage 2.
pub fn gva_to_gpa_cached(walks: &VcpuWalks, root: PhysAddr, paging: &Paging, va: u64, access: Access) -> Option<u64> {
    walks.translate(paging, va, access, &Stage2Entries { root })
}

/// Copies guest-virtual memory (instruction bytes, string I/O sources).
pub fn read_virt(cpu: &dyn GuestCpu, va: u64, access: Access, buf: &mut [u8]) -> bool {
    let paging = cpu.paging();
    let root = cpu.stage2_root();
    buf.iter_mut().enumerate().all(|(i, b)| {
        let Some(gpa) = gva_to_gpa(root, &paging, va.wrapping_add(i as u64), access) else { return false };
        let mut one = [0u8];
        let ok = read_guest_phys(root, gpa, &mut one);
        *b = one[0];
        ok
    })
}
