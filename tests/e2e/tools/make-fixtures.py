#!/usr/bin/env python3
"""make-fixtures.py: writes small datasets for the end-to-end tests (stdlib only).

  make-fixtures.py imagefolder DIR N      N PNG images per class in DIR/{cat,dog,fox}/
  make-fixtures.py cifar DIR N            DIR/cifar-10-binary.tar.gz with N records per batch
  make-fixtures.py idx DIR N [--truncate] DIR/imgs.gz + DIR/labels.gz (N 4x4 images)
  make-fixtures.py jsonlist DIR           DIR/list.jsonl over DIR's imagefolder
"""
import gzip
import io
import json
import os
import struct
import sys
import tarfile
import zlib


def png(width, height, seed):
    """A small greyscale PNG whose pixels depend on seed."""
    raw = b"".join(b"\x00" + bytes((seed * 7 + x * 13 + y * 29) % 256 for x in range(width))
                   for y in range(height))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def imagefolder(root, n):
    for c, cls in enumerate(["cat", "dog", "fox"]):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for i in range(n):
            with open(os.path.join(root, cls, "%03d.png" % i), "wb") as f:
                f.write(png(8, 6, c * 100 + i))


def cifar(root, n):
    os.makedirs(root, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("batches.meta.txt", "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog",
                                          "frog", "horse", "ship", "truck"]).encode() + b"\n")
        for b, name in enumerate(["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]):
            recs = b"".join(bytes([(b + i) % 10]) + bytes((b * 31 + i + p) % 256 for p in range(3072))
                            for i in range(n))
            add(name, recs)
    with open(os.path.join(root, "cifar-10-binary.tar.gz"), "wb") as f:
        f.write(buf.getvalue())


def idx(root, n, truncate):
    os.makedirs(root, exist_ok=True)
    images = struct.pack(">IIII", 2051, n, 4, 4) + bytes(i % 256 for i in range(n * 16))
    labels = struct.pack(">II", 2049, n) + bytes(i % 3 for i in range(n))
    if truncate:
        images = images[:-5]
    with gzip.open(os.path.join(root, "imgs.gz"), "wb") as f:
        f.write(images)
    with gzip.open(os.path.join(root, "labels.gz"), "wb") as f:
        f.write(labels)


def jsonlist(root):
    with open(os.path.join(root, "list.jsonl"), "w") as out:
        for cls in sorted(os.listdir(root)):
            d = os.path.join(root, cls)
            if os.path.isdir(d):
                for name in sorted(os.listdir(d)):
                    out.write(json.dumps({"url": "file://" + os.path.join(d, name), "label": cls}) + "\n")


if __name__ == "__main__":
    kind, root = sys.argv[1], sys.argv[2]
    if kind == "imagefolder":
        imagefolder(root, int(sys.argv[3]))
    elif kind == "cifar":
        cifar(root, int(sys.argv[3]))
    elif kind == "idx":
        idx(root, int(sys.argv[3]), "--truncate" in sys.argv)
    elif kind == "jsonlist":
        jsonlist(root)
