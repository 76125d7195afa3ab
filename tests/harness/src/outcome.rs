//! What a boot printed and how it ended, and the parsers for Keel's console protocol.

use std::collections::BTreeMap;
use std::time::Duration;

/// The result of one emulator run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Everything the emulator and Keel printed (stdout and stderr, merged).
    pub output: String,
    /// The exit status, or `None` if the run was killed at its timeout.
    pub status: Option<i32>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Keel's self-test verdict: `[test] done pass=N fail=M expected=E`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub pass: u32,
    pub fail: u32,
    pub expected: u32,
}

/// The last verdict line in `output`.
pub fn verdict(output: &str) -> Option<Verdict> {
    output.lines().rev().find_map(|line| {
        let rest = line.trim_end().strip_prefix("[test] done ")?;
        let mut v = Verdict { pass: u32::MAX, fail: u32::MAX, expected: u32::MAX };
        for word in rest.split_whitespace() {
            let (k, n) = word.split_once('=')?;
            let n: u32 = n.parse().ok()?;
            match k {
                "pass" => v.pass = n,
                "fail" => v.fail = n,
                "expected" => v.expected = n,
                _ => return None,
            }
        }
        (v.pass != u32::MAX && v.fail != u32::MAX && v.expected != u32::MAX).then_some(v)
    })
}

/// The boot facts (`[fact] key: value`) in `output`; a later line wins.
pub fn facts(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("[fact] ")?.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verdict_and_facts() {
        let out = "noise\n[fact] version: 0.1.0\r\n[fact] cpus-online: 4\n[test] done pass=4 fail=0 expected=4\r\n";
        assert_eq!(verdict(out), Some(Verdict { pass: 4, fail: 0, expected: 4 }));
        let f = facts(out);
        assert_eq!(f["version"], "0.1.0");
        assert_eq!(f["cpus-online"], "4");
    }

    #[test]
    fn rejects_malformed_verdicts() {
        assert_eq!(verdict("[test] done pass=4 fail=0"), None);
        assert_eq!(verdict("[test] done pass=x fail=0 expected=1"), None);
        assert_eq!(verdict("xx [test] done pass=1 fail=0 expected=1"), None);
        assert_eq!(verdict(""), None);
    }
}
