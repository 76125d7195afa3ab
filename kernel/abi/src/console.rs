//! The PV console ring (`xencons_interface`), one page at `HVM_PARAM_CONSOLE_PFN`.

/// Size of the input ring (host to guest).
pub const XENCONS_IN_SIZE: u32 = 1024;
/// Size of the output ring (guest to host).
pub const XENCONS_OUT_SIZE: u32 = 2048;

wire_struct! {
    /// `xencons_interface`. Indices are free-running; mask with the ring size.
    pub struct XenconsInterface: 3092 {
        pub input: [u8; 1024] = 0,
        pub output: [u8; 2048] = 1024,
        pub in_cons: u32 = 3072,
        pub in_prod: u32 = 3076,
        pub out_cons: u32 = 3080,
        pub out_prod: u32 = 3084,
        /// 0: connected; 1: disconnected.
        pub connection: u8 = 3088,
        pub _pad: [u8; 3] = 3089,
    }
}

/// Byte offset of `in_cons`.
pub const XENCONS_IN_CONS: usize = 3072;
/// Byte offset of `in_prod`.
pub const XENCONS_IN_PROD: usize = 3076;
/// Byte offset of `out_cons`.
pub const XENCONS_OUT_CONS: usize = 3080;
/// Byte offset of `out_prod`.
pub const XENCONS_OUT_PROD: usize = 3084;
