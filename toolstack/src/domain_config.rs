//! A domain's configuration from an xl.cfg file: the keys keelctl supports, checked, with
//! errors naming the file, line and key. Keys it does not know are reported as warnings
//! and ignored, as xl does.

use crate::cpulist::CpuSet;
use crate::disk::DiskSpec;
use crate::vif::VifSpec;
use crate::xlcfg::{Config, ConfigError, Setting, Value};

/// What to do when a domain powers off, reboots or crashes (`on_poweroff` ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Destroy,
    Restart,
    Preserve,
    RenameRestart,
    CoredumpDestroy,
    CoredumpRestart,
    SoftReset,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "destroy" => Action::Destroy,
            "restart" => Action::Restart,
            "preserve" => Action::Preserve,
            "rename-restart" => Action::RenameRestart,
            "coredump-destroy" => Action::CoredumpDestroy,
            "coredump-restart" => Action::CoredumpRestart,
            "soft-reset" => Action::SoftReset,
            _ => return None,
        })
    }
}

/// Per-vCPU or whole-domain CPU affinity (`cpus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// One set for every vCPU (`cpus = "0-3"`).
    All(CpuSet),
    /// vCPU `i` gets entry `i` (`cpus = ["0", "1-2"]`); later vCPUs may run anywhere.
    PerVcpu(Vec<CpuSet>),
}

/// The guest type (`type`); Keel runs PVH guests (x86) and arm64 guests, which xl calls
/// `pvh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestType {
    Pvh,
}

/// A checked domain configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    pub guest_type: GuestType,
    pub memory_mib: u64,
    pub maxmem_mib: u64,
    pub vcpus: u32,
    pub maxvcpus: u32,
    pub affinity: Option<Affinity>,
    pub kernel: String,
    pub ramdisk: Option<String>,
    pub cmdline: String,
    pub on_poweroff: Action,
    pub on_reboot: Action,
    pub on_crash: Action,
    pub weight: Option<u32>,
    pub cap: Option<u32>,
    pub disks: Vec<DiskSpec>,
    pub vifs: Vec<VifSpec>,
    /// `vuart = "sbsa_uart"`: an emulated PL011 (Xen's vpl011, arm64) as well as the PV
    /// console.
    pub vuart: bool,
    /// `xenstore_domain = 1` (Keel's own key; Xen's `init-xenstore-domain`): the domain
    /// serves xenstore. Domains waiting for their store (late init) get it once it starts.
    pub xenstore_domain: bool,
}

/// Keys keelctl reads.
pub const KEYS: &[&str] = &[
    "name",
    "type",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "cpus",
    "kernel",
    "ramdisk",
    "cmdline",
    "extra",
    "root",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "cpu_weight",
    "cap",
    "disk",
    "vif",
    "vuart",
    "xenstore_domain",
];

/// The largest memory a configuration may ask for, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// The most vCPUs a configuration may ask for.
pub const MAX_VCPUS: u32 = 128;

fn string<'a>(c: &Config, s: &'a Setting) -> Result<&'a str, ConfigError> {
    match &s.value {
        Value::Str(v) => Ok(v),
        _ => Err(c.error(s, "expected a string in quotes")),
    }
}

fn integer(c: &Config, s: &Setting, min: i64, max: i64) -> Result<i64, ConfigError> {
    match s.value {
        Value::Int(n) if (min..=max).contains(&n) => Ok(n),
        Value::Int(n) => Err(c.error(s, format!("{n} is outside {min}..={max}"))),
        _ => Err(c.error(s, "expected a number")),
    }
}

fn opt_string(c: &Config, key: &str) -> Result<Option<String>, ConfigError> {
    c.get(key).map(|s| string(c, s).map(String::from)).transpose()
}

