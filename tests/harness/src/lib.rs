//! Keel's boot-test harness.
//!
//! A boot test runs one emulator configuration (through the runner scripts in `scripts/`)
//! under a hard timeout and passes only if all of these hold:
//! - the emulator exited by itself (a timeout is a failure) with the expected status;
//! - Keel printed `[test] done pass=N fail=0 expected=N` with N as expected;
//! - every `[test] pass <name>` the test asks for is present, no `[test] fail` and no
//!   `[PANIC` line appears;
//! - the boot facts the test asks for (`[fact] key: value`) have the expected values.
//!
//! An exit status alone is never a pass: QEMU also exits 0 after a triple fault with
//! `-no-reboot`, and Bochs exits 0 from its debugger.

mod outcome;
mod process;

pub use outcome::{facts, verdict, Outcome, Verdict};
pub use process::run;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One boot configuration and what it must produce.
#[derive(Clone, Debug)]
pub struct BootTest {
    /// Short name for messages.
    pub name: String,
    /// The runner program and its arguments.
    pub command: Vec<String>,
    /// Hard limit on the emulator's run time.
    pub timeout: Duration,
    /// The exit status that carries success.
    pub exit_status: i32,
    /// The number of passing self-tests Keel must report.
    pub passes: u32,
    /// `[test] pass <name>` lines that must appear.
    pub required_passes: Vec<String>,
    /// `[fact] key: value` pairs that must appear with exactly these values.
    pub facts: Vec<(String, String)>,
    /// Lines (substrings) that must appear, e.g. a refusal message.
    pub required_lines: Vec<String>,
    /// Whether the run is expected to end in a failure verdict (bad-input tests): then the
    /// `done` line is not required, `exit_status` is the failure status and
    /// `required_lines` say why.
    pub expect_refusal: bool,
    /// Runs again (at most this often) when the emulator reset the machine before any
    /// verdict: see [`BootTest::retry_on_emulator_reset`].
    pub reset_retries: u32,
}

impl BootTest {
    /// A test running `script` (relative to the repository root) with `args`.
    pub fn new(name: &str, script: &str, args: &[&str]) -> Self {
        let mut command = vec![repo_root().join(script).display().to_string()];
        command.extend(args.iter().map(|s| s.to_string()));
        BootTest {
            name: name.into(),
            command,
            timeout: Duration::from_secs(90),
            exit_status: 0,
            passes: 0,
            required_passes: Vec::new(),
            facts: Vec::new(),
            required_lines: Vec::new(),
            expect_refusal: false,
            reset_retries: 0,
        }
    }

    /// QEMU's TCG SVM sometimes triple-faults the host right after a #VMEXIT, an
    /// emulator defect (docs/x86-guests.md, "Known gaps"). With `-no-reboot` QEMU then
    /// exits with status 0 before Keel printed a verdict; such a run is repeated once.
    /// Only for runs whose success status is not 0 (QEMU x86 with isa-debug-exit).
    pub fn retry_on_emulator_reset(mut self) -> Self {
        self.reset_retries = 1;
        self
    }

    /// Whether `out` is a machine reset before any verdict (see
    /// [`BootTest::retry_on_emulator_reset`]).
    pub fn emulator_reset(&self, out: &Outcome) -> bool {
        self.exit_status != 0 && out.status == Some(0) && verdict(&out.output).is_none()
    }

    /// Expects the per-CPU hypercall probe to pass on `cpus` CPUs.
    pub fn probe_on_cpus(mut self, cpus: u32) -> Self {
        self.passes = cpus;
        self.required_passes = (0..cpus).map(|c| format!("hypercall-probe-cpu{c}")).collect();
        self.facts.push(("cpus-online".into(), cpus.to_string()));
        self
    }

    /// Expects each of the domains `names` to run and power itself off: one more pass
    /// (`[test] pass domain-<name>`) each.
    pub fn domains(mut self, names: &[&str]) -> Self {
        for n in names {
            self.passes += 1;
            self.required_passes.push(format!("domain-{n}"));
        }
        self
    }

