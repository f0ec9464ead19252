#!/usr/bin/env python3
"""test_sdk_py.py: the Python SDK (src/sdk/ava_sdk.py): exact lines, values that read back
exactly, refused arguments, threads, a full pipe and the ava.dropped point, a vanished
supervisor, the one warning outside ava, fork, the RecordIO reader on a .rec written here
byte by byte, and the set reader (raw and PNG payloads, PNGs filtered here per the spec). Run with python3; prints "N passed, N failed" and exits non-zero on failure.
The module is found through AVA_SDK_PY_DIR, else ../../src/sdk from this file."""

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SDK_DIR = os.environ.get("AVA_SDK_PY_DIR") or os.path.join(
    os.path.dirname(os.path.realpath(__file__)), "..", "..", "src", "sdk")
sys.path.insert(0, SDK_DIR)
import ava_sdk  # noqa: E402

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ from Python 3.10 on


# ---- helpers ----

class Pipe:
    """A pipe set as AVA_METRICS_FD (read end non-blocking), the SDK reset to read it."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.environ["AVA_METRICS_FD"] = str(self.w)
        ava_sdk._reset_for_tests()

    def read(self):
        """What the pipe holds now, as text."""
        out = b""
        while True:
            try:
                chunk = os.read(self.r, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode()

    def close(self):
        ava_sdk._reset_for_tests()  # before the numbers can be reused
        os.environ.pop("AVA_METRICS_FD", None)
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


def parse(line):
    """Splits one line into (name, tags dict, value text, step, ts); asserts its shape."""
    head, fields, ts = line.split(" ")
    name, *tags = head.split(",")
    tags = dict(t.split("=", 1) for t in tags)
    value, step = fields.split(",")
    assert value.startswith("value=") and step.startswith("step=") and step.endswith("i"), line
    return name, tags, value[6:], int(step[5:-1]), int(ts)


def bits(x):
    return struct.pack("<d", x)


def capture_stderr(fn):
    """Runs fn with sys.stderr captured; returns what was written."""
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        fn()
    return buf.getvalue()


# ---- reporting ----

def test_exact_lines():
    p = Pipe()
    try:
        before = time.time_ns()
        assert ava_sdk.report("accuracy", 1200, 0.912, phase="val", epoch=3) is True
        assert ava_sdk.report("loss", 5, 0.31)
        assert ava_sdk.report("loss", 6, 0.25, phase="", epoch=None)
        assert ava_sdk.report("lr", 0, 1e-3, phase="train")
        assert ava_sdk.report("train/top-5.acc_x", 7, 3, epoch=0)
        assert ava_sdk.report("n", 2**63 - 1, -2.5, phase="a", epoch=2**63 - 1)
        after = time.time_ns()
        want = [
            "accuracy,phase=val,epoch=3 value=0.912,step=1200i ",
            "loss value=0.31,step=5i ",
            "loss value=0.25,step=6i ",
            "lr,phase=train value=0.001,step=0i ",
            "train/top-5.acc_x,epoch=0 value=3.0,step=7i ",
            "n,phase=a,epoch=9223372036854775807 value=-2.5,step=9223372036854775807i ",
        ]
        lines = p.read().split("\n")
        assert lines[-1] == "" and len(lines) == len(want) + 1, lines
        for got, w in zip(lines, want):
            assert got.startswith(w), (got, w)
            ts = got[len(w):]
            assert len(ts) == 19 and ts.isdigit() and before <= int(ts) <= after, got
        assert ava_sdk.dropped_total() == 0
        assert ava_sdk.enabled()
        assert ava_sdk.flush()
    finally:
        p.close()


TRICKY = [0.1, 0.2, 0.3, 0.30000000000000004, 1e-300, 123456789.123456789, 5e-324,
          2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, 9007199254740993.0, 1e16,
          1e23, 1e-5, -0.0, 0.0, 0.912, float(struct.unpack("<f", struct.pack("<f", 0.1))[0])]


def test_values_round_trip():
    p = Pipe()
    try:
        for i, v in enumerate(TRICKY):
            assert ava_sdk.report("v", i, v)
        lines = p.read().splitlines()
        assert len(lines) == len(TRICKY)
        for i, line in enumerate(lines):
            _, _, text, step, _ = parse(line)
            assert step == i
            assert bits(float(text)) == bits(TRICKY[i]), (TRICKY[i], text)
        # numbers that are not floats: ints, objects with __float__ / __index__
        class F:
            def __float__(self):
                return 0.75

        class I:
            def __index__(self):
                return 42

        assert ava_sdk.report("x", I(), F(), epoch=I())
        name, tags, text, step, _ = parse(p.read().strip())
        assert (name, tags, text, step) == ("x", {"epoch": "42"}, "0.75", 42)
    finally:
        p.close()


def test_invalid_refused():
    p = Pipe()
    try:
        bad = [
            (("", 1, 1.0), {}), (("a b", 1, 1.0), {}), (("a,b", 1, 1.0), {}),
            (("a=b", 1, 1.0), {}), (("café", 1, 1.0), {}), (("a" * 65, 1, 1.0), {}),
            ((None, 1, 1.0), {}), ((b"loss", 1, 1.0), {}), (("a\nb", 1, 1.0), {}),
            (("m", -1, 1.0), {}), (("m", 1.5, 1.0), {}), (("m", "1", 1.0), {}),
            (("m", 1, float("nan")), {}), (("m", 1, float("inf")), {}),
            (("m", 1, -float("inf")), {}), (("m", 1, "0.5"), {}), (("m", 1, None), {}),
            (("m", 1, 1.0), {"phase": "VAL"}), (("m", 1, 1.0), {"phase": "v-l"}),
            (("m", 1, 1.0), {"phase": "seventeen_chars_x"}), (("m", 1, 1.0), {"phase": 3}),
            (("m", 1, 1.0), {"phase": "val,epoch=3"}), (("m", 1, 1.0), {"epoch": -1}),
            (("m", 1, 1.0), {"epoch": 1.5}), (("m", 1, 1.0), {"epoch": "3"}),
        ]
        for args, kwargs in bad:
            try:
                ava_sdk.report(*args, **kwargs)
            except (TypeError, ValueError):
                continue
            raise AssertionError("accepted %r %r" % (args, kwargs))
        assert p.read() == ""
        # the limits themselves are fine
        assert ava_sdk.report("a" * 64, 0, 0, phase="sixteen_chars_x1")
        assert len(p.read().splitlines()) == 1
        assert ava_sdk.dropped_total() == 0
    finally:
        p.close()


def test_threads_whole_lines():
    p = Pipe()
    threads_n, per_thread, rounds = 4, 10000, 10
    try:
        import fcntl
        try:
            fcntl.fcntl(p.w, F_SETPIPE_SZ, 1 << 20)  # room for a round while the GIL is busy
        except OSError:
            pass
        got, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                text = p.read()
                if text:
                    got.append(text)
                else:
                    time.sleep(0.0005)

        def reporter(tid, start):
            for s in range(start, start + per_thread // rounds):
                ava_sdk.report("t%d" % tid, s, s * 0.5 + tid,
                               phase="val" if tid % 2 else "train", epoch=7 if tid % 2 else None)

        rt = threading.Thread(target=reader)
        rt.start()
        for r in range(rounds):
            ts = [threading.Thread(target=reporter, args=(i, r * per_thread // rounds))
                  for i in range(threads_n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        time.sleep(0.05)
        stop.set()
        rt.join()
        text = "".join(got) + p.read()
        lines = text.split("\n")
        assert lines[-1] == ""
        lines = lines[:-1]
        assert ava_sdk.dropped_total() == 0, ava_sdk.dropped_total()
        assert len(lines) == threads_n * per_thread, len(lines)
        seen = set()
        for line in lines:
            name, tags, value, step, _ = parse(line)
            tid = int(name[1:])
            assert name == "t%d" % tid and 0 <= tid < threads_n, line
            assert (tid, step) not in seen, line
            seen.add((tid, step))
            assert float(value) == step * 0.5 + tid, line
            want = {"phase": "val", "epoch": "7"} if tid % 2 else {"phase": "train"}
            assert tags == want, line
    finally:
        p.close()


def fill_pipe(fd):
    """Fills the pipe with "junk" lines until it would block."""
    os.set_blocking(fd, False)
    while True:
        try:
            os.write(fd, b"junk\n")
        except BlockingIOError:
            return


def test_full_pipe_drops():
    p = Pipe()
    try:
        fill_pipe(p.w)
        t0 = time.monotonic()
        for i in range(10000):
            assert ava_sdk.report("loss", i, 1.0 / (i + 1), phase="train") is False
        took = time.monotonic() - t0
        assert took < 1.0, "10,000 reports into a full pipe took %.3f s" % took
        assert ava_sdk.dropped_total() == 10000
        junk = p.read()
        assert set(junk.splitlines()) == {"junk"}, junk[:100]
        assert ava_sdk.report("loss", 20000, 0.5, phase="train") is True
        lines = p.read().splitlines()
        assert len(lines) == 2, lines
        assert parse(lines[0])[:4] == ("ava.dropped", {}, "10000.0", 20000), lines[0]
        assert parse(lines[1])[:4] == ("loss", {"phase": "train"}, "0.5", 20000), lines[1]
        # counted once: the next point comes alone
        assert ava_sdk.report("loss", 20001, 0.5)
        assert len(p.read().splitlines()) == 1
        assert ava_sdk.dropped_total() == 10000
    finally:
        p.close()


def test_supervisor_gone():
    p = Pipe()
    try:
        os.close(p.r)

        def run():
            for i in range(20):
                assert ava_sdk.report("loss", i, 0.5) is False

        err = capture_stderr(run)
        assert err == ("ava: the metrics pipe (AVA_METRICS_FD) is closed: metrics are no "
                       "longer reported\n"), err
        assert ava_sdk.dropped_total() == 20
        assert not ava_sdk.enabled()
    finally:
        p.close()


def test_supervisor_gone_sigpipe_default():
    """With SIGPIPE back to its default action a write to a closed pipe must not kill us."""
    code = (
        "import os, signal, sys\n"
        "sys.path.insert(0, %r)\n"
        "import ava_sdk\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        "r, w = os.pipe(); os.close(r)\n"
        "os.environ['AVA_METRICS_FD'] = str(w)\n"
        "assert ava_sdk.report('loss', 1, 0.5) is False\n"
        "assert signal.SIGPIPE not in signal.sigpending()\n"
        "print('alive', ava_sdk.dropped_total())\n" % SDK_DIR)
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert out.stdout == b"alive 1\n", out.stdout
    assert out.stderr.count(b"\n") == 1 and b"is closed" in out.stderr, out.stderr


def test_outside_ava_one_warning():
    saved = os.environ.pop("AVA_METRICS_FD", None)
    try:
        def run():
            for i in range(3):
                assert ava_sdk.report("loss", i, 0.5, phase="train") is False
            assert ava_sdk.flush()
            assert not ava_sdk.enabled()
            try:
                ava_sdk.report("bad name", 1, 0.5)
            except ValueError:
                pass
            else:
                raise AssertionError("bad name accepted outside ava")

        ava_sdk._reset_for_tests()
        err = capture_stderr(run)
        assert err == "ava: AVA_METRICS_FD is not set: metrics are not reported\n", err
        for bad in ("abc", "999", "-1", "3x", "99999999999999999999"):
            os.environ["AVA_METRICS_FD"] = bad
            ava_sdk._reset_for_tests()
            err = capture_stderr(run)
            assert err == ("ava: AVA_METRICS_FD=%s is not a file descriptor open for writing: "
                           "metrics are not reported\n" % bad), err
        ro = os.open(os.devnull, os.O_RDONLY)
        try:
            os.environ["AVA_METRICS_FD"] = str(ro)
            ava_sdk._reset_for_tests()
            err = capture_stderr(run)
            assert "is not a file descriptor open for writing" in err and err.count("\n") == 1
        finally:
            os.close(ro)
        assert ava_sdk.dropped_total() == 0
    finally:
        os.environ.pop("AVA_METRICS_FD", None)
        if saved is not None:
            os.environ["AVA_METRICS_FD"] = saved
        ava_sdk._reset_for_tests()


def test_fork_child_counts_its_own():
    p = Pipe()
    try:
        fill_pipe(p.w)
        for i in range(5):
            ava_sdk.report("loss", i, 0.5)
        assert ava_sdk.dropped_total() == 5
        pid = os.fork()
        if pid == 0:
            os._exit(0 if ava_sdk.dropped_total() == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert ava_sdk.dropped_total() == 5
    finally:
        p.close()


# ---- RecordIO ----

MAGIC = b"\x0a\x23\xd7\xce"  # 0xCED7230A, little-endian, as on disk


def part(cflag, data):
    """One record part: magic, lrec = cflag << 29 | len, data, zero padding to 4 bytes."""
    return MAGIC + struct.pack("<I", cflag << 29 | len(data)) + data + b"\0" * (-len(data) % 4)


def irheader(label, idx, flag=0):
    return struct.pack("<IfQQ", flag, label, idx, 0)


def write_rec(path, blob):
    with open(path, "wb") as f:
        f.write(blob)


def test_recordio():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tiny.rec")
        # record 1, spelled out byte by byte: label 3.0, id 7, payload "hello" (29 bytes)
        rec1 = bytes.fromhex(
            "0a23d7ce" "1d000000"  # magic, lrec = 0 << 29 | 29
            "00000000" "00004040"  # flag 0, label 3.0f
            "0700000000000000" "0000000000000000"  # id 7, id2 0
            "68656c6c6f" "000000")  # "hello", 3 bytes of padding
        # record 2: the magic word at an aligned offset (24) of the data is escaped by
        # splitting: first part = the header (cflag 1), last part = what follows it (cflag 3)
        rec2 = part(1, irheader(1.5, 8)) + part(3, b"tail")
        # record 3: two magic words, so three parts (1, 2, 3), one of them empty
        rec3 = part(1, irheader(2.0, 9) + b"abcd") + part(2, b"") + part(3, b"xyz")
        # record 4: two labels (flag 2) before the payload
        rec4 = part(0, irheader(0.0, 10, flag=2) + struct.pack("<2f", 1.0, 2.0) + b"img")
        # record 5: no payload
        rec5 = part(0, irheader(4.0, 11))
        write_rec(path, rec1 + rec2 + rec3 + rec4 + rec5)
        with ava_sdk.RecordIO(path) as rec:
            got = list(rec)
        want = [
            (3.0, 7, b"hello"),
            (1.5, 8, MAGIC + b"tail"),
            (2.0, 9, b"abcd" + MAGIC + MAGIC + b"xyz"),
            ((1.0, 2.0), 10, b"img"),
            (4.0, 11, b""),
        ]
        assert got == want, got
        # raw records and offsets (what an .idx lists)
        with ava_sdk.RecordIO(path) as rec:
            offsets = []
            while True:
                offsets.append(rec.tell())
                if rec.read() is None:
                    break
            assert offsets[:5] == [0, len(rec1), len(rec1 + rec2), len(rec1 + rec2 + rec3),
                                   len(rec1 + rec2 + rec3 + rec4)], offsets
            rec.seek(offsets[3])
            assert ava_sdk.RecordIO.unpack(rec.read())[1] == 10
        # corrupt files are refused with the offset
        corrupt = {
            "bad magic": rec1 + b"\xff" * 8,
            "truncated header": rec1 + MAGIC + b"\x01",
            "truncated data": rec1[:-6],
            "middle part first": rec1 + part(2, b"abcd"),
            "no last part": rec1 + part(1, irheader(1.0, 1)),
            "whole record inside a split": part(1, irheader(1.0, 1)) + rec1,
        }
        for what, blob in corrupt.items():
            write_rec(path, blob)
            try:
                with ava_sdk.RecordIO(path) as rec:
                    list(rec)
            except ava_sdk.RecordIOError as e:
                assert "byte" in str(e), (what, e)
                continue
            raise AssertionError("%s: accepted" % what)
        write_rec(path, part(0, b"short"))
        try:
            list(ava_sdk.RecordIO(path))
        except ava_sdk.RecordIOError:
            pass
        else:
            raise AssertionError("a record shorter than its header was accepted")


# ---- formatted sets: decode_image and load_set ----


def png(width, height, ctype, pixels, filters, interlace=0, depth=8):
    """A PNG written here: each row filtered with the next of `filters` (0 None, 1 Sub, 2 Up,
    3 Average, 4 Paeth), as the PNG specification defines them, then zlib-compressed."""
    import zlib
    spp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    stride, raw, prev = width * spp, b"", bytes(width * spp)
    for y in range(height):
        row = pixels[y * stride:(y + 1) * stride]
        f = filters[y % len(filters)]
        out = bytearray()
        for i in range(stride):
            a = row[i - spp] if i >= spp else 0
            b, c = prev[i], prev[i - spp] if i >= spp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = [0, a, b, (a + b) // 2, a if pa <= pb and pa <= pc else b if pb <= pc else c][f]
            out.append((row[i] - pred) & 255)
        raw += bytes([f]) + bytes(out)
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    head = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace)
    data = zlib.compress(raw)
    # IDAT split in two chunks, as encoders may do
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", data[:5]) +
            chunk(b"IDAT", data[5:]) + chunk(b"IEND", b""))


def test_decode_image():
    import random
    rnd = random.Random(3)
    grey = bytes(rnd.randrange(256) for _ in range(7 * 5))
    for filters in ([0], [1], [2], [3], [4], [0, 1, 2, 3, 4]):
        got = ava_sdk.decode_image(png(7, 5, 0, grey, filters))
        assert got == (1, 5, 7, grey), (filters, got)
    rgb = bytes(rnd.randrange(256) for _ in range(4 * 6 * 3))
    assert ava_sdk.decode_image(png(4, 6, 2, rgb, [4, 3, 1])) == (3, 6, 4, rgb)
    # alpha is dropped: RGBA -> RGB, grey+alpha -> grey
    rgba = bytes(rnd.randrange(256) for _ in range(3 * 2 * 4))
    want = bytes(b for i in range(0, len(rgba), 4) for b in rgba[i:i + 3])
    assert ava_sdk.decode_image(png(3, 2, 6, rgba, [1, 4])) == (3, 2, 3, want)
    ga = bytes(rnd.randrange(256) for _ in range(3 * 3 * 2))
    assert ava_sdk.decode_image(png(3, 3, 4, ga, [2, 3])) == (1, 3, 3, ga[0::2])
    # raw payloads: a grey square, else an RGB square
    assert ava_sdk.decode_image(bytes(range(16))) == (1, 4, 4, bytes(range(16)))
    assert ava_sdk.decode_image(bytearray(27)) == (3, 3, 3, bytes(27))
    # refusals name the problem
    for payload, words in [
            (b"\xff\xd8\xff\xe0" + bytes(20), "JPEG"),
            (bytes(10), "neither PNG nor raw"),
            (png(2, 2, 0, bytes(4), [0], interlace=1), "non-interlaced"),
            (png(2, 2, 0, bytes(8), [0], depth=16), "8-bit"),
            (png(3, 3, 0, bytes(9), [0])[:-30], "truncated"),
    ]:
        try:
            ava_sdk.decode_image(payload)
        except ValueError as e:
            assert words in str(e), (words, e)
        else:
            raise AssertionError("accepted: %s" % words)


def test_load_set():
    grey = [bytes([i] * 16) for i in range(3)]
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "set"))
        path = os.path.join(d, "set", "data.rec")
        # raw, PNG, and a record with two labels (the first is the class)
        blob = part(0, irheader(2.0, 0) + grey[0])
        blob += part(0, irheader(0.0, 1) + png(4, 4, 0, grey[1], [1]))
        blob += part(0, irheader(0.0, 2, flag=2) + struct.pack("<2f", 1.0, 9.0) + grey[2])
        write_rec(path, blob)
        s = ava_sdk.load_set(os.path.join(d, "set"))
        assert (s.n, s.channels, s.height, s.width, s.max_label) == (3, 1, 4, 4, 2)
        assert s.labels == [2, 0, 1] and s.pixels == b"".join(grey)
        assert ava_sdk.load_set(path, limit=2).labels == [2, 0]
        # RGB comes out planar: all of R, then G, then B
        rgb = bytes(range(12))  # 2x2 pixels (0,1,2) (3,4,5) ...
        write_rec(path, part(0, irheader(1.0, 0) + rgb))
        s = ava_sdk.load_set(path)
        assert (s.channels, s.pixels) == (3, rgb[0::3] + rgb[1::3] + rgb[2::3])
        # refusals name the record
        for blob, words in [
                (part(0, irheader(0.0, 0) + grey[0]) + part(0, irheader(0.0, 1) + bytes(9)),
                 "record 1: a 1x3x3 image"),
                (part(0, irheader(1.5, 0) + grey[0]), "record 0: label 1.5"),
                (part(0, irheader(-1.0, 0) + grey[0]), "record 0: label -1.0"),
                (part(0, irheader(0.0, 0) + bytes(5)), "record 0: a payload of 5 bytes"),
        ]:
            write_rec(path, blob)
            try:
                ava_sdk.load_set(path)
            except ValueError as e:
                assert words in str(e), (words, e)
            else:
                raise AssertionError("accepted: %s" % words)
        write_rec(path, b"")
        assert ava_sdk.load_set(path).n == 0


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
        else:
            passed += 1
            print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it; explicit for clarity
    sys.exit(main())