fn strings_list(c: &Config, s: &Setting) -> Result<Vec<(String, usize)>, ConfigError> {
    match &s.value {
        Value::List(items) => items
            .iter()
            .map(|(v, line)| match v {
                Value::Str(t) => Ok((t.clone(), *line)),
                _ => Err(c.error_at(*line, Some(&s.key), "expected a string in quotes")),
            })
            .collect(),
        Value::Str(t) => Ok(vec![(t.clone(), s.line)]),
        Value::Int(_) => Err(c.error(s, "expected a list of strings")),
    }
}

/// The line of each entry of list `key` (`disk`, `vif`), in order: errors about one
/// device name the line it is on.
pub fn list_lines(c: &Config, key: &str) -> Vec<usize> {
    match c.get(key) {
        None => Vec::new(),
        Some(s) => match &s.value {
            Value::List(items) => items.iter().map(|(_, line)| *line).collect(),
            _ => vec![s.line],
        },
    }
}

impl DomainConfig {
    /// Checks a parsed file; the warnings name keys that are ignored.
    pub fn from_config(c: &Config) -> Result<(DomainConfig, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        for s in &c.settings {
            if !KEYS.contains(&s.key.as_str()) {
                warnings.push(format!("{}:{}: {}: not supported by keelctl, ignored", c.file, s.line, s.key));
            }
        }
        let name_setting = c.get("name").ok_or_else(|| c.error_at(1, Some("name"), "a domain needs a name"))?;
        let name = string(c, name_setting)?.to_string();
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(c.error(name_setting, "use 1 to 64 letters, digits, `-`, `_` or `.`"));
        }
        let guest_type = match c.get("type") {
            None => GuestType::Pvh,
            Some(s) => match string(c, s)? {
                "pvh" => GuestType::Pvh,
                t @ ("pv" | "hvm") => return Err(c.error(s, format!("Keel runs PVH guests, not {t}"))),
                t => return Err(c.error(s, format!("unknown guest type `{t}`"))),
            },
        };
        let max_mem = i64::try_from(MAX_MEMORY_MIB).unwrap_or(i64::MAX);
        let memory_setting = c.get("memory");
        let memory_mib = match memory_setting {
            Some(s) => integer(c, s, 1, max_mem)?.unsigned_abs(),
            None => 128,
        };
        let maxmem_mib = match c.get("maxmem") {
            Some(s) => {
                let m = integer(c, s, 1, max_mem)?.unsigned_abs();
                if m < memory_mib {
                    return Err(c.error(s, format!("maxmem {m} is below memory {memory_mib}")));
                }
                m
            }
            None => memory_mib,
        };
        let vcpus = match c.get("vcpus") {
            Some(s) => u32::try_from(integer(c, s, 1, i64::from(MAX_VCPUS))?).unwrap_or(1),
            None => 1,
        };
        let maxvcpus = match c.get("maxvcpus") {
            Some(s) => {
                let m = u32::try_from(integer(c, s, 1, i64::from(MAX_VCPUS))?).unwrap_or(1);
                if m < vcpus {
                    return Err(c.error(s, format!("maxvcpus {m} is below vcpus {vcpus}")));
                }
                m
            }
            None => vcpus,
        };
        let affinity = match c.get("cpus") {
            None => None,
            Some(s) => Some(match &s.value {
                Value::Str(t) => Affinity::All(CpuSet::parse(t).map_err(|e| c.error(s, e))?),
                Value::List(_) => {
                    let mut sets = Vec::new();
                    for (t, line) in strings_list(c, s)? {
                        sets.push(CpuSet::parse(&t).map_err(|e| c.error_at(line, Some("cpus"), e))?);
                    }
                    Affinity::PerVcpu(sets)
                }
                Value::Int(n) => Affinity::All(CpuSet::parse(&n.to_string()).map_err(|e| c.error(s, e))?),
            }),
        };
        let kernel_setting = c.get("kernel").ok_or_else(|| c.error_at(1, Some("kernel"), "a domain needs a kernel"))?;
        let kernel = string(c, kernel_setting)?.to_string();
        if kernel.is_empty() {
            return Err(c.error(kernel_setting, "empty kernel path"));
        }
        let ramdisk = opt_string(c, "ramdisk")?;
        let cmdline = match opt_string(c, "cmdline")? {
            Some(line) => {
                for k in ["root", "extra"] {
                    if let Some(s) = c.get(k) {
                        warnings.push(format!("{}:{}: {k}: ignored because cmdline is set", c.file, s.line));
                    }
                }
                line
            }
            None => {
                let root = opt_string(c, "root")?.map(|r| format!("root={r}"));
                let extra = opt_string(c, "extra")?;
                [root, extra].into_iter().flatten().collect::<Vec<_>>().join(" ")
            }
        };
        let action = |key: &str, default: Action| -> Result<Action, ConfigError> {
            match c.get(key) {
                None => Ok(default),
                Some(s) => {
                    let v = string(c, s)?;
                    Action::parse(v).ok_or_else(|| c.error(s, format!("unknown action `{v}`")))
                }
            }
        };
        let on_poweroff = action("on_poweroff", Action::Destroy)?;
        let on_reboot = action("on_reboot", Action::Restart)?;
        let on_crash = action("on_crash", Action::Destroy)?;
        let weight = match c.get("cpu_weight") {
            Some(s) => Some(u32::try_from(integer(c, s, 1, 65535)?).unwrap_or(256)),
            None => None,
        };
        let cap = match c.get("cap") {
            Some(s) => Some(u32::try_from(integer(c, s, 0, 6400)?).unwrap_or(0)),
            None => None,
        };
        let mut disks = Vec::new();
        if let Some(s) = c.get("disk") {
            for (t, line) in strings_list(c, s)? {
                disks.push(DiskSpec::parse(&t).map_err(|e| c.error_at(line, Some("disk"), e))?);
            }
        }
        let mut vifs = Vec::new();
        if let Some(s) = c.get("vif") {
            for (t, line) in strings_list(c, s)? {
                vifs.push(VifSpec::parse(&t).map_err(|e| c.error_at(line, Some("vif"), e))?);
            }
        }
        let vuart = match c.get("vuart") {
            None => false,
            Some(s) => match string(c, s)? {
                "sbsa_uart" => true,
                m => return Err(c.error(s, format!("unknown UART model `{m}`: Keel emulates `sbsa_uart` (arm64)"))),
            },
        };
        let xenstore_domain = match c.get("xenstore_domain") {
            None => false,
            Some(s) => integer(c, s, 0, 1)? == 1,
        };
        let config = DomainConfig {
            name,
            guest_type,
            memory_mib,
            maxmem_mib,
            vcpus,
            maxvcpus,
            affinity,
            kernel,
            ramdisk,
            cmdline,
            on_poweroff,
            on_reboot,
            on_crash,
            weight,
            cap,
            disks,
            vifs,
            vuart,
            xenstore_domain,
        };
        Ok((config, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlcfg::parse;

    fn load(text: &str) -> Result<DomainConfig, ConfigError> {
        DomainConfig::from_config(&parse("t.cfg", text)?).map(|(c, _)| c)
    }

    #[test]
    fn a_full_configuration() {
        let c = load(
            "name = \"web\"\ntype = \"pvh\"\nmemory = 256\nmaxmem = 512\nvcpus = 2\nmaxvcpus = 4\n\
             cpus = \"0-3,^2\"\nkernel = \"/boot/Image\"\nramdisk = \"/boot/initrd\"\nroot = \"/dev/xvda\"\n\
             extra = \"console=hvc0\"\non_reboot = \"destroy\"\non_crash = \"coredump-restart\"\n\
             cpu_weight = 512\ncap = 50\ndisk = [ 'phy:/dev/vg/web,xvda,w' ]\nvif = [ 'bridge=br0' ]\n",
        )
        .unwrap();
        assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus, c.maxvcpus), (256, 512, 2, 4));
        assert_eq!(c.cmdline, "root=/dev/xvda console=hvc0");
        assert_eq!(c.affinity, Some(Affinity::All(CpuSet::of([0, 1, 3]))));
        assert_eq!(
            (c.on_poweroff, c.on_reboot, c.on_crash),
            (Action::Destroy, Action::Destroy, Action::CoredumpRestart)
        );
        assert_eq!((c.weight, c.cap), (Some(512), Some(50)));
        assert_eq!(c.disks[0].vdev, "xvda");
        assert_eq!(c.vifs[0].bridge.as_deref(), Some("br0"));
        assert!(!c.vuart, "no vuart unless asked");
        assert!(!c.xenstore_domain);
        assert!(load("name='xs'\nkernel='k'\nxenstore_domain = 1\n").unwrap().xenstore_domain);
    }

