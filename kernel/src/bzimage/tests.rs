use super::*;
use alloc::vec;
use proptest::prelude::*;

/// `testdata/payload.xz` is `pattern()` compressed as Linux compresses kernels
/// (`xz --check=crc32 --x86 --lzma2=dict=64KiB`, a smaller dictionary than Linux's).
const PAYLOAD_XZ: &[u8] = include_bytes!("testdata/payload.xz");
/// `testdata/payload.zst` is `pattern()` compressed as Linux compresses kernels with
/// zstd (`zstd -19` from a pipe: no content size, an XXH64 checksum; Linux uses level 22).
const PAYLOAD_ZST: &[u8] = include_bytes!("testdata/payload.zst");

fn pattern() -> Vec<u8> {
    (0..200_000usize)
        .map(|i| {
            if i % 16 == 0 {
                0xe8
            } else if i % 3 != 0 {
                ((i * i) >> 7) as u8
            } else {
                (i >> 9) as u8
            }
        })
        .collect()
}

/// A bzImage (protocol 2.15, two setup sectors) around `stream`, with `len` appended.
fn bzimage(stream: &[u8], len: u32) -> Vec<u8> {
    let mut b = vec![0u8; 3 * 512];
    b[SETUP_SECTS] = 2;
    b[HEADER..HEADER + 4].copy_from_slice(HDRS);
    b[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x211] = 1; // loadflags: LOADED_HIGH
    let offset = 0x100u32;
    b.resize(3 * 512 + offset as usize, 0x90);
    b[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&offset.to_le_bytes());
    b[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&(stream.len() as u32 + 4).to_le_bytes());
    b.extend_from_slice(stream);
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut s = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    s.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    s.extend(crc32(data).to_le_bytes());
    s.extend((data.len() as u32).to_le_bytes());
    s
}

fn unpack(image: &[u8]) -> Result<Vec<u8>, BzImageError> {
    decompress(&payload(image)?, 1 << 20)
}

#[test]
fn an_xz_payload_with_the_x86_filter_decompresses() {
    let image = bzimage(PAYLOAD_XZ, 200_000);
    let p = payload(&image).unwrap();
    assert_eq!(p.compression, Compression::Xz);
    assert_eq!(p.len, 200_000);
    assert_eq!(p.stream, PAYLOAD_XZ);
    assert_eq!(decompress(&p, 1 << 20).unwrap(), pattern());
}

#[test]
fn a_zstd_payload_decompresses() {
    let image = bzimage(PAYLOAD_ZST, 200_000);
    let p = payload(&image).unwrap();
    assert_eq!(p.compression, Compression::Zstd);
    assert_eq!(decompress(&p, 1 << 20).unwrap(), pattern());
}

#[test]
fn a_truncated_damaged_or_padded_zstd_frame_is_refused() {
    for cut in [5, 100, PAYLOAD_ZST.len() / 2, PAYLOAD_ZST.len() - 5, PAYLOAD_ZST.len() - 1] {
        let r = unpack(&bzimage(&PAYLOAD_ZST[..cut], 200_000));
        assert!(matches!(r, Err(BzImageError::Zstd(_))), "cut at {cut}: {r:?}");
    }
    // The last byte of the checksum: only the checksum notices.
    let mut s = PAYLOAD_ZST.to_vec();
    *s.last_mut().unwrap() ^= 1;
    assert!(matches!(unpack(&bzimage(&s, 200_000)), Err(BzImageError::ZstdChecksum { .. })));
    for at in [20, 5000, PAYLOAD_ZST.len() / 2] {
        let mut s = PAYLOAD_ZST.to_vec();
        s[at] ^= 0x10;
        assert!(unpack(&bzimage(&s, 200_000)).is_err(), "flip at {at}");
    }
    let mut padded = PAYLOAD_ZST.to_vec();
    padded.extend_from_slice(&[0; 8]);
    assert!(matches!(unpack(&bzimage(&padded, 200_000)), Err(BzImageError::Zstd(_))));
}

