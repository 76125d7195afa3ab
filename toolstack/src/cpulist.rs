//! xl's CPU lists: `all`, `N`, `N-M`, and `^N` / `^N-M` to take CPUs out, separated by
//! commas and applied left to right (`"0-3,^2"` is 0, 1 and 3). A list that starts with a
//! `^` item starts from all CPUs. Numbers are below [`MAX_CPUS`].

use std::collections::BTreeSet;
use std::fmt;

/// CPU numbers accepted (Keel's limit is lower; this only bounds the parser).
pub const MAX_CPUS: u32 = 4096;

/// A set of CPUs, possibly "all of them, except ...".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CpuSet {
    all: bool,
    /// With `all`: the CPUs taken out; without: the CPUs in the set.
    cpus: BTreeSet<u32>,
}

impl CpuSet {
    /// Every CPU.
    pub fn all() -> CpuSet {
        CpuSet { all: true, cpus: BTreeSet::new() }
    }

    /// Exactly `cpus`.
    pub fn of(cpus: impl IntoIterator<Item = u32>) -> CpuSet {
        CpuSet { all: false, cpus: cpus.into_iter().collect() }
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.all != self.cpus.contains(&cpu)
    }

    /// The CPUs of a host with `nr_cpus` CPUs that are in the set.
    pub fn on_host(&self, nr_cpus: u32) -> BTreeSet<u32> {
        (0..nr_cpus).filter(|&c| self.contains(c)).collect()
    }

    fn insert(&mut self, cpu: u32) {
        if self.all {
            self.cpus.remove(&cpu);
        } else {
            self.cpus.insert(cpu);
        }
    }

    fn remove(&mut self, cpu: u32) {
        if self.all {
            self.cpus.insert(cpu);
        } else {
            self.cpus.remove(&cpu);
        }
    }

    /// Parses a CPU list; the message says what is wrong.
    pub fn parse(text: &str) -> Result<CpuSet, String> {
        let mut set = CpuSet::default();
        let items: Vec<&str> = text.split(',').map(str::trim).collect();
        if items.iter().all(|i| i.is_empty()) {
            return Err("the CPU list is empty".into());
        }
        for (i, item) in items.iter().enumerate() {
            let (negate, body) = match item.strip_prefix('^') {
                Some(b) => (true, b),
                None => (false, *item),
            };
            if body == "all" {
                if negate {
                    set = CpuSet::default();
                } else {
                    set = CpuSet::all();
                }
                continue;
            }
            if i == 0 && negate {
                set = CpuSet::all();
            }
            let (lo, hi) = match body.split_once('-') {
                Some((a, b)) => (cpu_number(a)?, cpu_number(b)?),
                None => {
                    let n = cpu_number(body)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("`{body}`: the range runs backwards"));
            }
            for cpu in lo..=hi {
                if negate {
                    set.remove(cpu);
                } else {
                    set.insert(cpu);
                }
            }
        }
        Ok(set)
    }
}

fn cpu_number(s: &str) -> Result<u32, String> {
    let n: u32 = s.trim().parse().map_err(|_| format!("`{s}` is not a CPU number"))?;
    if n >= MAX_CPUS {
        return Err(format!("CPU {n} is beyond the limit of {MAX_CPUS}"));
    }
    Ok(n)
}

/// xl's form: `all`, or ranges such as `0-3,5` (`all,^2` for "all but").
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            f.write_str("all")?;
            for r in ranges(&self.cpus) {
                write!(f, ",^{r}")?;
            }
            return Ok(());
        }
        if self.cpus.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = ranges(&self.cpus);
        f.write_str(&parts.join(","))
    }
}

/// `{0,1,2,5}` as `["0-2", "5"]`.
pub fn ranges(cpus: &BTreeSet<u32>) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = cpus.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    out
}

/// xl's affinity column: `all` if every CPU of the host is in, else ranges.
pub fn host_form(set: &CpuSet, nr_cpus: u32) -> String {
    let on = set.on_host(nr_cpus);
    if on.len() == usize::try_from(nr_cpus).unwrap_or(usize::MAX) {
        return "all".into();
    }
    if on.is_empty() {
        return "none".into();
    }
    ranges(&on).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn xl_examples() {
        assert_eq!(CpuSet::parse("0-3,^2").unwrap().on_host(8), [0, 1, 3].into());
        assert_eq!(CpuSet::parse("all").unwrap().on_host(3), [0, 1, 2].into());
        assert_eq!(CpuSet::parse("^1").unwrap().on_host(4), [0, 2, 3].into());
        assert_eq!(CpuSet::parse("all,^0-1").unwrap().on_host(4), [2, 3].into());
        assert_eq!(CpuSet::parse("0-3,^2,2").unwrap().on_host(8), [0, 1, 2, 3].into());
        assert_eq!(CpuSet::parse(" 5 , 7").unwrap().to_string(), "5,7");
        for bad in ["", "3-1", "x", "1-", "-1", "4096", "0,,1", "^"] {
            assert!(CpuSet::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(host_form(&CpuSet::parse("0-3").unwrap(), 4), "all");
        assert_eq!(host_form(&CpuSet::parse("0-2,5").unwrap(), 8), "0-2,5");
    }

    proptest! {
        #[test]
        fn display_parses_back(cpus in prop::collection::btree_set(0u32..64, 0..20), all in any::<bool>()) {
            let set = CpuSet { all, cpus };
            let text = set.to_string();
            if text != "none" {
                let back = CpuSet::parse(&text).unwrap();
                prop_assert_eq!(back.on_host(64), set.on_host(64));
            }
        }

        #[test]
        fn matches_sequential_bitmap(items in prop::collection::vec((any::<bool>(), 0u32..16, 0u32..4), 1..8)) {
            let text: Vec<String> = items.iter().map(|(neg, lo, len)| {
                format!("{}{}-{}", if *neg { "^" } else { "" }, lo, lo + len)
            }).collect();
            let set = CpuSet::parse(&text.join(",")).unwrap();
            let mut bits = [items[0].0; 32];
            for (neg, lo, len) in &items {
                for c in *lo..=lo + len {
                    bits[c as usize] = !neg;
                }
            }
            for c in 0..32u32 {
                prop_assert_eq!(set.contains(c), bits[c as usize], "cpu {} of {:?}", c, text);
            }
        }
    }
}