    /// xl.cfg(5): `vuart = "sbsa_uart"` is the only model (Xen's vpl011 on arm64).
    #[test]
    fn vuart_sbsa_uart_asks_for_the_virtual_pl011() {
        let c = load("name='a'\nkernel='k'\nvuart = \"sbsa_uart\"\nextra='console=ttyAMA0'\n").unwrap();
        assert!(c.vuart);
        let e = load("name='a'\nkernel='k'\nvuart = 'uart8250'\n").unwrap_err();
        assert_eq!(e.to_string(), "t.cfg:3: vuart: unknown UART model `uart8250`: Keel emulates `sbsa_uart` (arm64)");
    }

    #[test]
    fn defaults_and_warnings() {
        let cfg = parse("t.cfg", "name='a'\nkernel='k'\nbootloader='pygrub'\ncmdline='x'\nextra='y'\n").unwrap();
        let (c, w) = DomainConfig::from_config(&cfg).unwrap();
        assert_eq!((c.memory_mib, c.vcpus, c.on_reboot), (128, 1, Action::Restart));
        assert_eq!(c.cmdline, "x");
        assert_eq!(
            w,
            [
                "t.cfg:3: bootloader: not supported by keelctl, ignored",
                "t.cfg:5: extra: ignored because cmdline is set"
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let cases = [
            ("kernel='k'\n", 1, "name"),
            ("name='a'\n", 1, "kernel"),
            ("name='a b'\nkernel='k'\n", 1, "name"),
            ("name='a'\nkernel='k'\nmemory='x'\n", 3, "memory"),
            ("name='a'\nkernel='k'\nmemory=0\n", 3, "memory"),
            ("name='a'\nkernel='k'\nmemory=64\nmaxmem=32\n", 4, "maxmem"),
            ("name='a'\nkernel='k'\nvcpus=4\nmaxvcpus=2\n", 4, "maxvcpus"),
            ("name='a'\nkernel='k'\ncpus='3-1'\n", 3, "cpus"),
            ("name='a'\nkernel='k'\ncpus=['0',\n'x']\n", 4, "cpus"),
            ("name='a'\nkernel='k'\non_crash='explode'\n", 3, "on_crash"),
            ("name='a'\nkernel='k'\ntype='hvm'\n", 3, "type"),
            ("name='a'\nkernel='k'\ndisk=[\n'/img,xvda,w',\n'/img2']\n", 5, "disk"),
            ("name='a'\nkernel='k'\nvif=['mac=zz']\n", 3, "vif"),
            ("name='a'\nkernel='k'\nvuart='pl011'\n", 3, "vuart"),
            ("name='a'\nkernel='k'\n\nvuart=1\n", 4, "vuart"),
            ("name='a'\nkernel='k'\nxenstore_domain=2\n", 3, "xenstore_domain"),
            ("name='a'\nkernel='k'\nxenstore_domain='yes'\n", 3, "xenstore_domain"),
        ];
        for (text, line, key) in cases {
            let e = load(text).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (line, Some(key)), "{text:?}: {e}");
        }
    }
}