#[test]
fn a_zstd_frame_longer_or_shorter_than_announced_is_refused() {
    assert!(matches!(unpack(&bzimage(PAYLOAD_ZST, 199_999)), Err(BzImageError::LengthMismatch { .. })));
    assert!(matches!(unpack(&bzimage(PAYLOAD_ZST, 1000)), Err(BzImageError::LengthMismatch { .. })));
    assert!(matches!(unpack(&bzimage(PAYLOAD_ZST, 200_001)), Err(BzImageError::LengthMismatch { .. })));
}

#[test]
fn a_gzip_payload_decompresses() {
    let data = pattern();
    let image = bzimage(&gzip(&data), data.len() as u32);
    assert_eq!(payload(&image).unwrap().compression, Compression::Gzip);
    assert_eq!(unpack(&image).unwrap(), data);
}

#[test]
fn headers_that_are_not_bzimages_are_refused() {
    assert!(!is_bzimage(b"\x7fELF"));
    assert_eq!(payload(&[0u8; 0x300]), Err(BzImageError::Truncated));
    let good = bzimage(PAYLOAD_XZ, 200_000);
    assert_eq!(payload(&good[..0x204]), Err(BzImageError::Truncated));
    assert_eq!(payload(&good[..0x24a]), Err(BzImageError::Truncated));
    let mut old = good.clone();
    old[VERSION..VERSION + 2].copy_from_slice(&0x0206u16.to_le_bytes());
    assert_eq!(payload(&old), Err(BzImageError::OldProtocol(0x0206)));
    let mut lz4 = bzimage(b"\x02\x21\x4c\x18 and the rest", 100);
    assert!(matches!(payload(&lz4), Err(BzImageError::UnknownCompression([2, 0x21, 0x4c, 0x18]))));
    lz4[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(payload(&lz4), Err(BzImageError::PayloadOutside { .. })));
}

