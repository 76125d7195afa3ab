//! [`Control`] over Keel's control interface (`docs/control-abi.md`): hypercall 60 with
//! the structs of [`keel_abi::control`], issued through a [`Hypervisor`] (in the program,
//! Linux's `/dev/xen/privcmd`).
//!
//! Interface 1.1 creates domains (`keel_create.rs`) and reports the host's memory; it
//! has no per-vCPU state, which is derived from what it reports (see
//! `docs/toolstack.md`). Shutdown and reboot go through `CTL_SHUTDOWN` until xenstore's
//! `control/shutdown` is served.

use std::collections::HashMap;

use keel_abi::control::*;
use keel_abi::hypercall::XEN_VERSION;
use keel_abi::sched::{SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};
use keel_abi::version::{XENVER_EXTRAVERSION, XENVER_VERSION};
use keel_abi::Wire;

use crate::control::*;
use crate::cpulist::CpuSet;

/// Linux's (and Xen's) errno values the interface returns.
pub const EPERM: i32 = 1;
pub const ESRCH: i32 = 3;
pub const EFAULT: i32 = 14;
pub const EINVAL: i32 = 22;
pub const ENOSYS: i32 = 38;

/// Bytes of a guest page (Keel's `tot_pages` unit).
const PAGE_KIB: u64 = 4;
/// CPUs a `CtlAffinity` map can name.
const AFFINITY_CPUS: u32 = 256;

/// Issues hypercalls for keelctl.
pub trait Hypervisor {
    /// Hypercall `op` with `a0` and, as second argument, the address of `arg` (0 if
    /// empty); `data` is a buffer whose address `arg` holds (it must stay mapped). The
    /// result, or the positive errno of a negative result.
    fn call(&mut self, op: u64, a0: u64, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32>;
}

/// keelctl's [`Control`] over Keel's control hypercall.
#[derive(Debug)]
pub struct KeelControl<H: Hypervisor> {
    hv: H,
    /// Per domain: the console output offset the next read starts from.
    console_offsets: HashMap<DomId, u64>,
}

/// The address of a buffer, as the hypercall's structs carry it.
fn handle(data: &mut [u8]) -> u64 {
    data.as_mut_ptr() as u64
}

fn domid16(id: DomId) -> Result<u16, ControlError> {
    u16::try_from(id).map_err(|_| ControlError::NoSuchDomain(id))
}

/// The error for errno `e` of sub-op `what` on domain `id`.
pub fn error(e: i32, what: &str, id: Option<DomId>) -> ControlError {
    match (e, id) {
        (EPERM, _) => ControlError::Denied,
        (ESRCH, Some(id)) => ControlError::NoSuchDomain(id),
        (EINVAL, Some(id)) => ControlError::Invalid(format!("Keel refused {what} of domain {id} (EINVAL)")),
        (EINVAL, None) => ControlError::Invalid(format!("Keel refused {what} (EINVAL)")),
        (ENOSYS, _) => ControlError::Failed(format!(
            "{what}: the hypervisor does not know Keel's control interface (ENOSYS): is this Keel?"
        )),
        (EFAULT, _) => {
            ControlError::Failed(format!("{what}: the hypervisor could not reach keelctl's buffer (EFAULT)"))
        }
        (e, _) => ControlError::Failed(format!("{what}: {}", std::io::Error::from_raw_os_error(e))),
    }
}

/// `CtlDomainInfo` as keelctl shows a domain.
pub fn domain_info(i: &CtlDomainInfo) -> DomainInfo {
    let len = i.name.iter().position(|&b| b == 0).unwrap_or(i.name.len());
    let reason = ShutdownReason::from_abi(u32::from(i.shutdown_reason)).unwrap_or(ShutdownReason::Poweroff);
    DomainInfo {
        id: u32::from(i.domid),
        name: String::from_utf8_lossy(&i.name[..len]).into_owned(),
        memory_kib: i.tot_pages.saturating_mul(PAGE_KIB),
        vcpus_online: i.vcpus_online,
        running: i.state == CTL_STATE_RUNNING,
        blocked: i.state == CTL_STATE_BLOCKED,
        paused: i.state == CTL_STATE_PAUSED,
        shutdown: match i.state {
            CTL_STATE_SHUTDOWN => Some(reason),
            CTL_STATE_CRASHED => Some(ShutdownReason::Crash),
            _ => None,
        },
        dying: i.state == CTL_STATE_DYING,
        cpu_time_ns: i.cpu_time_ns,
    }
}

/// The affinity map of `set` (CPUs below 256, as `CtlAffinity` holds).
pub fn cpumap(set: &CpuSet) -> [u64; 4] {
    let mut map = [0u64; 4];
    for cpu in set.on_host(AFFINITY_CPUS) {
        let (word, bit) = (cpu / 64, cpu % 64);
        if let Some(w) = usize::try_from(word).ok().and_then(|w| map.get_mut(w)) {
            *w |= 1 << bit;
        }
    }
    map
}

impl<H: Hypervisor> KeelControl<H> {
    pub fn new(hv: H) -> Self {
        KeelControl { hv, console_offsets: HashMap::new() }
    }

