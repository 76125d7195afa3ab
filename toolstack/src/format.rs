//! xl's output formats (`tools/xl/xl_list.c`, `xl_vcpu.c`, `xl_sched.c`, `xl_info.c`).

use crate::control::{DomainInfo, HostInfo, Sched, ShutdownReason, VcpuInfo};
use crate::cpulist::host_form;

/// `list`'s header line (xl prints it as one literal with these widths).
pub fn list_header() -> String {
    format!("{:<40} {:>5} {:>5} {:>5}\tState\tTime(s)\n", "Name", "ID", "Mem", "VCPUs")
}

fn flag(on: bool, letter: char) -> char {
    if on {
        letter
    } else {
        '-'
    }
}

/// One `list` line: name, id, memory in MiB, vCPUs, the six state letters `rbpscd`
/// (running, blocked, paused, shut down, shutdown reason `-rscwS`, dying) and CPU seconds.
pub fn list_row(d: &DomainInfo) -> String {
    let reason = match d.shutdown {
        None | Some(ShutdownReason::Poweroff) => '-',
        Some(ShutdownReason::Reboot) => 'r',
        Some(ShutdownReason::Suspend) => 's',
        Some(ShutdownReason::Crash) => 'c',
        Some(ShutdownReason::Watchdog) => 'w',
        Some(ShutdownReason::SoftReset) => 'S',
    };
    format!(
        "{:<40} {:>5} {:>5} {:>5}     {}{}{}{}{}{}  {:>8.1}\n",
        d.name,
        d.id,
        d.memory_kib / 1024,
        d.vcpus_online,
        flag(d.running, 'r'),
        flag(d.blocked, 'b'),
        flag(d.paused, 'p'),
        flag(d.shutdown.is_some(), 's'),
        reason,
        flag(d.dying, 'd'),
        seconds(d.cpu_time_ns)
    )
}

fn seconds(ns: u64) -> f64 {
    // Whole seconds and tenths separately, so large values keep their precision.
    (ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9
}

/// `vcpu-list`'s header line.
pub fn vcpu_header() -> String {
    format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9} {}\n",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity (Hard / Soft)"
    )
}

/// One `vcpu-list` line.
pub fn vcpu_row(name: &str, id: u32, v: &VcpuInfo, nr_cpus: u32) -> String {
    let mut s = format!("{name:<32} {id:>5} {:>5}", v.vcpu);
    if v.online {
        s.push_str(&format!(" {:>5} {:>3}{}- ", v.cpu, flag(v.running, 'r'), flag(v.blocked, 'b')));
    } else {
        s.push_str(&format!(" {:>5} {:>3}{}p ", '-', '-', flag(v.blocked, 'b')));
    }
    s.push_str(&format!("{:>9.1}  ", seconds(v.time_ns)));
    s.push_str(&host_form(&v.hard_affinity, nr_cpus));
    s.push_str(" / ");
    s.push_str(&host_form(&v.soft_affinity, nr_cpus));
    s.push('\n');
    s
}

/// `sched-credit`'s header line.
pub fn sched_header() -> String {
    format!("{:<33} {:>4} {:>6} {:>4}\n", "Name", "ID", "Weight", "Cap")
}

/// One `sched-credit` line.
pub fn sched_row(name: &str, id: u32, s: &Sched) -> String {
    format!("{name:<33} {id:>4} {:>6} {:>4}\n", s.weight, s.cap)
}

/// `info`'s `key : value` lines.
pub fn info(h: &HostInfo) -> String {
    let rows: [(&str, String); 16] = [
        ("host", h.host.clone()),
        ("release", h.release.clone()),
        ("machine", h.machine.clone()),
        ("nr_cpus", h.nr_cpus.to_string()),
        ("cpu_mhz", h.cpu_mhz.to_string()),
        ("total_memory", h.total_memory_mib.to_string()),
        ("free_memory", h.free_memory_mib.to_string()),
        // Keel's own line: free memory to the page, so that a leak shows.
        ("free_pages", h.free_pages.to_string()),
        ("xen_major", h.version_major.to_string()),
        ("xen_minor", h.version_minor.to_string()),
        ("xen_extra", h.version_extra.clone()),
        ("xen_version", format!("{}.{}{}", h.version_major, h.version_minor, h.version_extra)),
        ("xen_caps", h.caps.clone()),
        ("xen_scheduler", h.scheduler.clone()),
        ("xen_pagesize", h.pagesize.to_string()),
        ("xen_commandline", h.commandline.clone()),
    ];
    rows.iter().map(|(k, v)| format!("{k:<23}: {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpulist::CpuSet;

    #[test]
    fn list_matches_xl() {
        let d = DomainInfo {
            id: 0,
            name: "Domain-0".into(),
            memory_kib: 1024 * 1024,
            vcpus_online: 4,
            running: true,
            blocked: false,
            paused: false,
            shutdown: None,
            dying: false,
            cpu_time_ns: 12_345_600_000,
        };
        // As `xl list` prints dom0 (printf "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f").
        assert_eq!(
            format!("{}{}", list_header(), list_row(&d)),
            "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
             Domain-0                                     0  1024     4     r-----      12.3\n"
        );
        let crashed = DomainInfo {
            id: 7,
            name: "web".into(),
            running: false,
            shutdown: Some(ShutdownReason::Crash),
            dying: true,
            ..d
        };
        assert!(list_row(&crashed).contains("     7  1024     4     ---scd      12.3"));
    }

    #[test]
    fn vcpu_and_sched_rows() {
        let v = VcpuInfo {
            vcpu: 1,
            online: true,
            running: false,
            blocked: true,
            cpu: 3,
            time_ns: 1_500_000_000,
            hard_affinity: CpuSet::all(),
            soft_affinity: CpuSet::of([0, 1, 2]),
        };
        assert_eq!(
            vcpu_row("web", 7, &v, 4),
            "web                                  7     1     3   -b-       1.5  all / 0-2\n"
        );
        let off = VcpuInfo { online: false, blocked: false, ..v };
        assert!(vcpu_row("web", 7, &off, 4).contains("     -   --p "));
        assert_eq!(
            sched_row("Domain-0", 0, &Sched { weight: 256, cap: 0 }),
            "Domain-0                             0    256    0\n"
        );
    }
}