#[test]
fn a_truncated_file_is_refused_by_its_payload_bounds() {
    let good = bzimage(PAYLOAD_XZ, 200_000);
    for cut in [good.len() - 100, 3 * 512 + 0x100 + 10, 3 * 512 + 1] {
        assert!(matches!(payload(&good[..cut]), Err(BzImageError::PayloadOutside { .. })), "cut at {cut}");
    }
    let mut huge = good.clone();
    huge[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    huge[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(payload(&huge), Err(BzImageError::PayloadOutside { .. })));
}

#[test]
fn a_truncated_or_damaged_stream_is_refused() {
    // Cut inside the stream, with the payload length adjusted so the header is right.
    for cut in [13, 100, PAYLOAD_XZ.len() / 2, PAYLOAD_XZ.len() - 13, PAYLOAD_XZ.len() - 1] {
        let r = unpack(&bzimage(&PAYLOAD_XZ[..cut], 200_000));
        assert!(matches!(r, Err(BzImageError::Xz(_))), "cut at {cut}: {r:?}");
    }
    // A flipped byte in the compressed data: LZMA decoding or the CRC-32 notices.
    for at in [40, 5000, PAYLOAD_XZ.len() - 40] {
        let mut s = PAYLOAD_XZ.to_vec();
        s[at] ^= 0x10;
        assert!(unpack(&bzimage(&s, 200_000)).is_err(), "flip at {at}");
    }
    let data = pattern();
    let mut gz = gzip(&data);
    let n = gz.len();
    gz[n / 2] ^= 0x55;
    assert!(matches!(unpack(&bzimage(&gz, data.len() as u32)), Err(BzImageError::Gzip(_))));
}

#[test]
fn a_wrong_announced_length_is_refused() {
    assert!(matches!(unpack(&bzimage(PAYLOAD_XZ, 199_999)), Err(BzImageError::LengthMismatch { .. })));
    assert!(matches!(unpack(&bzimage(PAYLOAD_XZ, 200_001)), Err(BzImageError::LengthMismatch { .. })));
    let data = pattern();
    let gz = gzip(&data);
    assert!(matches!(unpack(&bzimage(&gz, 1000)), Err(BzImageError::LengthMismatch { .. })));
    assert!(matches!(unpack(&bzimage(&gz, 300_000)), Err(BzImageError::LengthMismatch { .. })));
}

#[test]
fn the_limit_is_checked_before_decompressing() {
    let image = bzimage(PAYLOAD_XZ, 200_000);
    assert_eq!(
        decompress(&payload(&image).unwrap(), 100_000),
        Err(BzImageError::TooLarge { len: 200_000, limit: 100_000 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn damage_anywhere_never_panics(at in 0..PAYLOAD_XZ.len(), byte in any::<u8>(), cut in 0..PAYLOAD_XZ.len()) {
        let mut s = PAYLOAD_XZ.to_vec();
        s[at] = byte;
        let r = unpack(&bzimage(&s, 200_000));
        if let Ok(out) = r {
            prop_assert_eq!(out, pattern());
        }
        prop_assert!(unpack(&bzimage(&PAYLOAD_XZ[..cut], 200_000)).is_err());
    }

    #[test]
    fn zstd_damage_anywhere_never_panics(at in 0..PAYLOAD_ZST.len(), byte in any::<u8>(), cut in 0..PAYLOAD_ZST.len()) {
        let mut s = PAYLOAD_ZST.to_vec();
        s[at] = byte;
        if let Ok(out) = unpack(&bzimage(&s, 200_000)) {
            prop_assert_eq!(out, pattern());
        }
        prop_assert!(unpack(&bzimage(&PAYLOAD_ZST[..cut], 200_000)).is_err());
    }

    #[test]
    fn random_headers_never_panic(head in proptest::collection::vec(any::<u8>(), 0..0x400), len in any::<u32>()) {
        let mut image = bzimage(PAYLOAD_XZ, len);
        image[0x1f0..0x1f0 + head.len().min(0x80)].copy_from_slice(&head[..head.len().min(0x80)]);
        let _ = unpack(&image);
        let _ = unpack(&head);
    }
}

/// Decompresses into a sink that holds `room` bytes, as the loader's guest window does.
fn into_window(image: &[u8], room: usize) -> (Result<u64, BzImageError>, Vec<u8>) {
    let mut window = vec![0u8; room];
    let mut sink = |at: u64, chunk: &[u8]| {
        let at = at as usize;
        let end = at + chunk.len();
        window.get_mut(at..end).ok_or_else(|| format!("{end} bytes do not fit in {room}"))?.copy_from_slice(chunk);
        Ok(())
    };
    let r = decompress_into(&payload(image).unwrap(), 1 << 20, &mut sink);
    (r, window)
}

#[test]
fn every_compression_streams_into_a_window_in_order() {
    for stream in [PAYLOAD_XZ.to_vec(), PAYLOAD_ZST.to_vec(), gzip(&pattern())] {
        let (r, window) = into_window(&bzimage(&stream, 200_000), 200_000);
        assert_eq!(r, Ok(200_000));
        assert_eq!(window, pattern());
    }
}

#[test]
fn output_the_window_cannot_hold_is_refused_by_the_sink() {
    for stream in [PAYLOAD_XZ.to_vec(), PAYLOAD_ZST.to_vec(), gzip(&pattern())] {
        let (r, _) = into_window(&bzimage(&stream, 200_000), 150_000);
        assert!(matches!(r, Err(BzImageError::Output(ref e)) if e.contains("do not fit")), "{r:?}");
    }
}

#[test]
fn a_lying_length_stops_the_output_at_the_announced_size() {
    for stream in [PAYLOAD_XZ.to_vec(), PAYLOAD_ZST.to_vec(), gzip(&pattern())] {
        // The window is as large as the real output, but only 100 000 bytes are announced:
        // nothing past them reaches the sink.
        let (r, window) = into_window(&bzimage(&stream, 100_000), 200_000);
        assert!(matches!(r, Err(BzImageError::LengthMismatch { announced: 100_000, .. })), "{r:?}");
        assert!(window[100_000..].iter().all(|&b| b == 0));
    }
}

#[test]
fn a_zstd_frame_with_a_larger_window_than_keel_keeps_is_refused() {
    // Linux's `zstd -22 --ultra`: no content size, window descriptor 0x88 (128 MiB).
    let mut frame = PAYLOAD_ZST.to_vec();
    assert_eq!(frame[4] & 0x20, 0, "the test frame has a window descriptor");
    frame[5] = 0x88;
    let r = unpack(&bzimage(&frame, 200_000));
    assert_eq!(r, Err(BzImageError::ZstdWindow { window: 128 << 20, limit: ZSTD_MAX_WINDOW }));
    assert!(r.unwrap_err().to_string().contains("128 MiB window"));
}
