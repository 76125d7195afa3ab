//! Linux x86 `bzImage` kernels (`vmlinuz`, as distributions ship them), read the way Xen's
//! PVH loader reads them (`xen/arch/x86/bzimage.c`): the real-mode setup header (Linux
//! `Documentation/arch/x86/boot.rst`, protocol 2.08 or later) names the compressed payload,
//! which is the kernel's `vmlinux` ELF image, XZ-, Zstandard- or gzip-compressed, followed
//! by its decompressed length (4 bytes, little-endian). Debian's bookworm kernels are XZ, its
//! 6.12 kernels (bookworm-backports, trixie) Zstandard.
//!
//! [`payload`] checks the header; [`decompress_into`] streams the decompressed payload, in
//! order and in chunks, to a sink (the x86 loader's: a window of the domain's RAM), so no
//! copy of the kernel sits in Keel's heap; the decoders' own buffers are taken with
//! fallible allocation, so a damaged or huge kernel is refused by name rather than
//! crashing Keel.

#[cfg(test)]
mod tests;

use crate::gzip;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use ruzstd::io::Read;
use xz4rust::{XzDecoder, XzNextBlockResult};

/// Offset of `setup_sects` (the real-mode code's size in 512-byte sectors; 0 means 4).
const SETUP_SECTS: usize = 0x1f1;
/// Offset of the header signature `HdrS`.
const HEADER: usize = 0x202;
const HDRS: &[u8; 4] = b"HdrS";
/// Offset of the boot protocol version.
const VERSION: usize = 0x206;
/// Offsets of `payload_offset` and `payload_length` (protocol 2.08+), relative to the
/// protected-mode code, which starts after the setup sectors.
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// The oldest protocol with the payload fields.
const MIN_VERSION: u16 = 0x0208;
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// A Zstandard frame's magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// How much a Zstandard frame is decoded between two checks of the output's size.
const ZSTD_STEP: usize = 1 << 20;
/// The largest Zstandard block (RFC 8878 §3.1.1.2.3): what one decoding step may overshoot.
const ZSTD_BLOCK: usize = 128 << 10;
/// The largest window a Zstandard frame may ask for: the decoder keeps that much of its
/// output in Keel's heap (as XZ keeps its dictionary). Linux's `zstd -22 --ultra` kernels
/// name a 128 MiB window, more than any Keel heap holds.
pub const ZSTD_MAX_WINDOW: u64 = 32 << 20;
/// The buffer the XZ and Zstandard decoders' output passes through on its way to the sink.
const CHUNK: usize = 64 << 10;
/// The dictionary Linux's `scripts/xz_wrap.sh` compresses kernels with; the largest the
/// decoder accepts.
pub const XZ_DICT: usize = 32 << 20;

/// The smallest dictionary taken up front.
const MIN_DICT: usize = 64 << 10;

/// How the payload is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
}

/// The compressed `vmlinux` inside a bzImage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub compression: Compression,
    /// The compressed stream, without the 4-byte length after it.
    pub stream: &'a [u8],
    /// The decompressed length the kernel's build appended.
    pub len: u32,
}

/// Why a bzImage cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BzImageError {
    /// Too short for a setup header.
    Truncated,
    /// A boot protocol older than 2.08 (no payload fields).
    OldProtocol(u16),
    /// The payload lies (partly) outside the file.
    PayloadOutside { offset: u64, length: u64, file: usize },
    /// The payload is neither XZ, Zstandard nor gzip (LZMA, LZ4, bzip2, LZO kernels).
    UnknownCompression([u8; 4]),
    /// The decompressed length is larger than the caller allows.
    TooLarge { len: u32, limit: usize },
    /// The heap cannot hold the decompressed kernel (or the XZ dictionary).
    OutOfMemory(usize),
    /// The XZ stream is damaged, truncated or uses what a kernel stream never does.
    Xz(xz4rust::XzError),
    /// The Zstandard frame is damaged or truncated (the decoder's words).
    Zstd(String),
    /// The Zstandard frame's checksum (XXH64) does not match its content.
    ZstdChecksum { stored: u32, computed: u32 },
    /// The gzip stream is damaged or truncated.
    Gzip(gzip::GzipError<&'static str>),
    /// The stream decompresses to another length than the one appended to it.
    LengthMismatch { announced: u32, actual: u64 },
    /// The Zstandard frame asks for a window larger than Keel keeps.
    ZstdWindow { window: u64, limit: u64 },
    /// The sink refused the output (in the loader: it does not fit the guest's RAM).
    Output(String),
}

