//! What can be wrong with a device tree blob.

use core::fmt;

/// Why a blob is not a usable device tree. Offsets are bytes into the structure block
/// unless a variant says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// Fewer bytes than a header.
    TooShort(usize),
    BadMagic(u32),
    /// `totalsize` is below the header, above the bytes given or above [`MAX_SIZE`](super::MAX_SIZE).
    BadTotalSize {
        total: usize,
        available: usize,
    },
    /// Version and last compatible version; Keel reads version 17.
    BadVersion {
        version: u32,
        last_compatible: u32,
    },
    /// A block (structure, strings, memory reservation) outside the tree.
    BlockOutside(&'static str),
    /// The structure block is not 4-byte aligned.
    Misaligned(usize),
    /// The structure block ends before `FDT_END`.
    NoEnd(usize),
    /// `FDT_END` with nodes still open.
    OpenNodes {
        at: usize,
        depth: usize,
    },
    UnbalancedEndNode(usize),
    SecondRoot(usize),
    TooDeep(usize),
    /// A node name that is not NUL-terminated UTF-8.
    BadNodeName(usize),
    PropertyOutsideNode(usize),
    PropertyAfterChild(usize),
    /// A property whose value runs past the structure block.
    PropertyTooLong {
        at: usize,
        len: usize,
    },
    /// A property name offset that is outside the strings block or not a NUL-terminated
    /// UTF-8 string.
    BadPropertyName {
        at: usize,
        offset: usize,
    },
    DuplicateProperty(usize),
    /// `FDT_NOP` where it is not accepted (after [`prepare`](super::prepare) there are none).
    Nop(usize),
    UnknownToken {
        at: usize,
        token: u32,
    },
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DtbError::TooShort(n) => write!(f, "{n} bytes is too short for a DTB header"),
            DtbError::BadMagic(m) => write!(f, "bad magic {m:#x} (expected {:#x})", super::MAGIC),
            DtbError::BadTotalSize { total, available } => {
                write!(f, "totalsize {total} does not fit the {available} bytes given")
            }
            DtbError::BadVersion { version, last_compatible } => {
                write!(f, "version {version} (last compatible {last_compatible}) is not supported; need 17")
            }
            DtbError::BlockOutside(b) => write!(f, "the {b} block lies outside the tree"),
            DtbError::Misaligned(at) => write!(f, "structure block at {at:#x} is not 4-byte aligned"),
            DtbError::NoEnd(at) => write!(f, "structure block ends without FDT_END at {at:#x}"),
            DtbError::OpenNodes { at, depth } => write!(f, "FDT_END at {at:#x} with {depth} node(s) open"),
            DtbError::UnbalancedEndNode(at) => write!(f, "unbalanced FDT_END_NODE at {at:#x}"),
            DtbError::SecondRoot(at) => write!(f, "a second root node at {at:#x}"),
            DtbError::TooDeep(at) => write!(f, "nodes nested deeper than {} at {at:#x}", super::MAX_DEPTH),
            DtbError::BadNodeName(at) => write!(f, "node name at {at:#x} is not NUL-terminated UTF-8"),
            DtbError::PropertyOutsideNode(at) => write!(f, "property outside any node at {at:#x}"),
            DtbError::PropertyAfterChild(at) => write!(f, "property after a child node at {at:#x}"),
            DtbError::PropertyTooLong { at, len } => {
                write!(f, "property at {at:#x}: {len} bytes run past the block")
            }
            DtbError::BadPropertyName { at, offset } => {
                write!(f, "property at {at:#x}: name at string offset {offset} is not a NUL-terminated UTF-8 string")
            }
            DtbError::DuplicateProperty(at) => write!(f, "property at {at:#x} appears twice in one node"),
            DtbError::Nop(at) => write!(f, "FDT_NOP at {at:#x}: repack the tree (dtc -I dtb -O dtb)"),
            DtbError::UnknownToken { at, token } => write!(f, "unknown token {token:#x} at {at:#x}"),
        }
    }
}
