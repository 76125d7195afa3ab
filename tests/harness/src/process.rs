//! Running an emulator under a hard timeout, capturing its output.

use crate::{BootTest, Outcome};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `test`'s command in its own process group with stdin closed; kills the whole group
/// at the timeout.
pub fn run(test: &BootTest) -> Outcome {
    let start = Instant::now();
    let (program, args) = test.command.split_first().expect("a command");
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                output: format!("harness: cannot start {program}: {e}"),
                status: Some(-1),
                elapsed: start.elapsed(),
            }
        }
    };
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    for mut pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut bytes = Vec::new();
    let deadline = start + test.timeout;
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            bytes.extend(chunk);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s.code().or(Some(-1)),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(pgid);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break Some(-1),
        }
    };
    // The runner has exited; stop its leftovers and collect what the pipes still hold.
    kill_group(pgid);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
        bytes.extend(chunk);
    }
    Outcome { output: String::from_utf8_lossy(&bytes).into_owned(), status, elapsed: start.elapsed() }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> (BootTest, Outcome) {
        let mut t = BootTest::new("fake", "tests/harness/src/process.rs", &[]);
        t.command = vec!["sh".into(), "-c".into(), script.into()];
        t.timeout = Duration::from_millis(timeout_ms);
        let t = t.probe_on_cpus(2);
        let out = run(&t);
        (t, out)
    }

    const GOOD: &str = "echo '[fact] cpus-online: 2'; echo '[test] pass hypercall-probe-cpu0: ok'; \
                        echo '[test] pass hypercall-probe-cpu1: ok'; echo '[test] done pass=2 fail=0 expected=2'";

    #[test]
    fn accepts_a_good_run() {
        let (t, out) = sh(&format!("{GOOD}; exit 0"), 5000);
        t.check(&out).unwrap();
    }

    #[test]
    fn rejects_wrong_status_even_with_good_output() {
        let (t, out) = sh(&format!("{GOOD}; exit 3"), 5000);
        assert!(t.check(&out).unwrap_err().contains("exit status 3"));
    }

    #[test]
    fn rejects_status_zero_without_verdict() {
        let (t, out) = sh("echo '[test] pass hypercall-probe-cpu0: ok'; exit 0", 5000);
        let e = t.check(&out).unwrap_err();
        assert!(e.contains("no '[test] done'"), "{e}");
        assert!(e.contains("no pass line for hypercall-probe-cpu1"), "{e}");
    }

    #[test]
    fn rejects_a_failed_or_short_verdict() {
        let (t, out) = sh(
            "echo '[fact] cpus-online: 2'; echo '[test] fail hypercall-probe-cpu1: x'; \
                           echo '[test] done pass=1 fail=1 expected=2'",
            5000,
        );
        let e = t.check(&out).unwrap_err();
        assert!(e.contains("self-test failed"), "{e}");
        assert!(e.contains("verdict pass=1 fail=1"), "{e}");
    }

    #[test]
    fn rejects_a_panic() {
        let (t, out) = sh(&format!("{GOOD}; echo '[PANIC 0] boom'"), 5000);
        assert!(t.check(&out).unwrap_err().contains("hypervisor panic"));
    }

    #[test]
    fn kills_a_hang_at_the_timeout() {
        let (t, out) = sh(&format!("{GOOD}; sleep 30 & sleep 30"), 300);
        assert_eq!(out.status, None);
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
        assert!(t.check(&out).unwrap_err().contains("timed out"));
    }
}