impl fmt::Display for BzImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BzImageError::Truncated => write!(f, "the bzImage is too short for its setup header"),
            BzImageError::OldProtocol(v) => {
                write!(f, "boot protocol {}.{:02} is older than 2.08 (no payload)", v >> 8, v & 0xff)
            }
            BzImageError::PayloadOutside { offset, length, file } => write!(
                f,
                "the payload at {offset:#x} of {length:#x} bytes lies outside the {file:#x}-byte file: truncated"
            ),
            BzImageError::UnknownCompression(m) => {
                write!(f, "the payload starts {m:02x?}: neither XZ, Zstandard nor gzip, the compressions Keel reads")
            }
            BzImageError::TooLarge { len, limit } => {
                write!(f, "the kernel decompresses to {len} bytes, more than the {limit} allowed")
            }
            BzImageError::OutOfMemory(n) => write!(f, "no heap left for {n} bytes to decompress the kernel into"),
            BzImageError::Xz(e) => write!(f, "the XZ payload is damaged or truncated ({e:?})"),
            BzImageError::Zstd(e) => write!(f, "the Zstandard payload is damaged or truncated ({e})"),
            BzImageError::ZstdChecksum { stored, computed } => {
                write!(f, "the Zstandard payload's checksum is {stored:#010x}, its content's {computed:#010x}: damaged")
            }
            BzImageError::Gzip(e) => write!(f, "the gzip payload: {e}"),
            BzImageError::LengthMismatch { announced, actual } => write!(
                f,
                "the payload decompresses to {actual} bytes, not the {announced} its trailer announces: damaged"
            ),
            BzImageError::ZstdWindow { window, limit } => write!(
                f,
                "the Zstandard frame asks for a {} MiB window, more than the {} MiB Keel's decoder keeps: recompress the kernel with a smaller window (zstd --long=25 or less), or use XZ or gzip",
                window >> 20,
                limit >> 20
            ),
            BzImageError::Output(e) => write!(f, "the decompressed kernel cannot be stored: {e}"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Whether `bytes` carries a Linux x86 setup header (`HdrS`).
pub fn is_bzimage(bytes: &[u8]) -> bool {
    bytes.get(HEADER..HEADER + 4) == Some(HDRS.as_slice())
}

/// The compressed payload of a bzImage.
pub fn payload(bytes: &[u8]) -> Result<Payload<'_>, BzImageError> {
    if !is_bzimage(bytes) {
        return Err(BzImageError::Truncated);
    }
    let version = u16_at(bytes, VERSION).ok_or(BzImageError::Truncated)?;
    if version < MIN_VERSION {
        return Err(BzImageError::OldProtocol(version));
    }
    let sects = match bytes.get(SETUP_SECTS).copied().ok_or(BzImageError::Truncated)? {
        0 => 4,
        n => u64::from(n),
    };
    let offset = u64::from(u32_at(bytes, PAYLOAD_OFFSET).ok_or(BzImageError::Truncated)?);
    let length = u64::from(u32_at(bytes, PAYLOAD_LENGTH).ok_or(BzImageError::Truncated)?);
    // Both at most 2^32 - 1 and the setup at most 256 sectors: no overflow in u64.
    let start = (sects + 1) * 512 + offset;
    let end = start + length;
    let outside = BzImageError::PayloadOutside { offset: start, length, file: bytes.len() };
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err(outside);
    };
    let whole = bytes.get(start..end).ok_or(outside.clone())?;
    // The stream, then its decompressed length (4 bytes).
    let split = whole.len().checked_sub(4).ok_or(outside)?;
    let (stream, tail) = whole.split_at(split);
    let len = u32::from_le_bytes(tail.try_into().map_err(|_| BzImageError::Truncated)?);
    let compression = if stream.starts_with(&XZ_MAGIC) {
        Compression::Xz
    } else if stream.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else if gzip::is_gzip(stream) {
        Compression::Gzip
    } else {
        let mut magic = [0u8; 4];
        for (m, b) in magic.iter_mut().zip(stream) {
            *m = *b;
        }
        return Err(BzImageError::UnknownCompression(magic));
    };
    Ok(Payload { compression, stream, len })
}

