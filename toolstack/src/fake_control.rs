//! A control interface over an in-memory host, for the command tests only (the shipped
//! binary never has it).

use std::collections::BTreeMap;

use crate::control::Keep;
use crate::control::*;
use crate::cpulist::CpuSet;

pub struct Fake {
    pub domains: BTreeMap<DomId, (DomainInfo, Sched, Vec<VcpuInfo>)>,
    pub next_id: DomId,
    pub free_mib: u64,
    pub console_out: BTreeMap<DomId, Vec<Vec<u8>>>,
    pub console_in: BTreeMap<DomId, Vec<u8>>,
    pub created: Vec<(String, usize, Option<usize>, String)>,
    /// Domains that obey a shutdown request at once.
    pub obedient: bool,
    /// Every domain has a xenstore connection.
    pub stores: bool,
    /// The ends each created domain is kept after (`CreateRequest::keep`).
    pub keeps: BTreeMap<DomId, Keep>,
    /// How many `list` calls a destroyed domain stays listed as dying (its memory held),
    /// as Keel lists one until its memory is back.
    pub dying_lists: u32,
    /// Destroyed domains still dying: the `list` calls left.
    pub dying: BTreeMap<DomId, u32>,
}

impl Fake {
    pub fn new() -> Fake {
        let mut f = Fake {
            domains: BTreeMap::new(),
            next_id: 1,
            free_mib: 2048,
            console_out: BTreeMap::new(),
            console_in: BTreeMap::new(),
            created: Vec::new(),
            obedient: true,
            stores: false,
            keeps: BTreeMap::new(),
            dying_lists: 0,
            dying: BTreeMap::new(),
        };
        f.add(0, "Domain-0", 512, 2);
        f
    }

    pub fn add(&mut self, id: DomId, name: &str, mib: u64, vcpus: u32) {
        let info = DomainInfo {
            id,
            name: name.into(),
            memory_kib: mib * 1024,
            vcpus_online: vcpus,
            running: id == 0,
            blocked: id != 0,
            paused: false,
            shutdown: None,
            dying: false,
            cpu_time_ns: 1_000_000_000 * u64::from(id + 1),
        };
        let v = (0..vcpus)
            .map(|i| VcpuInfo {
                vcpu: i,
                online: true,
                running: false,
                blocked: true,
                cpu: i % 4,
                time_ns: 100_000_000,
                hard_affinity: CpuSet::all(),
                soft_affinity: CpuSet::all(),
            })
            .collect();
        self.domains.insert(id, (info, Sched { weight: 256, cap: 0 }, v));
    }

    /// Domain `id` ends by itself for `reason`: as Keel, kept (listed as shut down) if
    /// its creator asked for that end, else destroyed at once.
    pub fn end(&mut self, id: DomId, reason: ShutdownReason) {
        let k = self.keeps.get(&id).copied().unwrap_or_default();
        let kept = match reason {
            ShutdownReason::Poweroff => k.poweroff,
            ShutdownReason::Reboot | ShutdownReason::SoftReset => k.reboot,
            ShutdownReason::Crash | ShutdownReason::Watchdog => k.crash,
            ShutdownReason::Suspend => false,
        };
        if !kept {
            let _ = self.destroy(id);
        } else if let Some(d) = self.domains.get_mut(&id) {
            d.0.shutdown = Some(reason);
            d.0.running = false;
            d.0.blocked = false;
        }
    }

    fn dom(&mut self, id: DomId) -> Result<&mut (DomainInfo, Sched, Vec<VcpuInfo>), ControlError> {
        self.domains.get_mut(&id).ok_or(ControlError::NoSuchDomain(id))
    }
}

