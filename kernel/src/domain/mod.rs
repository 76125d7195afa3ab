//! Domains and their vCPUs, generic over the architecture.
//!
//! A [`Domain`] owns its memory ([`Memory`](crate::p2m::Memory): P2M, RAM frames, special
//! pages), its event
//! channels, its grant table, its vCPUs' core state, HVM parameters and console
//! buffers and its watchdogs, each behind its own lock. Domains live in the
//! [`Hypervisor`](crate::Hypervisor)'s table and are created and destroyed there.

mod console_buffer;
mod hooks;
mod table;
mod vcpu;
mod watchdog;

pub use console_buffer::{sanitise, ConsoleBuffers, Output as ConsoleOutput};
pub use hooks::{Hooks, NoHooks};
pub use keel_abi::sched::ShutdownReason;
pub use table::DomainTable;
pub use vcpu::{Periodic, Poll, RunState, VcpuState};
pub use watchdog::{Expired, Watchdogs};

use crate::arch::{Arch, DomainInit, GuestDomain, HostMemory, SpaceId, UpcallRoute, VcpuError};
use crate::event::EventState;
use crate::grant::GrantTable;
use crate::mm::{FramePool, GuestPhysAddr, PhysAddr, PAGE_BYTES, PAGE_SIZE};
use crate::p2m::{Lookup, Memory};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64};
use keel_abi::event::EVTCHN_FIFO_NR_CHANNELS;
use keel_abi::hvm::{
    HVM_NR_PARAMS, HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CALLBACK_TYPE_SHIFT, HVM_PARAM_CALLBACK_TYPE_VECTOR,
};
use keel_abi::layout::{GuestLayout, VcpuTimeInfo};
use keel_abi::memory::E820Entry;
use keel_abi::xen::DomId;
use keel_abi::Errno;
use spin::Mutex;

/// How a domain is created.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// The domain id wanted (a dom0less configuration names it), or the lowest free one.
    pub id: Option<DomId>,
    /// The guest architecture's `shared_info`/`vcpu_info` layout.
    pub layout: &'static GuestLayout,
    /// Number of vCPUs (1..=[`MAX_VCPUS`]).
    pub vcpus: u32,
    /// RAM pages the domain may own.
    pub max_pages: u64,
    /// Grant-table frames the domain may have (Xen's default is 64).
    pub max_grant_frames: u32,
    /// Grant mappings the domain may hold at once.
    pub max_maptrack: u32,
    /// Highest event-channel port (at most 131071).
    pub max_event_port: u32,
    /// Whether the domain may bind global VIRQs (console input goes to it).
    pub global_virq_handler: bool,
    /// What `XENMEM_memory_map` reports (empty: -ENOSYS).
    pub memory_map: Vec<E820Entry>,
    /// `XENVER_guest_handle`.
    pub handle: [u8; 16],
    /// The backend emulates its console UART for the domain (`vpl011`).
    pub virtual_uart: bool,
    /// Its name, as the control interface reports it.
    pub name: String,
    /// `keel_abi::control::CAP_*` bits: a control domain may use the control interface.
    pub capabilities: u32,
    /// The initial domain (Xen's dom0, described by Xen's own command line): it is told
    /// so, as Xen tells its hardware domain (`XENFEAT_dom0`).
    pub initial: bool,
}

/// The most vCPUs a domain may have.
pub const MAX_VCPUS: u32 = 128;

impl DomainConfig {
    /// A configuration with Keel's defaults for everything but the essentials.
    pub fn new(layout: &'static GuestLayout, vcpus: u32, max_pages: u64) -> Self {
        DomainConfig {
            id: None,
            layout,
            vcpus,
            max_pages,
            max_grant_frames: 64,
            max_maptrack: 1 << 16,
            max_event_port: EVTCHN_FIFO_NR_CHANNELS - 1,
            global_virq_handler: false,
            memory_map: Vec::new(),
            handle: [0; 16],
            virtual_uart: false,
            name: String::new(),
            capabilities: 0,
            initial: false,
        }
    }
}

/// A domain's life-cycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Its vCPUs may run.
    Running,
    /// Paused by the hypervisor; resumes with [`Domain::unpause`].
    Paused,
    /// The guest shut itself down.
    ShutDown(ShutdownReason),
    /// The hypervisor found it unable to continue (e.g. a triple fault).
    Crashed,
    /// Being destroyed.
    Dying,
}

