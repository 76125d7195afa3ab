#!/usr/bin/env python3
"""Writes a cpio archive in the "newc" format Linux unpacks as initramfs, gzip-compressed
if OUT ends in .gz (else as is: Linux unpacks an uncompressed archive followed by a
compressed one, as it does an early microcode archive).

    mkcpio.py OUT[.gz] ENTRY...

ENTRY is one of
    dir:/PATH                      a directory (mode 755)
    file:/PATH:HOST_FILE:MODE      a regular file copied from HOST_FILE, MODE in octal
    link:/PATH:TARGET              a symbolic link
    char:/PATH:MAJOR:MINOR         a character device node (mode 600)
Every entry belongs to root, with mtime 0, so the archive is the same for the same
inputs. Needs no root rights: device nodes exist only inside the archive.
"""
import gzip
import stat
import sys


def header(ino, mode, size, name, rdev=(0, 0)):
    namez = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], len(namez), 0]
    head = b"070701" + b"".join(b"%08x" % f for f in fields) + namez
    return head + b"\0" * (-len(head) % 4)


def pad(data):
    return data + b"\0" * (-len(data) % 4)


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: mkcpio.py OUT.gz ENTRY...")
    out = bytearray()
    for ino, entry in enumerate(argv[2:], start=1):
        kind, _, rest = entry.partition(":")
        parts = rest.split(":")
        path = parts[0].lstrip("/")
        if kind == "dir":
            out += header(ino, stat.S_IFDIR | 0o755, 0, path)
        elif kind == "file":
            with open(parts[1], "rb") as f:
                data = f.read()
            out += header(ino, stat.S_IFREG | int(parts[2], 8), len(data), path) + pad(data)
        elif kind == "link":
            target = parts[1].encode()
            out += header(ino, stat.S_IFLNK | 0o777, len(target), path) + pad(target)
        elif kind == "char":
            out += header(ino, stat.S_IFCHR | 0o600, 0, path, (int(parts[1]), int(parts[2])))
        else:
            sys.exit(f"mkcpio.py: unknown entry kind in '{entry}'")
    out += header(0, 0, 0, "TRAILER!!!")
    with open(argv[1], "wb") as f:
        f.write(gzip.compress(bytes(out), mtime=0) if argv[1].endswith(".gz") else bytes(out))


if __name__ == "__main__":
    main(sys.argv)