impl Control for Fake {
    fn host_info(&mut self) -> Result<HostInfo, ControlError> {
        Ok(HostInfo {
            host: "fake".into(),
            release: "6.1.0".into(),
            machine: "aarch64".into(),
            nr_cpus: 4,
            cpu_mhz: 1000,
            total_memory_mib: 4096,
            free_memory_mib: self.free_mib,
            free_pages: self.free_mib * 256,
            version_major: 0,
            version_minor: 1,
            version_extra: ".0".into(),
            caps: "keel-3.0-aarch64".into(),
            scheduler: "credit".into(),
            pagesize: 4096,
            commandline: "keel.exit=test".into(),
        })
    }
    fn list(&mut self) -> Result<Vec<DomainInfo>, ControlError> {
        let listed = self.domains.values().map(|d| d.0.clone()).collect();
        let reaped: Vec<DomId> = self
            .dying
            .iter_mut()
            .filter_map(|(&id, left)| {
                *left = left.saturating_sub(1);
                (*left == 0).then_some(id)
            })
            .collect();
        for id in reaped {
            self.dying.remove(&id);
            if let Some((d, _, _)) = self.domains.remove(&id) {
                self.free_mib += d.memory_kib / 1024;
            }
        }
        Ok(listed)
    }
    fn create(&mut self, r: &CreateRequest) -> Result<DomId, ControlError> {
        let c = r.config;
        if c.memory_mib > self.free_mib {
            return Err(ControlError::NoMemory { asked_mib: c.memory_mib, free_mib: self.free_mib });
        }
        let id = self.next_id;
        self.next_id += 1;
        self.free_mib -= c.memory_mib;
        self.add(id, &c.name, c.memory_mib, c.vcpus);
        self.dom(id)?.0.paused = r.paused;
        self.keeps.insert(id, r.keep);
        self.created.push((c.name.clone(), r.kernel.len(), r.ramdisk.as_ref().map(Vec::len), c.cmdline.clone()));
        Ok(id)
    }
    fn destroy(&mut self, id: DomId) -> Result<(), ControlError> {
        if self.dying.contains_key(&id) {
            return Err(ControlError::NoSuchDomain(id));
        }
        if self.dying_lists > 0 {
            let d = &mut self.dom(id)?.0;
            (d.dying, d.running, d.blocked) = (true, false, false);
            self.dying.insert(id, self.dying_lists);
            return Ok(());
        }
        let (d, _, _) = self.domains.remove(&id).ok_or(ControlError::NoSuchDomain(id))?;
        self.free_mib += d.memory_kib / 1024;
        Ok(())
    }
    fn pause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.dom(id)?.0.paused = true;
        Ok(())
    }
    fn unpause(&mut self, id: DomId) -> Result<(), ControlError> {
        self.dom(id)?.0.paused = false;
        Ok(())
    }
    fn shutdown(&mut self, id: DomId, _: ShutdownKind) -> Result<(), ControlError> {
        self.dom(id)?;
        if self.obedient {
            self.destroy(id)?;
        }
        Ok(())
    }
    fn vcpus(&mut self, id: DomId) -> Result<Vec<VcpuInfo>, ControlError> {
        Ok(self.dom(id)?.2.clone())
    }
    fn pin_vcpu(&mut self, id: DomId, vcpu: u32, hard: &CpuSet) -> Result<(), ControlError> {
        let d = self.dom(id)?;
        let v = d.2.get_mut(vcpu as usize).ok_or(ControlError::Invalid(format!("no vCPU {vcpu}")))?;
        v.hard_affinity = hard.clone();
        Ok(())
    }
    fn sched_credit(&mut self, id: DomId) -> Result<Sched, ControlError> {
        Ok(self.dom(id)?.1)
    }
    fn set_sched_credit(&mut self, id: DomId, s: Sched) -> Result<(), ControlError> {
        self.dom(id)?.1 = s;
        Ok(())
    }
    fn console_read(&mut self, id: DomId) -> Result<Vec<u8>, ControlError> {
        self.dom(id)?;
        let q = self.console_out.entry(id).or_default();
        Ok(if q.is_empty() { Vec::new() } else { q.remove(0) })
    }
    fn has_store(&mut self, id: DomId) -> bool {
        self.stores && self.domains.contains_key(&id)
    }
    fn console_write(&mut self, id: DomId, data: &[u8]) -> Result<(), ControlError> {
        self.dom(id)?;
        self.console_in.entry(id).or_default().extend_from_slice(data);
        // The guest echoes what it receives.
        self.console_out.entry(id).or_default().push(data.to_vec());
        Ok(())
    }
}
