//! `create` over Keel's control interface 1.4 (`docs/control-abi.md`): as xl builds a
//! domain paused and then unpauses it.
//!
//! 1. `CTL_CREATE` with the name, memory, vCPUs (`maxvcpus`: Keel starts vCPU 0, the
//!    guest the others), weight and cap, one hard affinity for every vCPU, the sizes of
//!    the kernel and ramdisk, and the command line;
//! 2. `CTL_LOAD` the kernel, then the ramdisk, in chunks of `CTL_LOAD_MAX` (1 MiB);
//! 3. a per-vCPU `cpus` list: `CTL_SET_AFFINITY` of each vCPU it names while the domain
//!    is being built (1.2), so that each vCPU is scheduled within its set from the start;
//! 4. `CTL_START` paused, then `CTL_UNPAUSE`, unless the request asks for the domain to
//!    stay paused.
//!
//! A failure after step 1 destroys the half-built domain, so nothing is left behind.

use keel_abi::control::*;
use keel_abi::Wire;

use crate::control::{ControlError, CreateRequest, DomId};
use crate::domain_config::Affinity;
use crate::keel_control::{cpumap, error, Hypervisor, KeelControl, EINVAL};

/// Errno values only `create` meets.
const E2BIG: i32 = 7;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const ENOSPC: i32 = 28;
const EOPNOTSUPP: i32 = 95;

/// The `CtlCreate` of `req` (without the command line's address).
fn create_args(req: &CreateRequest) -> Result<CtlCreate, ControlError> {
    let c = req.config;
    let mut name = [0u8; CTL_CREATE_NAME_LEN];
    let bytes = c.name.as_bytes();
    if bytes.len() > name.len() {
        return Err(ControlError::Invalid(format!("the name `{}` is longer than {} bytes", c.name, name.len())));
    }
    name[..bytes.len()].copy_from_slice(bytes);
    let weight = c.weight.unwrap_or(256);
    let weight = u16::try_from(weight)
        .ok()
        .filter(|&w| w > 0)
        .ok_or_else(|| ControlError::Invalid(format!("cpu_weight {weight} (1 to 65535)")))?;
    let cap = c.cap.unwrap_or(0);
    let cap = u8::try_from(cap)
        .ok()
        .filter(|&c| c <= 100)
        .ok_or_else(|| ControlError::Invalid(format!("cap {cap}% (Keel caps a domain at most at 100% of one CPU)")))?;
    let all = match &c.affinity {
        Some(Affinity::All(set)) => cpumap(set),
        _ => [0; 4],
    };
    Ok(CtlCreate {
        weight,
        cap,
        vcpus: c.maxvcpus.max(c.vcpus),
        cmdline_len: u32::try_from(c.cmdline.len()).unwrap_or(u32::MAX),
        memory_kib: c.memory_mib.saturating_mul(1024),
        kernel_size: req.kernel.len() as u64,
        ramdisk_size: req.ramdisk.as_ref().map_or(0, |r| r.len() as u64),
        cpumap: all,
        name,
        flags: if c.vuart { CTL_CREATE_VUART } else { 0 } | if c.xenstore_domain { CTL_CREATE_XENSTORE } else { 0 },
        ..CtlCreate::ZERO
    })
}

impl<H: Hypervisor> KeelControl<H> {
    /// Free memory in MiB (`CTL_PHYSINFO`), 0 if Keel does not say.
    pub fn free_memory_mib(&mut self) -> u64 {
        self.physinfo().map_or(0, |p| p.free_pages / 256)
    }

    /// `CTL_PHYSINFO`.
    pub fn physinfo(&mut self) -> Result<CtlPhysInfo, ControlError> {
        let mut a = CtlPhysInfo::ZERO.to_bytes();
        self.raw_ctl(CTL_PHYSINFO, &mut a, &mut []).map_err(|e| error(e, "the host query", None))?;
        CtlPhysInfo::from_bytes(&a).ok_or_else(|| ControlError::Failed("short CTL_PHYSINFO answer".into()))
    }

