//! Setting up delivery: FIFO control blocks and event-array pages, registered
//! `vcpu_info` areas, and releasing them.

use super::fifo::Control;
use super::{EventState, Fifo, TwoLevel, Wake};
use crate::arch::{Arch, HostMemory};
use crate::mm::{FramePool, PhysAddr, PAGE_BYTES, PAGE_SIZE};
use crate::p2m::Memory;
use alloc::vec;
use alloc::vec::Vec;
use keel_abi::event::*;
use keel_abi::Errno;
use spin::Mutex;

impl<A: Arch> EventState<A> {
    /// `EVTCHNOP_init_control`: registers `vcpu`'s control block at `gfn` + `offset`,
    /// switching the domain to the FIFO ABI on the first call.
    pub fn init_control(&mut self, mm: &Mutex<Memory<A>>, vcpu: u32, gfn: u64, offset: u32) -> Result<(), Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        if usize::try_from(offset).map_or(true, |o| o > PAGE_BYTES - EvtchnFifoControlBlock::SIZE)
            || !offset.is_multiple_of(8)
        {
            return Err(Errno::EINVAL);
        }
        if self.fifo.as_ref().is_some_and(|f| f.vcpus[vcpu as usize].control.is_some()) {
            return Err(Errno::EINVAL);
        }
        let frame = mm.lock().pin_ram(gfn)?;
        let first = self.fifo.is_none();
        let fifo = self.fifo.get_or_insert_with(|| Fifo::new(self.vcpus.len()));
        fifo.vcpus[vcpu as usize].control = Some(Control::at(PhysAddr(frame.0 + offset as u64)));
        if first {
            // Remember what was pending under the 2-level ABI; default priorities.
            let two = TwoLevel::<A> { shared_info: self.shared_frame, layout: self.layout };
            let bound: Vec<u32> = self.ports.bound().collect();
            for port in bound {
                let pending = two.is_pending(port);
                if let Some(p) = self.ports.get_mut(port) {
                    p.pending_without_word = pending;
                    p.priority = super::port::PRIORITY_DEFAULT;
                }
            }
        }
        Ok(())
    }

    /// `EVTCHNOP_expand_array`: adds the event-array page at `gfn` and re-raises events
    /// that arrived for its ports before it existed.
    pub fn expand_array(&mut self, mm: &Mutex<Memory<A>>, gfn: u64) -> Result<Vec<Wake>, Errno> {
        let fifo = self.fifo.as_ref().ok_or(Errno::EOPNOTSUPP)?;
        fifo.can_expand()?;
        let frame = mm.lock().pin_ram(gfn)?;
        let fifo = self.fifo.as_mut().ok_or(Errno::EOPNOTSUPP)?;
        let first = fifo.ports_with_words();
        fifo.pages.push(A::Memory::frame(frame));
        let end = fifo.ports_with_words().min(self.ports.valid_limit());
        let mut wakes = Vec::new();
        for port in first..end {
            if self.ports.get(port).is_some_and(|p| p.pending_without_word) {
                let w = self.raise(port);
                if w != Wake::default() {
                    wakes.push(w);
                }
            }
        }
        Ok(wakes)
    }

    /// Leaves the FIFO ABI (reset, destruction): unpins its pages.
    pub fn drop_fifo(&mut self, mm: &Mutex<Memory<A>>, pool: &FramePool) {
        // The handles go with `fifo`, before the pages are unpinned.
        let Some(fifo) = self.fifo.take() else { return };
        let pages: Vec<PhysAddr> = fifo
            .pages
            .iter()
            .map(|&f| A::Memory::frame_address(f))
            .chain(fifo.vcpus.iter().filter_map(|q| q.control.as_ref().map(|c| A::Memory::frame_address(c.frame))))
            .collect();
        drop(fifo);
        let mut mm = mm.lock();
        for page in pages {
            mm.unpin(pool, page);
        }
    }

    /// `VCPUOP_register_vcpu_info`: moves `vcpu`'s `vcpu_info` to `gfn` + `offset`,
    /// copying the old contents, and marks everything pending so nothing is lost.
    pub fn register_vcpu_info(
        &mut self,
        mm: &Mutex<Memory<A>>,
        vcpu: u32,
        gfn: u64,
        offset: u64,
    ) -> Result<Wake, Errno> {
        let size = self.layout.vcpu_info_size as u64;
        let v = self.vcpus.get(vcpu as usize).ok_or(Errno::ENOENT)?;
        if v.vcpu_info_frame.is_some() {
            return Err(Errno::EBUSY);
        }
        if offset >= PAGE_SIZE || gfn.checked_mul(PAGE_SIZE).is_none() {
            return Err(Errno::EINVAL);
        }
        if offset + size > PAGE_SIZE || !offset.is_multiple_of(8) {
            return Err(Errno::ENXIO);
        }
        let frame = mm.lock().pin_ram(gfn)?;
        let new = PhysAddr(frame.0 + offset);
        let mut bytes = vec![0u8; usize::try_from(size).map_err(|_| Errno::ENXIO)?];
        if let Some(old) = v.vcpu_info {
            A::Memory::read(old, &mut bytes);
        }
        bytes[0] = 1;
        let sel = self.layout.pending_sel;
        bytes.get_mut(sel..sel + self.layout.word_bytes).ok_or(Errno::ENXIO)?.fill(0xff);
        A::Memory::write(new, &bytes);
        let v = &mut self.vcpus[vcpu as usize];
        v.set_vcpu_info(Some(new));
        v.vcpu_info_frame = Some(frame);
        v.dummy_upcall = false;
        Ok(Wake { upcall: Some(vcpu), pending_port: None })
    }

    /// Unpins registered `vcpu_info` pages (destruction).
    pub fn drop_vcpu_info(&mut self, mm: &Mutex<Memory<A>>, pool: &FramePool) {
        let mut mm = mm.lock();
        for v in &mut self.vcpus {
            if let Some(f) = v.vcpu_info_frame.take() {
                // The handle goes before the pin.
                v.set_vcpu_info(None);
                mm.unpin(pool, f);
            }
        }
    }
}