    /// Requires output lines containing each of `lines` (e.g. a guest's `(d1) ...` lines
    /// with the values it saw).
    pub fn lines(mut self, lines: &[&str]) -> Self {
        self.required_lines.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    /// Expects domain `name` to power itself off (`[test] pass domain-<name>`).
    pub fn domain(mut self, name: &str) -> Self {
        self.passes += 1;
        self.required_passes.push(format!("domain-{name}"));
        self
    }

    /// Expects `text` somewhere in the output (e.g. a guest's console line).
    pub fn line(mut self, text: &str) -> Self {
        self.required_lines.push(text.into());
        self
    }

    pub fn fact(mut self, key: &str, value: &str) -> Self {
        self.facts.push((key.into(), value.into()));
        self
    }

    pub fn exit_status(mut self, status: i32) -> Self {
        self.exit_status = status;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Expects Keel to refuse to run, saying `why`, and to exit with `status`.
    pub fn refusal(mut self, why: &str, status: i32) -> Self {
        self.expect_refusal = true;
        self.required_lines.push(why.into());
        self.exit_status = status;
        self
    }

    /// Checks an outcome against this test's expectations; `Err` lists every problem.
    pub fn check(&self, out: &Outcome) -> Result<(), String> {
        let mut problems = Vec::new();
        match out.status {
            None => problems.push(format!("timed out after {:?} (Keel hung or never powered off)", self.timeout)),
            Some(s) if s != self.exit_status => {
                problems.push(format!("exit status {s}, expected {}", self.exit_status))
            }
            Some(_) => {}
        }
        for line in out.output.lines() {
            if line.starts_with("[PANIC") {
                problems.push(format!("hypervisor panic: {line}"));
            }
        }
        for need in &self.required_lines {
            if !out.output.contains(need.as_str()) {
                problems.push(format!("missing output: {need:?}"));
            }
        }
        if !self.expect_refusal {
            self.check_verdict(out, &mut problems);
        }
        let found = facts(&out.output);
        for (k, v) in &self.facts {
            match found.get(k) {
                Some(got) if got == v => {}
                Some(got) => problems.push(format!("fact {k}: {got:?}, expected {v:?}")),
                None => problems.push(format!("fact {k} missing (expected {v:?})")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, problems.join("; ")))
        }
    }

    fn check_verdict(&self, out: &Outcome, problems: &mut Vec<String>) {
        for line in out.output.lines() {
            if let Some(rest) = line.strip_prefix("[test] fail ") {
                problems.push(format!("self-test failed: {rest}"));
            }
        }
        for name in &self.required_passes {
            let prefix = format!("[test] pass {name}:");
            match out.output.lines().filter(|l| l.starts_with(&prefix)).count() {
                0 => problems.push(format!("no pass line for {name}")),
                1 => {}
                n => problems.push(format!("{n} pass lines for {name}")),
            }
        }
        match verdict(&out.output) {
            None => problems.push("no '[test] done' verdict line".into()),
            Some(v) => {
                if v.fail != 0 || v.pass != self.passes || v.expected != self.passes {
                    problems.push(format!(
                        "verdict pass={} fail={} expected={}, wanted pass={} fail=0 expected={}",
                        v.pass, v.fail, v.expected, self.passes, self.passes
                    ));
                }
            }
        }
    }
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

#[cfg(test)]
mod reset_tests {
    use super::*;

    #[test]
    fn only_a_status_0_exit_without_a_verdict_is_an_emulator_reset() {
        let t = BootTest::new("x", "scripts/qemu-x86_64", &[]).exit_status(33).retry_on_emulator_reset();
        let out = |status, output: &str| Outcome { output: output.into(), status, elapsed: Duration::ZERO };
        assert!(t.emulator_reset(&out(Some(0), "booting...\n")));
        assert!(!t.emulator_reset(&out(Some(0), "[test] done pass=1 fail=0 expected=1\n")));
        assert!(!t.emulator_reset(&out(Some(35), "booting...\n")), "a failure verdict is not retried");
        assert!(!t.emulator_reset(&out(None, "booting...\n")), "a timeout is not retried");
        let arm = BootTest::new("y", "scripts/qemu-aarch64", &[]);
        assert!(!arm.emulator_reset(&out(Some(0), "")), "where 0 is success, nothing is retried");
    }
}