/// A zeroed buffer of `n` bytes, or [`BzImageError::OutOfMemory`].
fn buffer(n: usize) -> Result<Vec<u8>, BzImageError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| BzImageError::OutOfMemory(n))?;
    v.resize(n, 0);
    Ok(v)
}

/// Where the decompressed kernel goes, front to back: `put(at, bytes)` stores `bytes` at
/// offset `at` of the output (the x86 loader: a window of the domain's RAM). An error
/// ends the decompression with [`BzImageError::Output`].
pub type Sink<'s> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 's;

/// Hands the decoders' chunks to a [`Sink`], refusing any byte past the announced length.
struct Output<'s, 'f> {
    sink: &'s mut Sink<'f>,
    announced: u32,
    written: u64,
}

impl Output<'_, '_> {
    fn put(&mut self, chunk: &[u8]) -> Result<(), BzImageError> {
        let end = self.written.saturating_add(chunk.len() as u64);
        if end > u64::from(self.announced) {
            return Err(BzImageError::LengthMismatch { announced: self.announced, actual: end });
        }
        (self.sink)(self.written, chunk).map_err(BzImageError::Output)?;
        self.written = end;
        Ok(())
    }
}

/// Decompresses the payload (the kernel's ELF image) into `sink`, chunk by chunk, in
/// order; returns its length, which must be the one the trailer announces and at most
/// `limit` (checked before anything is decoded). XZ checks its CRC-32, Zstandard its
/// XXH64 (when the frame carries one), gzip its CRC-32 and length. Keel's heap holds only
/// the decoders' state: a 64 KiB chunk, XZ's dictionary (at most [`XZ_DICT`]), deflate's
/// 32 KiB window, Zstandard's window (at most [`ZSTD_MAX_WINDOW`]); never the kernel.
pub fn decompress_into(p: &Payload<'_>, limit: usize, sink: &mut Sink<'_>) -> Result<u64, BzImageError> {
    let len = usize::try_from(p.len).map_err(|_| BzImageError::TooLarge { len: p.len, limit })?;
    if len > limit {
        return Err(BzImageError::TooLarge { len: p.len, limit });
    }
    let mut out = Output { sink, announced: p.len, written: 0 };
    match p.compression {
        Compression::Xz => unxz(p.stream, len, &mut out)?,
        Compression::Zstd => unzstd(p.stream, len, &mut out)?,
        Compression::Gzip => {
            let mut failed = None;
            gzip::inflate(p.stream, |chunk| {
                out.put(chunk).map_err(|e| {
                    failed = Some(e);
                    ""
                })
            })
            .map_err(|e| match e {
                gzip::GzipError::Sink(_) => failed.take().unwrap_or(BzImageError::Output("the sink failed".into())),
                e => BzImageError::Gzip(e),
            })?;
        }
    }
    if out.written != u64::from(p.len) {
        return Err(BzImageError::LengthMismatch { announced: p.len, actual: out.written });
    }
    Ok(out.written)
}

/// The decompressed payload in a heap buffer of its size (host tools and tests; the
/// loader uses [`decompress_into`]).
pub fn decompress(p: &Payload<'_>, limit: usize) -> Result<Vec<u8>, BzImageError> {
    let mut v = Vec::new();
    let mut sink = |at: u64, chunk: &[u8]| {
        debug_assert_eq!(at, v.len() as u64);
        v.try_reserve(chunk.len()).map_err(|_| "no heap left".to_string())?;
        v.extend_from_slice(chunk);
        Ok(())
    };
    decompress_into(p, limit, &mut sink)?;
    Ok(v)
}

/// Decodes the XZ `stream`, `len` bytes announced, into `out` through a chunk buffer.
fn unxz(stream: &[u8], len: usize, out: &mut Output<'_, '_>) -> Result<(), BzImageError> {
    // Taken from the heap up front, fallibly, as large as a kernel's stream asks for (or
    // its output, if smaller); the decoder grows it only for a stream that names a larger
    // dictionary than its output, up to XZ_DICT.
    let dict = buffer(XZ_DICT.min(len.max(MIN_DICT)))?;
    let mut chunk = buffer(CHUNK)?;
    let mut dec: Box<XzDecoder<'static>> = XzDecoder::in_heap_with_alloc_dict(dict, XZ_DICT);
    let mut read = 0usize;
    loop {
        let input = stream.get(read..).unwrap_or_default();
        let r = dec.decode(input, &mut chunk).map_err(BzImageError::Xz)?;
        read = read.saturating_add(r.input_consumed());
        out.put(chunk.get(..r.output_produced()).unwrap_or_default())?;
        match r {
            XzNextBlockResult::EndOfStream(..) => return Ok(()),
            // All input is there and the chunk had room: no progress means it ends early.
            XzNextBlockResult::NeedMoreData(..) if !r.made_progress() => {
                return Err(BzImageError::Xz(xz4rust::XzError::CorruptedData))
            }
            XzNextBlockResult::NeedMoreData(..) => {}
        }
    }
}

