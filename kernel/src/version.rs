//! Keel's own version (distinct from the guest-ABI version in `keel_abi`).

/// Keel's release version, from the workspace manifest.
pub const KEEL_VERSION: &str = env!("CARGO_PKG_VERSION");
