//! Links the guest with its own linker script.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        return; // not a bare-metal build: nothing to link
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=src/entry.s");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
