//! The initial domain: boot modules directly under `/chosen`, as Xen is given its dom0
//! by QEMU's `-device guest-loader` or a U-Boot script. Xen builds dom0 from them
//! whenever a kernel module is there (alongside any dom0less domains); so does Keel.

use super::children::{self, EvtchnEnd, ModuleKind};
use super::domain::{check_memory, Notes, Outcome};
use super::props::{self, Cells};
use super::types::{DomainConfig, DomainKind, Enhanced, InitialDefaults, Limits, Module, Problem, Severity};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use fdt::node::FdtNode;

/// The name of the initial domain.
pub const NAME: &str = "dom0";

impl InitialDefaults {
    /// Reads Xen's `dom0_mem=` and `dom0_max_vcpus=` from a Xen command line (later
    /// words override earlier ones). Returns the defaults and messages about words it
    /// could not use.
    ///
    /// - `dom0_mem=<size>` or a list of `min:<size>`, `max:<size>`, `<size>`; a size is
    ///   a number with an optional suffix `B`, `K`, `M`, `G`, `T` (default `K`).
    /// - `dom0_max_vcpus=<n>` or `<min>-<max>` (either bound may be omitted).
    pub fn from_cmdline(cmdline: &str) -> (InitialDefaults, Vec<String>) {
        let mut d = InitialDefaults::default();
        let mut errors = Vec::new();
        for word in cmdline.split_ascii_whitespace() {
            if let Some(v) = word.strip_prefix("dom0_mem=") {
                match dom0_mem(v, d.memory_kib) {
                    Ok(kib) => d.memory_kib = kib,
                    Err(e) => errors.push(format!("`{word}`: {e}")),
                }
            } else if let Some(v) = word.strip_prefix("dom0_max_vcpus=") {
                match dom0_max_vcpus(v) {
                    Ok((lo, hi)) => (d.min_vcpus, d.max_vcpus) = (lo, hi),
                    Err(e) => errors.push(format!("`{word}`: {e}")),
                }
            }
        }
        (d, errors)
    }

    /// The vCPU count for a machine with `nr_pcpus` CPUs.
    pub fn vcpus(&self, nr_pcpus: u32) -> u32 {
        nr_pcpus.max(self.min_vcpus).min(self.max_vcpus).max(1)
    }
}

/// A Xen size in KiB.
fn size_kib(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'T' | b't') => (&s[..s.len() - 1], 30),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 20),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 10),
        Some(b'K' | b'k') => (&s[..s.len() - 1], 0),
        Some(b'B' | b'b') => {
            let bytes: u64 = s[..s.len() - 1].parse().map_err(|_| format!("`{s}` is not a size"))?;
            return Ok(bytes / 1024);
        }
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a size (a number with B, K, M, G or T)"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("`{s}` is too large"))
}

fn dom0_mem(v: &str, default: u64) -> Result<u64, String> {
    let (mut amount, mut min, mut max) = (None, 0, u64::MAX);
    for item in v.split(',') {
        if item.starts_with('-') || item.contains(":-") {
            return Err("sizes relative to the host's memory are not supported".into());
        }
        match item.split_once(':') {
            Some(("min", s)) => min = size_kib(s)?,
            Some(("max", s)) => max = size_kib(s)?,
            Some((k, _)) => return Err(format!("unknown qualifier `{k}:`")),
            None => amount = Some(size_kib(item)?),
        }
    }
    let kib = amount.unwrap_or(default).max(min).min(max);
    if kib == 0 {
        return Err("the initial domain needs memory".into());
    }
    Ok(kib)
}

fn dom0_max_vcpus(v: &str) -> Result<(u32, u32), String> {
    let num = |s: &str, default: u32| {
        if s.is_empty() {
            return Ok(default);
        }
        s.parse::<u32>().map_err(|_| format!("`{s}` is not a number"))
    };
    let (lo, hi) = match v.split_once('-') {
        Some((lo, hi)) => (num(lo, 1)?, num(hi, u32::MAX)?),
        None => {
            let n = num(v, 0)?;
            (n, n)
        }
    };
    if lo == 0 || lo > hi {
        return Err(format!("`{v}` is not a vCPU count or a range min-max with 1 <= min <= max"));
    }
    Ok((lo, hi))
}

