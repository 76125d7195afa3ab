//! A guest hypercall's number and arguments, as the backend decoded them.

/// The arguments of a guest hypercall, decoded from the architecture's hypercall register
/// convention (`docs/abi.md`), in the width of the guest's current mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypercallArgs {
    pub number: u64,
    pub args: [u64; 5],
    /// The caller runs 32-bit x86 code: its structs have Xen's compat layouts (32-bit
    /// `xen_ulong_t`, `xen_pfn_t` and guest handles), `docs/abi.md` §2.
    pub compat: bool,
}
