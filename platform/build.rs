//! Links the image with its architecture's linker script, which lives in the arch crate.
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        return; // not a bare-metal build (e.g. `cargo check` on the host): nothing to link
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join(format!("arch-{arch}/link/{arch}.ld"));
    assert!(script.exists(), "no linker script for {arch} at {}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