/// A domain.
pub struct Domain<A: Arch> {
    id: DomId,
    config: DomainConfig,
    pub(crate) state: Mutex<DomainState>,
    pub(crate) mm: Mutex<Memory<A>>,
    pub(crate) events: Mutex<EventState<A>>,
    pub(crate) grants: Mutex<GrantTable>,
    pub(crate) vcpus: Vec<Mutex<VcpuState>>,
    pub(crate) params: Mutex<[u64; HVM_NR_PARAMS as usize]>,
    pub(crate) console: Mutex<ConsoleBuffers>,
    shared_info: PhysAddr,
    /// The host frame of its PV console ring, once attached.
    pub(crate) console_ring: spin::Once<PhysAddr>,
    pub(crate) vm_assist: AtomicU64,
    pub(crate) shutdown_code: AtomicU32,
    /// vCPUs with an outstanding `SCHEDOP_poll`.
    pub(crate) pollers: AtomicU32,
    /// `SCHEDOP_watchdog` timers.
    pub(crate) watchdogs: Mutex<Watchdogs>,
    /// The wall-clock time of system time 0 last published (seconds, nanoseconds), to
    /// publish again when the shared_info layout switches. A leaf lock.
    wallclock: Mutex<Option<(u64, u32)>>,
    /// Host interrupts passed through to it (device passthrough), forwarded once
    /// [`Hypervisor::route_device_irqs`](crate::hypervisor::Hypervisor::route_device_irqs)
    /// routed them. A leaf lock.
    device_irqs: Mutex<Vec<u32>>,
    /// The backend's state of the domain (virtual devices shared by its vCPUs).
    arch: Arc<A::Domain>,
}

/// No `SCHEDOP_shutdown_code` recorded.
pub(crate) const NO_SHUTDOWN_CODE: u32 = u32::MAX;