/// Builds the initial domain from `/chosen`'s modules, if there is a kernel module.
/// Returns `None` if there is none (messages about stray modules go to `warnings`).
pub(super) fn parse(
    chosen: FdtNode<'_, '_>,
    cells: Cells,
    limits: &Limits<'_>,
    owner: usize,
    evtchns: &mut Vec<EvtchnEnd>,
    problems: &mut Vec<Problem>,
) -> Option<Outcome> {
    let mut n = Notes::default();
    let (mut kernel, mut ramdisk): (Option<(Module, FdtNode<'_, '_>)>, Option<Module>) = (None, None);
    let mut unspecified = 0;
    let mut ends = Vec::new();
    for child in chosen.children() {
        let path = format!("/chosen/{}", child.name);
        let compat = props::compatible(child);
        if compat.contains(&"xen,evtchn-v1") {
            if let Some(e) = n.check(children::evtchn(child, &path, owner)) {
                ends.push(e);
            }
            continue;
        }
        if !children::is_module(&compat) {
            continue;
        }
        // Xen: the first module of unspecified type is the kernel, the second the ramdisk.
        let mut kind = children::module_kind(&compat);
        if kind == ModuleKind::Unspecified {
            unspecified += 1;
            kind = match unspecified {
                1 => ModuleKind::Kernel,
                2 => ModuleKind::Ramdisk,
                _ => ModuleKind::Unspecified,
            };
        }
        let used = match kind {
            ModuleKind::Kernel if kernel.is_none() => true,
            ModuleKind::Ramdisk if ramdisk.is_none() => true,
            _ => false,
        };
        if !used {
            n.warnings.push(format!(
                "{path}: ignoring a {} module (the initial domain takes one kernel and one ramdisk)",
                kind.name()
            ));
            continue;
        }
        let Some(m) = n.check(children::module(child, &path, cells, limits.boot_modules)) else { continue };
        match kind {
            ModuleKind::Kernel => kernel = Some((m, child)),
            _ => ramdisk = Some(m),
        }
    }
    let Some((kernel, kernel_node)) = kernel else {
        let problem = |severity, message| Problem { severity, node: "/chosen".into(), message };
        problems.extend(n.errors.into_iter().map(|m| problem(Severity::Error, m)));
        problems.extend(n.warnings.into_iter().map(|m| problem(Severity::Warning, m)));
        if let Some(r) = ramdisk {
            let m = format!("{}: a ramdisk module without a kernel module is ignored", r.node);
            problems.push(problem(Severity::Warning, m));
        }
        for e in ends {
            let m = format!("{}: a static event channel of the initial domain, but there is none", e.path);
            problems.push(problem(Severity::Error, m));
        }
        return None;
    };
    evtchns.append(&mut ends);
    let bootargs = bootargs(chosen, kernel_node, &kernel.node, &mut n);
    let vcpus = limits.initial.vcpus(limits.nr_pcpus);
    if vcpus > limits.max_vcpus {
        n.errors.push(format!("/chosen: the initial domain would have {vcpus} vCPUs, more than {}", limits.max_vcpus));
    }
    n.check(check_memory(limits.initial.memory_kib, "/chosen", limits).map_err(|e| format!("{e} (set dom0_mem=)")));
    if !n.errors.is_empty() {
        return Some(Err((n.errors, n.warnings)));
    }
    let mut d = DomainConfig::new(NAME.into(), "/chosen".into(), DomainKind::Initial, kernel);
    d.bootargs = bootargs;
    d.ramdisk = ramdisk;
    d.memory_kib = limits.initial.memory_kib;
    d.vcpus = vcpus;
    d.vpl011 = true;
    d.enhanced = Enhanced::NoXenstore;
    d.warnings = n.warnings;
    Some(Ok(d))
}

/// The initial domain's command line, by Xen's precedence: `/chosen/xen,dom0-bootargs`,
/// else the kernel module's `bootargs`, else `/chosen/bootargs`.
fn bootargs(chosen: FdtNode<'_, '_>, kernel: FdtNode<'_, '_>, kernel_path: &str, n: &mut Notes) -> Option<String> {
    let read = |node, name: &str, path: &str| {
        props::raw(node, name).map(|v| props::string(v).map(String::from).map_err(|e| format!("{path}: {name}: {e}")))
    };
    let found = read(chosen, "xen,dom0-bootargs", "/chosen")
        .or_else(|| read(kernel, "bootargs", kernel_path))
        .or_else(|| read(chosen, "bootargs", "/chosen"));
    found.and_then(|r| n.check(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xen_dom0_options() {
        let (d, e) = InitialDefaults::from_cmdline("console=dtuart dom0_mem=1G dom0_max_vcpus=2");
        assert!(e.is_empty());
        assert_eq!((d.memory_kib, d.vcpus(8)), (1 << 20, 2));
        let (d, _) = InitialDefaults::from_cmdline("dom0_mem=min:64M,max:256M,1024M dom0_max_vcpus=2-4");
        assert_eq!((d.memory_kib, d.vcpus(1), d.vcpus(3), d.vcpus(16)), (256 << 10, 2, 3, 4));
        let (d, _) = InitialDefaults::from_cmdline("dom0_mem=131072 dom0_max_vcpus=-3");
        assert_eq!((d.memory_kib, d.vcpus(8)), (131072, 3), "no suffix means KiB");
        let (d, e) = InitialDefaults::from_cmdline("dom0_mem=-512M dom0_mem=12Q dom0_max_vcpus=0 dom0_max_vcpus=4-2");
        assert_eq!(d, InitialDefaults::default());
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(InitialDefaults::default().vcpus(4), 4, "one vCPU per physical CPU by default");
    }
}