/// The window a Zstandard frame header asks for (RFC 8878 §3.1.1.1), if it parses.
fn zstd_window(stream: &[u8]) -> Option<u64> {
    let fhd = *stream.get(4)?;
    if fhd & 0x20 != 0 {
        // Single segment: the window is the content size, which follows the dictionary id.
        let dict = [0usize, 1, 2, 4][usize::from(fhd & 3)];
        let (at, size) = (5 + dict, [1usize, 2, 4, 8][usize::from(fhd >> 6)]);
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(stream.get(at..at + size)?);
        let v = u64::from_le_bytes(b);
        return Some(if size == 2 { v + 256 } else { v });
    }
    let wd = *stream.get(5)?;
    let base = 1u64 << (10 + (wd >> 3));
    Some(base + (base / 8) * u64::from(wd & 7))
}

/// Decodes the Zstandard `stream` (one frame, as Linux's build makes), `len` bytes
/// announced, into `out` through a chunk buffer.
fn unzstd(stream: &[u8], len: usize, out: &mut Output<'_, '_>) -> Result<(), BzImageError> {
    let zstd = |e: ruzstd::decoding::errors::FrameDecoderError| BzImageError::Zstd(e.to_string());
    let window = zstd_window(stream).ok_or_else(|| BzImageError::Zstd("the frame header is truncated".into()))?;
    if window > ZSTD_MAX_WINDOW {
        return Err(BzImageError::ZstdWindow { window, limit: ZSTD_MAX_WINDOW });
    }
    // The decoder keeps the last `window` bytes it decoded in a ring buffer it takes (and
    // grows) without a way to fail: its capacity is the next power of two above the
    // window, plus one; it doubles if what it holds between two collections (at most the
    // output, or the window and a step) outgrows that. Refuse up front a frame whose
    // buffers the heap cannot hold, both at once as a doubling would.
    let window = usize::try_from(window).unwrap_or(usize::MAX);
    let cap = window.checked_next_power_of_two().unwrap_or(usize::MAX);
    let held = len.min(window.saturating_add(ZSTD_STEP + ZSTD_BLOCK));
    let first = buffer(cap.saturating_add(1))?;
    let second = if held > cap { Some(buffer(cap.saturating_mul(2).saturating_add(1))?) } else { None };
    drop((first, second));
    let mut chunk = buffer(CHUNK)?;
    let mut dec = FrameDecoder::new();
    let mut input = stream;
    dec.reset(&mut input).map_err(zstd)?;
    loop {
        let before = input.len();
        dec.decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(ZSTD_STEP)).map_err(zstd)?;
        let mut collected = 0;
        loop {
            if out.written.saturating_add(dec.can_collect() as u64) > u64::from(out.announced) {
                return Err(BzImageError::LengthMismatch {
                    announced: out.announced,
                    actual: out.written.saturating_add(dec.can_collect() as u64),
                });
            }
            let n = dec.read(&mut chunk).map_err(|e| BzImageError::Zstd(format!("{e:?}")))?;
            if n == 0 {
                break;
            }
            out.put(chunk.get(..n).unwrap_or_default())?;
            collected += n;
        }
        if dec.is_finished() && dec.can_collect() == 0 {
            break;
        }
        if input.len() == before && collected == 0 {
            return Err(BzImageError::Zstd("the frame ends early".into()));
        }
    }
    if !input.is_empty() {
        return Err(BzImageError::Zstd(format!("{} bytes after the frame", input.len())));
    }
    if let (Some(stored), Some(computed)) = (dec.get_checksum_from_data(), dec.get_calculated_checksum()) {
        if stored != computed {
            return Err(BzImageError::ZstdChecksum { stored, computed });
        }
    }
    Ok(())
}