impl<A: Arch> Domain<A> {
    /// Builds a domain's state (the hypervisor's table calls this).
    pub(crate) fn new(pool: &FramePool, id: DomId, config: DomainConfig, now: u64) -> Result<Self, Errno> {
        if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
            return Err(Errno::EINVAL);
        }
        let shared_info = pool.alloc(1).ok_or(Errno::ENOMEM)?;
        A::Memory::zero(shared_info, PAGE_BYTES);
        let mm = match Memory::new(pool, SpaceId(id.wrapping_add(1)), config.max_pages) {
            Ok(mm) => mm,
            Err(e) => {
                pool.free(shared_info, 1);
                return Err(e);
            }
        };
        let init = DomainInit {
            id,
            vcpus: config.vcpus,
            stage2_root: mm.p2m_root().unwrap_or(PhysAddr(0)),
            space: SpaceId(id.wrapping_add(1)),
            virtual_uart: config.virtual_uart,
        };
        let arch = match A::Domain::new(&init) {
            Ok(a) => Arc::new(a),
            Err(e) => {
                let mut mm = mm;
                mm.teardown(pool);
                pool.free(shared_info, 1);
                return Err(match e {
                    VcpuError::NoMemory => Errno::ENOMEM,
                    VcpuError::NoVirtualization => Errno::ENODEV,
                });
            }
        };
        let mut events = EventState::new(
            config.layout,
            shared_info,
            config.vcpus,
            config.max_event_port,
            config.global_virq_handler,
        );
        if config.capabilities & (keel_abi::control::CAP_CONTROL | keel_abi::control::CAP_XENSTORE) != 0 {
            events.allow_global_virq(keel_abi::xen::VIRQ_DOM_EXC);
        }
        Ok(Domain {
            id,
            state: Mutex::new(DomainState::Running),
            mm: Mutex::new(mm),
            events: Mutex::new(events),
            grants: Mutex::new(GrantTable::new(config.max_grant_frames, config.max_maptrack)),
            vcpus: (0..config.vcpus).map(|v| Mutex::new(VcpuState::new(v == 0, now))).collect(),
            params: Mutex::new([0; HVM_NR_PARAMS as usize]),
            console: Mutex::new(ConsoleBuffers::new()),
            shared_info,
            console_ring: spin::Once::new(),
            vm_assist: AtomicU64::new(0),
            shutdown_code: AtomicU32::new(NO_SHUTDOWN_CODE),
            pollers: AtomicU32::new(0),
            watchdogs: Mutex::new(Watchdogs::default()),
            wallclock: Mutex::new(None),
            device_irqs: Mutex::new(Vec::new()),
            arch,
            config,
        })
    }

    pub fn id(&self) -> DomId {
        self.id
    }

    pub fn config(&self) -> &DomainConfig {
        &self.config
    }

    /// The backend's state of the domain, for [`Vcpu::new`](crate::arch::Vcpu::new).
    pub fn arch(&self) -> &Arc<A::Domain> {
        &self.arch
    }

    /// Records the host interrupts the backend's loader gave the domain with its
    /// passthrough devices, for the builder to route to it.
    pub fn set_device_irqs(&self, irqs: Vec<u32>) {
        *self.device_irqs.lock() = irqs;
    }

    /// The host interrupts passed through to the domain.
    pub fn device_irqs(&self) -> Vec<u32> {
        self.device_irqs.lock().clone()
    }

    pub fn layout(&self) -> &'static GuestLayout {
        self.config.layout
    }

    pub fn nr_vcpus(&self) -> u32 {
        u32::try_from(self.vcpus.len()).unwrap_or(u32::MAX)
    }

    pub fn state(&self) -> DomainState {
        *self.state.lock()
    }

    pub(crate) fn set_state(&self, s: DomainState) {
        *self.state.lock() = s;
    }

    /// Pauses a running domain.
    pub fn pause(&self) {
        let mut s = self.state.lock();
        if *s == DomainState::Running {
            *s = DomainState::Paused;
        }
    }

    /// Resumes a paused domain.
    pub fn unpause(&self) {
        let mut s = self.state.lock();
        if *s == DomainState::Paused {
            *s = DomainState::Running;
        }
    }

    /// The host frame of the domain's shared_info page.
    pub fn shared_info_frame(&self) -> PhysAddr {
        self.shared_info
    }

    /// The P2M root for the backend (none once destroyed), and its TLB tag.
    pub fn p2m_root(&self) -> Option<PhysAddr> {
        self.mm.lock().p2m_root()
    }

    /// The TLB tag of the domain's address space.
    pub fn space(&self) -> SpaceId {
        SpaceId(self.id.wrapping_add(1))
    }

    /// RAM pages the domain owns.
    pub fn tot_pages(&self) -> u64 {
        self.mm.lock().tot_pages()
    }

    /// Gives the domain `size` bytes of zeroed RAM at `gpa` (domain building).
    pub fn populate_ram(&self, pool: &FramePool, gpa: GuestPhysAddr, size: u64) -> Result<(), Errno> {
        if !gpa.is_aligned(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        self.mm.lock().populate(pool, gpa.0 / PAGE_SIZE, size / PAGE_SIZE)
    }

    /// Maps `size` bytes of static RAM (reserved in `pool`) at `hpa` to guest-physical
    /// `gpa` (page aligned, holes): see [`Memory::map_static`]. For a direct-mapped
    /// domain `gpa` is `hpa`.
    pub fn map_static_ram(&self, pool: &FramePool, gpa: GuestPhysAddr, hpa: PhysAddr, size: u64) -> Result<(), Errno> {
        if !gpa.is_aligned(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        self.mm.lock().map_static(pool, gpa.0 / PAGE_SIZE, hpa, size / PAGE_SIZE)
    }

    /// Maps `size` bytes of host device memory at `hpa` to guest-physical `gpa` (page
    /// aligned, a hole): see [`Memory::map_device`]. The backend's domain set-up calls it.
    pub fn map_device(
        &self,
        pool: &FramePool,
        gpa: GuestPhysAddr,
        hpa: PhysAddr,
        size: u64,
        perms: crate::arch::Perms,
    ) -> Result<(), Errno> {
        if !gpa.is_aligned(PAGE_SIZE) || !hpa.0.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        self.mm.lock().map_device(pool, gpa.0 / PAGE_SIZE, hpa, size / PAGE_SIZE, perms)
    }

    /// What `gfn` maps to in the domain's P2M.
    pub fn lookup(&self, gfn: u64) -> Option<Lookup> {
        self.mm.lock().lookup(gfn)
    }

    /// Copies `data` into the domain's memory at guest-physical `gpa` (domain building).
    pub fn write_phys(&self, gpa: u64, data: &[u8]) -> Result<(), Errno> {
        let mm = self.mm.lock();
        crate::guest_memory::GuestPhys::new(&mm).write(gpa, data)
    }

    /// Copies from the domain's memory at guest-physical `gpa`.
    pub fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mm = self.mm.lock();
        crate::guest_memory::GuestPhys::new(&mm).read(gpa, buf)
    }

    /// A copy of `vcpu`'s core state.
    pub fn vcpu(&self, vcpu: u32) -> Option<VcpuState> {
        self.vcpus.get(vcpu as usize).map(|v| v.lock().clone())
    }

    /// The level of `vcpu`'s event upcall (`vcpu_info.evtchn_upcall_pending`). The
    /// backend reads it before entering the guest and after the guest acknowledges the
    /// upcall interrupt: while it is set, the event PPI (arm) or callback vector (x86)
    /// stays asserted.
    pub fn upcall_pending(&self, vcpu: u32) -> bool {
        self.events.lock().upcall_pending(vcpu)
    }

    /// How `vcpu`'s upcall reaches the guest: the per-vCPU vector
    /// (`HVMOP_set_evtchn_upcall_vector`), else the `HVM_PARAM_CALLBACK_IRQ` vector
    /// (type 2), else the architecture's own event interrupt.
    pub fn upcall_route(&self, vcpu: u32) -> UpcallRoute {
        if let Some(v) = self.vcpus.get(vcpu as usize).and_then(|v| v.lock().upcall_vector) {
            return UpcallRoute::LapicVector(v);
        }
        let callback = self.param(HVM_PARAM_CALLBACK_IRQ);
        if callback >> HVM_PARAM_CALLBACK_TYPE_SHIFT == HVM_PARAM_CALLBACK_TYPE_VECTOR {
            // The vector is the low byte of the parameter (Xen: `(uint8_t)val`).
            return UpcallRoute::CallbackVector((callback & 0xff) as u8);
        }
        UpcallRoute::Platform
    }

    /// Publishes `vcpu`'s pvclock (`vcpu_info.time`) with Xen's version protocol: the
    /// version is odd while the fields change. Returns false if the vCPU has no
    /// `vcpu_info`. The x86 backend calls this (XENFEAT_hvm_safe_pvclock).
    pub fn write_vcpu_time(&self, vcpu: u32, time: &VcpuTimeInfo) -> bool {
        let (vi, layout) = {
            let events = self.events.lock();
            (events.vcpus.get(vcpu as usize).and_then(|v| v.vcpu_info), events.layout())
        };
        let Some(vi) = vi else { return false };
        let at = PhysAddr(vi.0 + layout.vcpu_info_time as u64);
        let bytes = time.to_bytes();
        versioned_update::<A>(at, || A::Memory::write(PhysAddr(at.0 + 4), &bytes[4..]));
        true
    }

    /// Publishes the wall-clock time of system time 0 in shared_info (`wc_sec`,
    /// `wc_nsec`, `wc_sec_hi`) in its current layout, with the same version protocol on
    /// `wc_version`.
    pub fn set_wallclock(&self, sec: u64, nsec: u32) {
        // The events lock keeps the layout from switching meanwhile.
        let events = self.events.lock();
        *self.wallclock.lock() = Some((sec, nsec));
        let layout = events.layout();
        let at = PhysAddr(self.shared_info.0 + layout.wc_version as u64);
        let hi = PhysAddr(self.shared_info.0 + layout.wc_sec_hi as u64);
        let mut bytes = [0u8; 8];
        // wc_sec holds the low 32 bits, wc_sec_hi the high ones.
        bytes[..4].copy_from_slice(&((sec & 0xffff_ffff) as u32).to_le_bytes());
        bytes[4..].copy_from_slice(&nsec.to_le_bytes());
        versioned_update::<A>(at, || {
            A::Memory::write(PhysAddr(at.0 + 4), &bytes);
            A::Memory::write(hi, &u32::try_from(sec >> 32).unwrap_or(u32::MAX).to_le_bytes());
        });
    }

    /// Chooses the `shared_info`/`vcpu_info` layout by the mode of the caller (`compat`:
    /// 32-bit code), as Xen's `hvm_latch_shinfo_size` does when a domain sets its own
    /// `HVM_PARAM_CALLBACK_IRQ` or fills its hypercall page. Domains whose architecture
    /// has one layout keep it.
    ///
    /// Two steps, each unconditional: the layout is set (logged only when it changes), and
    /// the wall clock, if one was published, is written again in it. Xen rewrites the wall
    /// clock at every latch, whether or not the layout changed, and so does Keel: a guest
    /// sees `wc_version` move at each latch.
    pub fn latch_shared_layout(&self, compat: bool) {
        let layout = self.layout().for_callers(compat);
        let previous = {
            let mut events = self.events.lock();
            let previous = events.layout();
            events.set_layout(layout);
            previous
        };
        if !core::ptr::eq(previous, layout) {
            log::info!("d{}: shared_info layout of {}-bit callers", self.id, if compat { 32 } else { 64 });
        }
        self.republish_wallclock();
    }

    /// Writes the published wall clock again, in the layout the domain sees now (nothing
    /// if none was published yet).
    fn republish_wallclock(&self) {
        let published = *self.wallclock.lock();
        if let Some((sec, nsec)) = published {
            self.set_wallclock(sec, nsec);
        }
    }

    /// The `shared_info`/`vcpu_info` layout the domain sees now.
    pub fn shared_layout(&self) -> &'static GuestLayout {
        self.events.lock().layout()
    }

    /// `HVM_PARAM_*` value `index` (0 if out of range).
    pub fn param(&self, index: u32) -> u64 {
        self.params.lock().get(index as usize).copied().unwrap_or(0)
    }

    /// Sets an HVM parameter from the hypervisor side (domain builder: console and
    /// xenstore pages and ports).
    pub fn set_param(&self, index: u32, value: u64) -> Result<(), Errno> {
        *self.params.lock().get_mut(index as usize).ok_or(Errno::EINVAL)? = value;
        Ok(())
    }

    /// The scheduler reports that `vcpu` started or stopped running on a CPU; true if
    /// its runstate changed.
    pub fn set_running(&self, vcpu: u32, running: bool, now: u64) -> bool {
        let Some(v) = self.vcpus.get(vcpu as usize) else { return false };
        let mut v = v.lock();
        let to = match (v.run_state(), running) {
            (RunState::Runnable, true) => RunState::Running,
            (RunState::Running, false) => RunState::Runnable,
            _ => return false,
        };
        v.set_run_state(to, now);
        true
    }

    /// Takes the `VCPUOP_initialise` state `vcpu` is to be created in, if any.
    pub fn take_vcpu_context(&self, vcpu: u32) -> Option<crate::arch::VcpuContext> {
        self.vcpus.get(vcpu as usize)?.lock().context.take()
    }

    /// Marks the boot-time start of a secondary vCPU (PSCI CPU_ON, INIT/SIPI).
    pub fn start_vcpu(&self, vcpu: u32, now: u64) -> Result<(), Errno> {
        let mut v = self.vcpus.get(vcpu as usize).ok_or(Errno::ENOENT)?.lock();
        v.initialised = true;
        v.context = None;
        v.online = true;
        if v.run_state() == RunState::Offline {
            v.set_run_state(RunState::Runnable, now);
        }
        Ok(())
    }
}

