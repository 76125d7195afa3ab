#!/usr/bin/env python3
"""Writes a Linux x86 bzImage's compressed payload to OUT, without the 4-byte
decompressed length that follows it, and prints that length: the stream the setup
header's payload_offset and payload_length name (boot protocol 2.08+,
Documentation/arch/x86/boot.rst).
    scripts/lib/bzimage_payload.py BZIMAGE OUT"""
import struct
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    name = sys.argv[1]
    with open(name, "rb") as f:
        data = f.read()
    if data[0x202:0x206] != b"HdrS":
        sys.exit(f"{name}: no setup header (HdrS): not a bzImage")
    (version,) = struct.unpack_from("<H", data, 0x206)
    if version < 0x208:
        sys.exit(f"{name}: boot protocol {version >> 8}.{version & 0xff:02} has no payload fields")
    sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (sects + 1) * 512 + offset
    if length < 4 or start + length > len(data):
        sys.exit(f"{name}: the payload at {start:#x} of {length:#x} bytes lies outside the file: truncated")
    payload = data[start : start + length]
    with open(sys.argv[2], "wb") as f:
        f.write(payload[:-4])
    print(struct.unpack("<I", payload[-4:])[0])


main()