    /// Builds and starts the domain `req` describes (see the module's steps).
    pub fn create_domain(&mut self, req: &CreateRequest) -> Result<DomId, ControlError> {
        let args = create_args(req)?;
        let mut cmdline = req.config.cmdline.clone().into_bytes();
        let handle = if cmdline.is_empty() { 0 } else { cmdline.as_mut_ptr() as u64 };
        let mut a = CtlCreate { cmdline: handle, ..args }.to_bytes();
        let id = match self.raw_ctl(CTL_CREATE, &mut a, &mut cmdline) {
            Ok(id) => DomId::try_from(id).map_err(|_| ControlError::Failed(format!("CTL_CREATE answered {id}")))?,
            Err(EEXIST) if req.config.xenstore_domain => {
                return Err(ControlError::Invalid(format!(
                    "Keel refused creating `{}` (EEXIST): its name is in use, or a xenstore domain runs already \
                     (there is one; `keelctl list` shows them)",
                    req.config.name
                )))
            }
            Err(EEXIST) => return Err(ControlError::NameInUse(req.config.name.clone())),
            Err(ENOMEM) => {
                return Err(ControlError::NoMemory {
                    asked_mib: req.config.memory_mib,
                    free_mib: self.free_memory_mib(),
                })
            }
            Err(ENOSPC) => return Err(ControlError::Failed("Keel has no free domain id".into())),
            Err(EOPNOTSUPP) if req.config.vuart => {
                return Err(ControlError::Invalid(
                    "vuart: Keel emulates no UART for guests on this architecture (`sbsa_uart` is arm64's); \
                     remove the `vuart` line"
                        .into(),
                ))
            }
            Err(EINVAL) => {
                return Err(ControlError::Invalid(format!(
                    "Keel refused creating `{}` (EINVAL): memory a multiple of 4 KiB, 1 to {} vCPUs, a kernel of at \
                     most {} MiB, a ramdisk of at most {} MiB, a command line of at most {} bytes{}",
                    req.config.name,
                    CTL_CREATE_MAX_VCPUS,
                    CTL_KERNEL_MAX >> 20,
                    CTL_RAMDISK_MAX >> 20,
                    CTL_CMDLINE_MAX,
                    if req.config.vuart { "; `vuart` needs Keel's control interface 1.4" } else { "" }
                )))
            }
            Err(e) => return Err(error(e, "creating a domain", None)),
        };
        match self.build(id, req) {
            Ok(()) => Ok(id),
            Err(e) => {
                let _ =
                    self.raw_ctl(CTL_DESTROY, &mut CtlDomain { domid: id as u16, _pad: [0; 6] }.to_bytes(), &mut []);
                Err(e)
            }
        }
    }

    fn build(&mut self, id: DomId, req: &CreateRequest) -> Result<(), ControlError> {
        let domid = u16::try_from(id).map_err(|_| ControlError::NoSuchDomain(id))?;
        self.load(domid, CTL_MODULE_KERNEL, &req.kernel, "kernel")?;
        if let Some(r) = &req.ramdisk {
            self.load(domid, CTL_MODULE_RAMDISK, r, "ramdisk")?;
        }
        if let Some(Affinity::PerVcpu(sets)) = &req.config.affinity {
            for (vcpu, set) in (0u32..).zip(sets) {
                let mut a = CtlAffinity { domid, _pad: [0; 2], vcpu, cpumap: cpumap(set) }.to_bytes();
                self.raw_ctl(CTL_SET_AFFINITY, &mut a, &mut []).map_err(|e| error(e, "pinning", Some(id)))?;
            }
        }
        let keep = [
            (req.keep.poweroff, CTL_START_KEEP_POWEROFF),
            (req.keep.reboot, CTL_START_KEEP_REBOOT),
            (req.keep.crash, CTL_START_KEEP_CRASH),
        ];
        let flags = keep.iter().filter(|k| k.0).fold(CTL_START_PAUSED, |f, k| f | k.1);
        let mut s = CtlStart { domid, _pad: [0; 2], flags }.to_bytes();
        self.raw_ctl(CTL_START, &mut s, &mut []).map_err(|e| match e {
            EINVAL => ControlError::Invalid(format!(
                "Keel refused to start domain {id}: its kernel `{}` is not one this architecture boots or is \
                 damaged, or no CPU of its `cpus` runs vCPUs (Keel's log says which)",
                req.config.kernel
            )),
            E2BIG => ControlError::DoesNotFit { memory_mib: req.config.memory_mib },
            e => error(e, "starting", Some(id)),
        })?;
        if req.paused {
            return Ok(());
        }
        let mut u = CtlDomain { domid, _pad: [0; 6] }.to_bytes();
        self.raw_ctl(CTL_UNPAUSE, &mut u, &mut []).map_err(|e| error(e, "unpausing", Some(id)))?;
        Ok(())
    }

