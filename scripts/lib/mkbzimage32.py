#!/usr/bin/env python3
"""Writes a 32-bit bzImage without Xen PVH support, made from a real (64-bit) one.

    mkbzimage32.py VMLINUZ OUT

Debian ships no 32-bit kernel for amd64 (its i386 `686` flavour, the one without PAE,
has no Xen support at all), so the test stands one in: what such a kernel looks like to
a PVH loader. OUT keeps VMLINUZ's real-mode setup and its decompressor code (the
setup header says boot protocol 2.15), but
  - `xloadflags` (offset 0x236) loses XLF_KERNEL_64 and XLF_CAN_BE_LOADED_ABOVE_4G, as a
    kernel built for i386 has neither;
  - its payload (`payload_offset`, `payload_length`) is a gzip stream, followed by its
    decompressed length, of a 32-bit ELF executable for EM_386 (ELFCLASS32) with one
    loadable segment at 16 MiB and no Xen note: no XEN_ELFNOTE_PHYS32_ENTRY.
A PVH loader must refuse it by name (Keel: "not a PVH kernel ... 32-bit"), not crash.
"""
import gzip, struct, sys

SETUP_SECTS, XLOADFLAGS, PAYLOAD_OFFSET, PAYLOAD_LENGTH = 0x1F1, 0x236, 0x248, 0x24C
XLF_KERNEL_64, XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 0, 1 << 1
EM_386, PT_LOAD = 3, 1
LOAD_AT = 16 << 20


def elf32():
    """An i386 ELF executable: one PT_LOAD of 4 KiB of `hlt` at LOAD_AT, entered there."""
    ehsize, phentsize = 52, 32
    body = b"\xf4" * 4096
    offset = ehsize + phentsize
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)  # ELFCLASS32, little-endian, version 1
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, EM_386, 1, LOAD_AT, ehsize, 0, 0, ehsize, phentsize, 1, 0, 0, 0)
    phdr = struct.pack("<IIIIIIII", PT_LOAD, offset, LOAD_AT, LOAD_AT, len(body), len(body), 5, 0x1000)
    return header + phdr + body


def main():
    src, out = sys.argv[1], sys.argv[2]
    b = bytearray(open(src, "rb").read())
    if b[0x202:0x206] != b"HdrS":
        sys.exit(f"mkbzimage32: {src} is not a bzImage (no HdrS)")
    sects = b[SETUP_SECTS] or 4
    start = (sects + 1) * 512 + struct.unpack_from("<I", b, PAYLOAD_OFFSET)[0]
    image = elf32()
    payload = gzip.compress(image, mtime=0) + struct.pack("<I", len(image))
    flags = struct.unpack_from("<H", b, XLOADFLAGS)[0] & ~(XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G)
    struct.pack_into("<H", b, XLOADFLAGS, flags)
    struct.pack_into("<I", b, PAYLOAD_LENGTH, len(payload))
    with open(out, "wb") as f:
        f.write(bytes(b[:start]) + payload)


if __name__ == "__main__":
    main()