impl<A: Arch> crate::arch::DomainServices for Domain<A> {
    fn domain_id(&self) -> DomId {
        self.id
    }

    fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        Domain::read_phys(self, gpa, buf)
    }

    fn write_phys(&self, gpa: u64, data: &[u8]) -> Result<(), Errno> {
        Domain::write_phys(self, gpa, data)
    }

    fn write_vcpu_time(&self, vcpu: u32, time: &VcpuTimeInfo) -> bool {
        Domain::write_vcpu_time(self, vcpu, time)
    }

    fn set_wallclock(&self, sec: u64, nsec: u32) {
        Domain::set_wallclock(self, sec, nsec)
    }

    fn latch_shared_layout(&self, compat: bool) {
        Domain::latch_shared_layout(self, compat)
    }

    fn upcall_pending(&self, vcpu: u32) -> bool {
        Domain::upcall_pending(self, vcpu)
    }
}

/// Runs `write` under the version word at `at`: the version becomes odd, `write` changes
/// the fields, then the version becomes even again.
fn versioned_update<A: Arch>(at: PhysAddr, write: impl FnOnce()) {
    let word = crate::guest_memory::GuestWord32::<A>::at(at);
    let begin = word.load().wrapping_add(1) | 1;
    word.store(begin);
    write();
    word.store(begin.wrapping_add(1));
}

#[cfg(test)]
mod tests;