    /// The hypercall issuer back (for tests).
    pub fn into_inner(self) -> H {
        self.hv
    }

    fn ctl(&mut self, cmd: u32, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32> {
        self.hv.call(KEEL_CONTROL_OP, u64::from(cmd), arg, data)
    }

    /// Control sub-op `cmd` with its struct `arg` and the buffer `data` it names.
    pub(crate) fn raw_ctl(&mut self, cmd: u32, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32> {
        self.ctl(cmd, arg, data)
    }

    /// Checks that the hypervisor speaks control interface 1.x.
    pub fn check_version(&mut self) -> Result<(), ControlError> {
        let v = self.ctl(CTL_VERSION, &mut [], &mut []).map_err(|e| error(e, "the version query", None))?;
        let major = v >> 16;
        if major != i64::from(CONTROL_VERSION.major) {
            return Err(ControlError::Failed(format!(
                "Keel's control interface is version {major}.{}; this keelctl speaks {}.x",
                v & 0xffff,
                CONTROL_VERSION.major
            )));
        }
        Ok(())
    }

    fn query(&mut self, id: DomId) -> Result<CtlDomainInfo, ControlError> {
        let mut q = CtlDomainInfo { domid: domid16(id)?, ..CtlDomainInfo::ZERO }.to_bytes();
        self.ctl(CTL_QUERY, &mut q, &mut []).map_err(|e| error(e, "the query", Some(id)))?;
        CtlDomainInfo::from_bytes(&q).ok_or_else(|| ControlError::Failed("short CTL_QUERY answer".into()))
    }

    fn on_domain(&mut self, cmd: u32, what: &str, id: DomId) -> Result<(), ControlError> {
        let mut a = CtlDomain { domid: domid16(id)?, _pad: [0; 6] }.to_bytes();
        self.ctl(cmd, &mut a, &mut []).map_err(|e| error(e, what, Some(id)))?;
        Ok(())
    }

    fn version_string(&mut self) -> (u32, u32, String) {
        let v = self.hv.call(XEN_VERSION, XENVER_VERSION, &mut [], &mut []).unwrap_or(0);
        let mut extra = [0u8; 16];
        let _ = self.hv.call(XEN_VERSION, XENVER_EXTRAVERSION, &mut extra, &mut []);
        let len = extra.iter().position(|&b| b == 0).unwrap_or(extra.len());
        let major = u32::try_from((v >> 16) & 0xffff).unwrap_or(0);
        let minor = u32::try_from(v & 0xffff).unwrap_or(0);
        (major, minor, String::from_utf8_lossy(&extra[..len]).into_owned())
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// CPUs in a Linux CPU list file such as `/sys/devices/system/cpu/possible` (`0-3`).
fn linux_cpu_count(list: &str) -> u32 {
    CpuSet::parse(list).map(|s| u32::try_from(s.on_host(crate::cpulist::MAX_CPUS).len()).unwrap_or(0)).unwrap_or(0)
}

impl<H: Hypervisor> Control for KeelControl<H> {
    fn host_info(&mut self) -> Result<HostInfo, ControlError> {
        let domains = self.list()?;
        let (version_major, version_minor, version_extra) = self.version_string();
        let total_kib: u64 = domains.iter().map(|d| d.memory_kib).sum();
        // Interface 1.1 reports the frame pool guests' memory comes from.
        let pool = self.physinfo().ok();
        Ok(HostInfo {
            host: read_trimmed("/proc/sys/kernel/hostname"),
            release: read_trimmed("/proc/sys/kernel/osrelease"),
            machine: std::env::consts::ARCH.to_string(),
            // No CPU count in the interface: the control domain's own CPUs (it gets one
            // vCPU per CPU, as Xen's dom0). Memory: the pool's (interface 1.1), else what
            // domains hold.
            nr_cpus: linux_cpu_count(&read_trimmed("/sys/devices/system/cpu/possible")),
            cpu_mhz: 0,
            total_memory_mib: pool.map_or(total_kib / 1024, |p| p.total_pages / 256),
            free_memory_mib: pool.map_or(0, |p| p.free_pages / 256),
            free_pages: pool.map_or(0, |p| p.free_pages),
            version_major,
            version_minor,
            version_extra,
            caps: format!("keel-control-{}.{}", CONTROL_VERSION.major, CONTROL_VERSION.minor),
            scheduler: "wfq".into(),
            pagesize: 4096,
            commandline: String::new(),
        })
    }

    fn list(&mut self) -> Result<Vec<DomainInfo>, ControlError> {
        let mut out = Vec::new();
        let mut start: u16 = 0;
        let entries = usize::try_from(CTL_LIST_MAX).unwrap_or(64);
        loop {
            let mut data = vec![0u8; entries * CtlDomainInfo::SIZE];
            let mut a =
                CtlList { start_domid: start, _pad: [0; 2], max_entries: CTL_LIST_MAX, buffer: handle(&mut data) }
                    .to_bytes();
            let n = self.ctl(CTL_LIST, &mut a, &mut data).map_err(|e| error(e, "the domain list", None))?;
            let n = usize::try_from(n).ok().filter(|&n| n <= entries).ok_or_else(|| {
                ControlError::Failed(format!(
                    "the domain list: Keel answered {n} entries, at most {entries} were asked"
                ))
            })?;
            let mut last = None;
            for chunk in data.chunks_exact(CtlDomainInfo::SIZE).take(n) {
                if let Some(i) = CtlDomainInfo::from_bytes(chunk) {
                    last = Some(i.domid);
                    out.push(domain_info(&i));
                }
            }
            match last {
                Some(id) if n == entries && id >= start && id < u16::MAX => start = id + 1,
                _ => return Ok(out),
            }
        }
    }

    fn create(&mut self, request: &CreateRequest) -> Result<DomId, ControlError> {
        self.create_domain(request)
    }

    fn destroy(&mut self, id: DomId) -> Result<(), ControlError> {
        self.on_domain(CTL_DESTROY, "destroying", id)
    }

    fn pause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.on_domain(CTL_PAUSE, "pausing", id)
    }

    fn unpause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.on_domain(CTL_UNPAUSE, "unpausing", id)
    }

    fn shutdown(&mut self, id: DomId, kind: ShutdownKind) -> Result<(), ControlError> {
        let reason = match kind {
            ShutdownKind::Poweroff => SHUTDOWN_POWEROFF,
            ShutdownKind::Reboot => SHUTDOWN_REBOOT,
        };
        let mut a = CtlShutdown { domid: domid16(id)?, _pad: [0; 2], reason }.to_bytes();
        self.ctl(CTL_SHUTDOWN, &mut a, &mut []).map_err(|e| error(e, "the shutdown", Some(id)))?;
        Ok(())
    }

    fn vcpus(&mut self, id: DomId) -> Result<Vec<VcpuInfo>, ControlError> {
        // Interface 1.0 reports a domain's vCPU counts and summed time, not each vCPU's
        // CPU, time or affinity: vCPUs below `vcpus_online` are shown online, the time
        // only for a single-vCPU domain, the CPU as 0 and the affinity as every CPU.
        let i = self.query(id)?;
        let d = domain_info(&i);
        Ok((0..i.vcpus)
            .map(|v| VcpuInfo {
                vcpu: v,
                online: v < i.vcpus_online,
                running: d.running,
                blocked: d.blocked,
                cpu: 0,
                time_ns: if i.vcpus == 1 { i.cpu_time_ns } else { 0 },
                hard_affinity: CpuSet::all(),
                soft_affinity: CpuSet::all(),
            })
            .collect())
    }

    fn pin_vcpu(&mut self, id: DomId, vcpu: u32, hard: &CpuSet) -> Result<(), ControlError> {
        let mut a = CtlAffinity { domid: domid16(id)?, _pad: [0; 2], vcpu, cpumap: cpumap(hard) }.to_bytes();
        self.ctl(CTL_SET_AFFINITY, &mut a, &mut []).map_err(|e| match e {
            EINVAL => ControlError::Invalid(format!(
                "Keel refused CPUs {hard} for vCPU {vcpu} of domain {id} (no such vCPU, or no CPU of the list runs vCPUs)"
            )),
            e => error(e, "pinning", Some(id)),
        })?;
        Ok(())
    }

    fn sched_credit(&mut self, id: DomId) -> Result<Sched, ControlError> {
        let mut a = CtlSched { domid: domid16(id)?, ..CtlSched::ZERO }.to_bytes();
        self.ctl(CTL_GET_SCHED, &mut a, &mut []).map_err(|e| error(e, "reading the scheduler parameters", Some(id)))?;
        let s = CtlSched::from_bytes(&a).ok_or_else(|| ControlError::Failed("short CTL_GET_SCHED answer".into()))?;
        Ok(Sched { weight: u32::from(s.weight), cap: u32::from(s.cap) })
    }

    fn set_sched_credit(&mut self, id: DomId, sched: Sched) -> Result<(), ControlError> {
        let weight = u16::try_from(sched.weight)
            .ok()
            .filter(|&w| w > 0)
            .ok_or_else(|| ControlError::Invalid(format!("weight {} (Keel takes 1..65535)", sched.weight)))?;
        let cap = u8::try_from(sched.cap).ok().filter(|&c| c <= 100).ok_or_else(|| {
            ControlError::Invalid(format!("cap {}% (Keel caps a domain at most at 100% of one CPU)", sched.cap))
        })?;
        let mut a = CtlSched { domid: domid16(id)?, weight, cap, _pad: [0; 3] }.to_bytes();
        self.ctl(CTL_SET_SCHED, &mut a, &mut []).map_err(|e| error(e, "setting the scheduler parameters", Some(id)))?;
        Ok(())
    }

    fn console_read(&mut self, id: DomId) -> Result<Vec<u8>, ControlError> {
        let domid = domid16(id)?;
        let max = usize::try_from(CTL_CONSOLE_MAX).unwrap_or(4096);
        let mut out = Vec::new();
        loop {
            let offset = self.console_offsets.get(&id).copied().unwrap_or(0);
            let mut data = vec![0u8; max];
            let mut a =
                CtlConsole { domid, _pad: [0; 2], len: CTL_CONSOLE_MAX, buffer: handle(&mut data), offset }.to_bytes();
            let n =
                self.ctl(CTL_CONSOLE_READ, &mut a, &mut data).map_err(|e| error(e, "reading the console", Some(id)))?;
            let n = usize::try_from(n).unwrap_or(0).min(max);
            let got = CtlConsole::from_bytes(&a).map_or(offset, |c| c.offset);
            out.extend_from_slice(&data[..n]);
            self.console_offsets.insert(id, got.saturating_add(u64::try_from(n).unwrap_or(0)));
            if n < max || out.len() >= 4 * max {
                return Ok(out);
            }
        }
    }

    fn has_store(&mut self, id: DomId) -> bool {
        let Ok(domid) = domid16(id) else { return false };
        let mut a = CtlStore { domid, _pad: [0; 2], evtchn: 0, gfn: 0 }.to_bytes();
        if self.ctl(CTL_STORE_INFO, &mut a, &mut []).is_err() {
            return false;
        }
        // A page not handed over yet reads as all ones (`HVM_PARAM_STORE_PFN` = ~0).
        CtlStore::from_bytes(&a).is_some_and(|s| s.evtchn != 0 && s.gfn != 0 && s.gfn != u64::MAX)
    }

    fn store_connect(&mut self, port: u32) -> Result<(), ControlError> {
        let mut a = CtlStore { domid: keel_abi::xen::DOMID_SELF, _pad: [0; 2], evtchn: port, gfn: 0 }.to_bytes();
        self.ctl(CTL_STORE_CONNECT, &mut a, &mut []).map_err(|e| error(e, "the xenstore handoff", None))?;
        Ok(())
    }

    fn console_write(&mut self, id: DomId, data: &[u8]) -> Result<(), ControlError> {
        let domid = domid16(id)?;
        let max = usize::try_from(CTL_CONSOLE_MAX).unwrap_or(4096);
        for chunk in data.chunks(max) {
            let mut buf = chunk.to_vec();
            let len = u32::try_from(buf.len()).unwrap_or(CTL_CONSOLE_MAX);
            let mut a = CtlConsole { domid, _pad: [0; 2], len, buffer: handle(&mut buf), offset: 0 }.to_bytes();
            self.ctl(CTL_CONSOLE_WRITE, &mut a, &mut buf).map_err(|e| error(e, "writing the console", Some(id)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hypervisor with `n` domains, d0 the caller; counts list calls.
    struct Fake {
        n: u16,
        list_calls: usize,
        console: Vec<u8>,
    }

    impl Hypervisor for Fake {
        fn call(&mut self, op: u64, a0: u64, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32> {
            assert_eq!(op, KEEL_CONTROL_OP);
            match u32::try_from(a0).unwrap() {
                CTL_LIST => {
                    self.list_calls += 1;
                    let l = CtlList::from_bytes(arg).unwrap();
                    assert_eq!(l.buffer, data.as_mut_ptr() as u64);
                    let ids: Vec<u16> = (l.start_domid..self.n).take(usize::try_from(l.max_entries).unwrap()).collect();
                    for (k, id) in ids.iter().enumerate() {
                        let mut name = [0u8; CTL_NAME_LEN];
                        name[..2].copy_from_slice(b"vm");
                        let i = CtlDomainInfo {
                            domid: *id,
                            state: CTL_STATE_PAUSED,
                            shutdown_reason: CTL_NO_REASON,
                            tot_pages: 256,
                            vcpus_online: 1,
                            name,
                            ..CtlDomainInfo::ZERO
                        };
                        i.write_bytes(&mut data[k * CtlDomainInfo::SIZE..]).unwrap();
                    }
                    Ok(i64::try_from(ids.len()).unwrap())
                }
                CTL_PAUSE => {
                    let d = CtlDomain::from_bytes(arg).unwrap();
                    Err(if d.domid == 0 {
                        EINVAL
                    } else if d.domid >= self.n {
                        ESRCH
                    } else {
                        EPERM
                    })
                }
                CTL_CONSOLE_READ => {
                    let mut c = CtlConsole::from_bytes(arg).unwrap();
                    let start = usize::try_from(c.offset).unwrap().min(self.console.len());
                    let n = (self.console.len() - start).min(usize::try_from(c.len).unwrap());
                    data[..n].copy_from_slice(&self.console[start..start + n]);
                    c.offset = u64::try_from(start).unwrap();
                    c.write_bytes(arg).unwrap();
                    Ok(i64::try_from(n).unwrap())
                }
                CTL_STORE_INFO => {
                    // d1 has a page, d2 a port toward a server not connected yet, others none.
                    let mut st = CtlStore::from_bytes(arg).unwrap();
                    st.gfn = match st.domid {
                        1 => 0x39001,
                        2 => u64::MAX,
                        _ => 0,
                    };
                    st.evtchn = if st.gfn != 0 { 1 } else { 0 };
                    st.write_bytes(arg).unwrap();
                    Ok(0)
                }
                _ => Err(ENOSYS),
            }
        }
    }

    #[test]
    fn a_domain_is_served_by_xenstore_once_it_has_a_store_page() {
        let mut c = KeelControl::new(Fake { n: 4, list_calls: 0, console: Vec::new() });
        assert!(c.has_store(1));
        assert!(!c.has_store(2), "a port, no page yet");
        assert!(!c.has_store(3));
        assert!(!c.has_store(70000), "no such domain id");
    }

    #[test]
    fn list_pages_through_every_domain() {
        let mut c = KeelControl::new(Fake { n: 130, list_calls: 0, console: Vec::new() });
        let all = c.list().unwrap();
        assert_eq!(all.len(), 130);
        assert_eq!(c.hv.list_calls, 3);
        assert!(all.iter().enumerate().all(|(k, d)| d.id == u32::try_from(k).unwrap() && d.paused));
        assert_eq!((all[5].name.as_str(), all[5].memory_kib), ("vm", 1024));
    }

    #[test]
    fn errors_name_the_domain_and_the_capability() {
        let mut c = KeelControl::new(Fake { n: 3, list_calls: 0, console: Vec::new() });
        assert_eq!(c.pause(9), Err(ControlError::NoSuchDomain(9)));
        assert_eq!(c.pause(70000), Err(ControlError::NoSuchDomain(70000)));
        assert_eq!(c.pause(1), Err(ControlError::Denied));
        assert!(matches!(c.pause(0), Err(ControlError::Invalid(m)) if m.contains("domain 0")));
        assert!(c.destroy(1).unwrap_err().to_string().contains("ENOSYS"));
        assert!(c.set_sched_credit(1, Sched { weight: 256, cap: 200 }).is_err());
    }

    #[test]
    fn console_reads_continue_where_the_last_ended() {
        let text: Vec<u8> = (0..10000u32).map(|i| b'a' + u8::try_from(i % 26).unwrap()).collect();
        let mut c = KeelControl::new(Fake { n: 2, list_calls: 0, console: text.clone() });
        assert_eq!(c.console_read(1).unwrap(), text);
        assert!(c.console_read(1).unwrap().is_empty());
        c.hv.console.extend_from_slice(b"more");
        assert_eq!(c.console_read(1).unwrap(), b"more");
    }

    #[test]
    fn states_map_to_xl_letters() {
        let mut i = CtlDomainInfo { state: CTL_STATE_SHUTDOWN, shutdown_reason: 1, ..CtlDomainInfo::ZERO };
        assert_eq!(domain_info(&i).shutdown, Some(ShutdownReason::Reboot));
        i.state = CTL_STATE_CRASHED;
        assert_eq!(domain_info(&i).shutdown, Some(ShutdownReason::Crash));
        i.state = CTL_STATE_DYING;
        assert!(domain_info(&i).dying);
        assert_eq!(cpumap(&CpuSet::of([0, 65, 255])), [1, 2, 0, 1 << 63]);
    }
}