    /// Hands `bytes` over as `module` of the domain being built, chunk by chunk.
    fn load(&mut self, domid: u16, module: u8, bytes: &[u8], what: &str) -> Result<(), ControlError> {
        let step = usize::try_from(CTL_LOAD_MAX).unwrap_or(1 << 20);
        let mut chunk = vec![0u8; step.min(bytes.len())];
        for (i, piece) in bytes.chunks(step).enumerate() {
            let buf = &mut chunk[..piece.len()];
            buf.copy_from_slice(piece);
            let a = CtlLoad {
                domid,
                module,
                _pad: 0,
                len: u32::try_from(piece.len()).unwrap_or(u32::MAX),
                offset: (i * step) as u64,
                buffer: buf.as_mut_ptr() as u64,
            };
            self.raw_ctl(CTL_LOAD, &mut a.to_bytes(), buf)
                .map_err(|e| error(e, &format!("handing over the {what}"), Some(u32::from(domid))))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain_config::DomainConfig;

    fn config(text: &str) -> DomainConfig {
        let cfg = crate::xlcfg::parse("t.cfg", text).unwrap();
        DomainConfig::from_config(&cfg).unwrap().0
    }

    #[test]
    fn the_create_arguments_follow_the_configuration() {
        let c = config("name='web'\nmemory=64\nvcpus=2\nmaxvcpus=4\ncpus='1-2'\nkernel='k'\ncpu_weight=512\ncap=50\n");
        let req = CreateRequest {
            config: &c,
            kernel: vec![1; 10],
            ramdisk: Some(vec![2; 3]),
            paused: false,
            keep: Default::default(),
        };
        let a = create_args(&req).unwrap();
        assert_eq!((a.vcpus, a.memory_kib, a.weight, a.cap), (4, 64 * 1024, 512, 50));
        assert_eq!((a.kernel_size, a.ramdisk_size), (10, 3));
        assert_eq!(a.cpumap[0], 0b110);
        assert_eq!(&a.name[..4], b"web\0");
        assert_eq!(a.flags, 0, "no vuart");
        let c = config("name='u'\nkernel='k'\nvuart = \"sbsa_uart\"\n");
        let req = CreateRequest { config: &c, kernel: vec![1], ramdisk: None, paused: false, keep: Default::default() };
        assert_eq!(create_args(&req).unwrap().flags, CTL_CREATE_VUART);
        let c = config("name='xs'\nkernel='k'\nxenstore_domain = 1\nvuart = 'sbsa_uart'\n");
        let req = CreateRequest { config: &c, kernel: vec![1], ramdisk: None, paused: false, keep: Default::default() };
        assert_eq!(create_args(&req).unwrap().flags, CTL_CREATE_VUART | CTL_CREATE_XENSTORE);
    }

    /// Records the sub-ops and the bytes handed over; `CTL_START` answers `start`.
    struct Recorder {
        cmds: Vec<u32>,
        kernel: Vec<u8>,
        start: Result<i64, i32>,
        /// vCPU and first word of the map of each `CTL_SET_AFFINITY`.
        pins: Vec<(u32, u64)>,
    }

    impl Recorder {
        fn answering_start(start: Result<i64, i32>) -> Recorder {
            Recorder { cmds: Vec::new(), kernel: Vec::new(), start, pins: Vec::new() }
        }
    }

    impl Hypervisor for Recorder {
        fn call(&mut self, _: u64, a0: u64, arg: &mut [u8], data: &mut [u8]) -> Result<i64, i32> {
            let cmd = u32::try_from(a0).unwrap();
            self.cmds.push(cmd);
            match cmd {
                CTL_CREATE => {
                    let a = CtlCreate::from_bytes(arg).unwrap();
                    assert_eq!(a.cmdline, data.as_mut_ptr() as u64);
                    assert_eq!(&data[..], b"root=/dev/xvda");
                    Ok(5)
                }
                CTL_LOAD => {
                    let a = CtlLoad::from_bytes(arg).unwrap();
                    assert_eq!((a.domid, a.offset), (5, self.kernel.len() as u64));
                    assert_eq!(a.buffer, data.as_mut_ptr() as u64);
                    self.kernel.extend_from_slice(&data[..usize::try_from(a.len).unwrap()]);
                    Ok(0)
                }
                CTL_START => {
                    assert_eq!(CtlStart::from_bytes(arg).unwrap().flags, CTL_START_PAUSED);
                    self.start
                }
                CTL_SET_AFFINITY => {
                    let a = CtlAffinity::from_bytes(arg).unwrap();
                    self.pins.push((a.vcpu, a.cpumap[0]));
                    Ok(0)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn create_loads_in_chunks_starts_paused_then_unpauses_and_cleans_up_on_failure() {
        let c = config("name='web'\nmemory=64\nkernel='k'\ncmdline='root=/dev/xvda'\n");
        let image: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i % 251) as u8).collect();
        let req =
            CreateRequest { config: &c, kernel: image.clone(), ramdisk: None, paused: false, keep: Default::default() };
        let mut k = KeelControl::new(Recorder::answering_start(Ok(0)));
        assert_eq!(k.create_domain(&req), Ok(5));
        let r = k.into_inner();
        assert_eq!(r.kernel, image, "every byte, in order");
        assert_eq!(r.cmds, [CTL_CREATE, CTL_LOAD, CTL_LOAD, CTL_LOAD, CTL_LOAD, CTL_START, CTL_UNPAUSE]);

        let paused = CreateRequest { paused: true, ..req.clone() };
        let mut k = KeelControl::new(Recorder::answering_start(Ok(0)));
        assert_eq!(k.create_domain(&paused), Ok(5));
        assert_eq!(k.into_inner().cmds.last(), Some(&CTL_START), "left paused: no CTL_UNPAUSE");

        let mut k = KeelControl::new(Recorder::answering_start(Err(E2BIG)));
        assert_eq!(k.create_domain(&req), Err(ControlError::DoesNotFit { memory_mib: 64 }));
        assert_eq!(k.into_inner().cmds.last(), Some(&CTL_DESTROY), "the half-built domain is destroyed");
    }

    /// xl's per-vCPU list (`cpus = ["0", "1-2"]`): each vCPU's set goes to Keel while
    /// the domain is being built, before `CTL_START`.
    #[test]
    fn a_per_vcpu_cpus_list_is_pinned_before_the_start() {
        let c = config("name='web'\nvcpus=3\ncpus=['0', '1-2']\nkernel='k'\ncmdline='root=/dev/xvda'\n");
        let req =
            CreateRequest { config: &c, kernel: vec![7; 100], ramdisk: None, paused: false, keep: Default::default() };
        assert_eq!(create_args(&req).unwrap().cpumap, [0; 4], "no map for every vCPU");
        let mut k = KeelControl::new(Recorder::answering_start(Ok(0)));
        assert_eq!(k.create_domain(&req), Ok(5));
        let r = k.into_inner();
        assert_eq!(r.cmds, [CTL_CREATE, CTL_LOAD, CTL_SET_AFFINITY, CTL_SET_AFFINITY, CTL_START, CTL_UNPAUSE]);
        assert_eq!(r.pins, [(0, 0b1), (1, 0b110)]);
    }

    #[test]
    fn a_cap_above_one_cpu_is_refused() {
        let c = config("name='web'\nkernel='k'\ncap=200\n");
        let req = CreateRequest { config: &c, kernel: vec![1], ramdisk: None, paused: false, keep: Default::default() };
        assert!(matches!(create_args(&req), Err(ControlError::Invalid(_))));
    }
}
