//! The shipped program: without /dev/xen/privcmd (the host) it says to load xen-privcmd;
//! checking a config works.
use std::process::Command;

fn keelctl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_keelctl")).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn without_privcmd_the_program_says_to_load_it() {
    for cmd in [&["list"][..], &["destroy", "web"], &["info"]] {
        let (code, _, err) = keelctl(cmd);
        assert_eq!(code, 1, "{cmd:?}");
        assert!(
            err.contains("Keel's control interface is not available: /dev/xen/privcmd does not exist: load the xen-privcmd module"),
            "{cmd:?}: {err}"
        );
    }
}

#[test]
fn the_program_checks_a_configuration() {
    let dir = std::env::temp_dir().join(format!("keelctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("web.cfg");
    std::fs::write(&cfg, "name = 'web'\nkernel = '/boot/Image'\nmemory = 'x'\n").unwrap();
    let (code, _, err) = keelctl(&["create", "-n", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("web.cfg:3: memory: expected a number"), "{err}");
    std::fs::write(&cfg, "name = 'web'\nkernel = '/boot/Image'\nmemory = 64\n").unwrap();
    let (code, out, _) = keelctl(&["create", "-n", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("memory: 64 MiB"), "{out}");
    let (code, out, _) = keelctl(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("sched-credit"));
    std::fs::remove_dir_all(&dir).unwrap();
}
