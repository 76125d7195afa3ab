//! Keel's command line: space-separated `keel.<option>=<value>` words. Words without the
//! `keel.` prefix (a Xen command line, say) are ignored.

use crate::arch::PowerOffPath;

/// How much the console shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// The options Keel understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `keel.exit=firmware|test`: how to power off (test = the emulator's exit device).
    pub power_off: PowerOffPath,
    /// `keel.loglevel=error|warn|info|debug|trace`.
    pub log_level: LogLevel,
    /// `keel.timeout=<seconds>` (1 to 86400): domains still running that long after they
    /// started are crashed, so that a run always ends (tests).
    pub timeout_s: Option<u64>,
    /// `keel.restarts=<n>` (0 to 1000): how often a domain whose guest reboots is built
    /// again from its description before a reboot ends it for good.
    pub restarts: u32,
    /// `keel.dom0_xenstore=local`: as Xen does, the initial domain gets no store page or
    /// port even beside a xenstore domain, so its kernel serves its own store until the
    /// control domain hands it over (`keelctl xenstore-connect`, `CTL_STORE_CONNECT`);
    /// `=domain` (the default): it gets them at build time, as a domU does.
    pub dom0_store_local: bool,
}

/// Restarts per domain unless `keel.restarts=` says otherwise.
pub const DEFAULT_RESTARTS: u32 = 8;

impl Default for Options {
    fn default() -> Self {
        Options {
            power_off: PowerOffPath::Firmware,
            log_level: LogLevel::Info,
            timeout_s: None,
            restarts: DEFAULT_RESTARTS,
            dom0_store_local: false,
        }
    }
}

impl Options {
    /// Parses `cmdline`; returns the options and the first word it did not understand.
    pub fn parse(cmdline: &str) -> (Options, Option<&str>) {
        let mut o = Options::default();
        let mut unknown = None;
        for word in cmdline.split_ascii_whitespace() {
            let Some(opt) = word.strip_prefix("keel.") else { continue };
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            let level = match value {
                "error" => Some(LogLevel::Error),
                "warn" => Some(LogLevel::Warn),
                "info" => Some(LogLevel::Info),
                "debug" => Some(LogLevel::Debug),
                "trace" => Some(LogLevel::Trace),
                _ => None,
            };
            let understood = match (key, value) {
                ("exit", "firmware") => {
                    o.power_off = PowerOffPath::Firmware;
                    true
                }
                ("exit", "test") => {
                    o.power_off = PowerOffPath::TestDevice;
                    true
                }
                ("loglevel", _) if level.is_some() => {
                    o.log_level = level.unwrap_or(o.log_level);
                    true
                }
                ("dom0_xenstore", "local" | "domain") => {
                    o.dom0_store_local = value == "local";
                    true
                }
                ("restarts", v) => match v.parse::<u32>() {
                    Ok(n) if n <= 1000 => {
                        o.restarts = n;
                        true
                    }
                    _ => false,
                },
                ("timeout", v) => match v.parse::<u64>() {
                    Ok(s) if (1..=86_400).contains(&s) => {
                        o.timeout_s = Some(s);
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if !understood && unknown.is_none() {
                unknown = Some(word);
            }
        }
        (o, unknown)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_reports_unknown() {
        let (o, bad) =
            Options::parse("dom0_mem=1G keel.exit=test keel.loglevel=debug keel.timeout=30 keel.bogus=1 keel.exit=x");
        assert_eq!(o.power_off, PowerOffPath::TestDevice);
        assert_eq!(o.log_level, LogLevel::Debug);
        assert_eq!(o.restarts, DEFAULT_RESTARTS);
        assert_eq!(Options::parse("keel.restarts=0").0.restarts, 0);
        assert!(Options::parse("keel.dom0_xenstore=local").0.dom0_store_local);
        assert!(!Options::parse("keel.dom0_xenstore=local keel.dom0_xenstore=domain").0.dom0_store_local);
        assert_eq!(Options::parse("keel.dom0_xenstore=x").1, Some("keel.dom0_xenstore=x"));
        assert_eq!(Options::parse("keel.restarts=1001"), (Options::default(), Some("keel.restarts=1001")));
        assert_eq!(o.timeout_s, Some(30));
        assert_eq!(bad, Some("keel.bogus=1"));
        assert_eq!(Options::parse("keel.timeout=0").1, Some("keel.timeout=0"));
        assert_eq!(Options::parse("keel.timeout=x").0.timeout_s, None);
        assert_eq!(Options::parse(""), (Options::default(), None));
    }
}
