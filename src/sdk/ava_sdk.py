"""ava_sdk: report training metrics to ava from Python (the twin of libava, include/ava/ava.h),
and read MXNet RecordIO files and the sets `ava dataset format` writes (raw and PNG payloads).
One file, standard library only, Python 3.7+.

    import ava_sdk
    ava_sdk.report("loss", step, 0.31, phase="train")
    ava_sdk.report("accuracy", step, 0.912, phase="val", epoch=3)

Each point travels to the run's supervisor (ava-shim) as one InfluxDB line protocol line,
written with one write() to the pipe whose number ava puts in AVA_METRICS_FD:

    accuracy,phase=val,epoch=3 value=0.912,step=1200i 1764130000000000000

Outside ava (no AVA_METRICS_FD, or not a writable descriptor) the first call writes one warning
on stderr and every call is a no-op that still checks its arguments. The training is never
blocked: the pipe is non-blocking; when it is full the point is dropped and counted, and the
next point written is preceded by `ava.dropped value=N,step=S` (N points lost since the last
such line, S the step of the point that follows). Every function is thread-safe (one lock) and
lines never interleave (one write() of at most PIPE_BUF bytes each, atomic on a pipe). Unlike
libava there is no queue and no thread: a Python call costs microseconds anyway, so a write()
per point is cheap in comparison, and nothing is ever left unwritten at exit.

O_NONBLOCK is set on the descriptor when it is a pipe or a socket numbered above 2; on 0-2
(AVA_METRICS_FD=2 prints the lines, for debugging) and on anything else it is left alone, so
writes there may block. A write that finds the supervisor gone never kills the process with
SIGPIPE (blocked around the write when its action is not "ignore", Python's default); reporting
stops after one warning and later points count as dropped.
"""

import errno
import math
import operator
import os
import re
import signal
import stat
import struct
import sys
import threading
import time
import zlib

__all__ = ["report", "flush", "dropped_total", "enabled", "RecordIO", "RecordIOError",
           "ImageSet", "decode_image", "load_set"]
__version__ = "0.1.0"

NAME_MAX = 64  # metric names: 1..64 bytes of [A-Za-z0-9._/-]
PHASE_MAX = 16  # phases: 1..16 bytes of [a-z0-9_]
_NAME_RE = re.compile(r"[A-Za-z0-9._/-]{1,64}")
_PHASE_RE = re.compile(r"[a-z0-9_]{1,16}")
_PIPE_BUF = 4096  # Linux; every line is far shorter (at most 191 bytes)

_lock = threading.Lock()
_fd = None  # None: AVA_METRICS_FD not read yet; -1: not reporting
_dead = False  # the supervisor is gone
_pending = 0  # dropped since the last ava.dropped line
_total = 0  # dropped since the process (or the fork) started
_rest = b""  # the unwritten end of a line after a short write (sockets, files)


def _warn(msg):
    """Writes one warning line on stderr (never raises)."""
    try:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
    except Exception:  # stderr closed or replaced by something odd: nothing to do
        pass


def _open_fd():
    """Reads AVA_METRICS_FD once; returns the descriptor or -1 (after the one warning)."""
    s = os.environ.get("AVA_METRICS_FD")
    if not s:
        _warn("ava: AVA_METRICS_FD is not set: metrics are not reported")
        return -1
    try:
        if not s.isdigit():
            raise ValueError(s)
        fd = int(s)
        st = os.fstat(fd)
        import fcntl

        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise ValueError(s)
    except (ValueError, OSError, OverflowError):
        _warn("ava: AVA_METRICS_FD=%.40s is not a file descriptor open for writing: "
              "metrics are not reported" % s)
        return -1
    # O_NONBLOCK belongs to the open file description, shared with whoever holds it: fine for
    # the supervisor's pipe, not for a stdin/stdout/stderr that happens to be a pipe
    if (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)) and fd > 2:
        os.set_blocking(fd, False)
    return fd


def _fmt_line(name, step, value, phase, epoch, ts_ns):
    """One line protocol line (bytes, with its newline) for checked arguments."""
    tags = ""
    if phase:
        tags += ",phase=" + phase
    if epoch is not None:
        tags += ",epoch=%d" % epoch
    return ("%s%s value=%s,step=%di %d\n" % (name, tags, repr(value), step, ts_ns)).encode()


def _check(name, step, value, phase, epoch):
    """Checks and normalises a point's arguments; raises TypeError or ValueError."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError("ava_sdk: metric name must be 1 to 64 characters of A-Z a-z 0-9 . _ / -"
                         ", not %r" % (name,))
    step = operator.index(step)
    if step < 0:
        raise ValueError("ava_sdk: step must be 0 or more, not %d" % step)
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError("ava_sdk: value must be a number, not %r" % (value,))
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("ava_sdk: value must be finite, not %r" % value)
    if phase is not None and phase != "":
        if not isinstance(phase, str) or not _PHASE_RE.fullmatch(phase):
            raise ValueError("ava_sdk: phase must be 1 to 16 characters of a-z 0-9 _, not %r"
                             % (phase,))
    else:
        phase = None
    if epoch is not None:
        epoch = operator.index(epoch)
        if epoch < 0:
            raise ValueError("ava_sdk: epoch must be 0 or more (or None), not %d" % epoch)
    return step, value, phase, epoch


def _write(data):
    """One write() of data; SIGPIPE never kills the process. Returns the bytes written, or
    raises OSError (EAGAIN when the pipe is full)."""
    if signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN:  # Python's default: EPIPE raises
        return os.write(_fd, data)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
    try:
        return os.write(_fd, data)
    except BrokenPipeError:
        if signal.SIGPIPE not in old:
            signal.sigtimedwait({signal.SIGPIPE}, 0)  # consume the one this write raised
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _count_drop():
    """Counts one dropped point. Under _lock."""
    global _pending, _total
    _pending += 1
    _total += 1


def _go_dead():
    """The supervisor is gone: stop reporting, say so once. Under _lock."""
    global _dead, _rest
    _dead = True
    _rest = b""
    _warn("ava: the metrics pipe (AVA_METRICS_FD) is closed: metrics are no longer reported")


def _send_locked(data):
    """Writes _rest then data. Returns True when data went out (perhaps partly, the rest kept in
    _rest), False when it could not start (pipe full, or the supervisor gone). Under _lock."""
    global _rest
    try:
        if _rest:
            n = _write(_rest)
            _rest = _rest[n:]
            if _rest:
                return False
        if data:
            n = _write(data)
            _rest = data[n:]
        return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR):
            return False
        _go_dead()  # EPIPE, ECONNRESET, EBADF...
        return False


def _ensure_init():
    """Reads AVA_METRICS_FD on the first call. Under _lock."""
    global _fd
    if _fd is None:
        _fd = _open_fd()


def report(name, step, value, phase=None, epoch=None):
    """Reports one point.

    name: the metric, 1 to 64 characters of [A-Za-z0-9._/-] ("loss", "accuracy", "train/top5").
    step: the x coordinate (batch, iteration...), an integer >= 0 (numpy integers too).
    value: the y coordinate, a finite number (float, int, numpy scalar, 1-element tensor...).
    phase: None or "" for none, else 1 to 16 characters of [a-z0-9_] ("train", "val").
    epoch: None for none, else an integer >= 0.

    Returns True when the line was written, False when it was dropped (the supervisor reads
    too slowly or is gone; see dropped_total()) or outside ava. Raises TypeError or ValueError
    for invalid arguments (also outside ava), writing nothing. Thread-safe; never blocks.
    """
    step, value, phase, epoch = _check(name, step, value, phase, epoch)
    global _pending
    with _lock:
        _ensure_init()
        if _fd < 0:
            return False
        if _dead:
            _count_drop()
            return False
        now = time.time_ns()
        data = _fmt_line(name, step, value, phase, epoch, now)
        if _pending:  # in the same write(): the count always comes with the point it precedes
            data = _fmt_line("ava.dropped", step, float(_pending), None, None, now) + data
        if len(data) > _PIPE_BUF:  # cannot happen with the limits above; keep atomicity anyway
            raise ValueError("ava_sdk: line too long")
        if not _send_locked(data):
            _count_drop()
            return False
        _pending = 0
        return True


def flush():
    """Writes what a short write left over (sockets and files only; pipe writes are whole).
    Returns True when nothing is left. Thread-safe; never blocks."""
    with _lock:
        _ensure_init()
        if _fd < 0 or _dead:
            return _fd < 0
        _send_locked(b"")
        return not _rest


def dropped_total():
    """Points dropped since the process started (in a forked child: since the fork)."""
    with _lock:
        return _total


def enabled():
    """True when points are being reported (AVA_METRICS_FD usable, supervisor not gone). The
    first call may print the warning described above."""
    with _lock:
        _ensure_init()
        return _fd >= 0 and not _dead


def _reset_for_tests():
    """Forgets AVA_METRICS_FD, the warning and the counts (tests only)."""
    global _fd, _dead, _pending, _total, _rest
    with _lock:
        _fd, _dead, _pending, _total, _rest = None, False, 0, 0, b""


def _after_fork_in_child():
    """A forked child gets a fresh lock (the parent's may have been held) and its own counts."""
    global _lock, _pending, _total, _rest
    _lock = threading.Lock()
    _pending, _total, _rest = 0, 0, b""


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---- MXNet RecordIO ----


class RecordIOError(ValueError):
    """A .rec file that is not valid RecordIO (the message names the byte offset)."""


class RecordIO:
    """Reads an MXNet RecordIO file (.rec) sequentially.

    Iterating yields (label, id, payload) for each record: the IRHeader (packed little-endian
    u32 flag, f32 label, u64 id, u64 id2) is unpacked; label is a float, or a tuple of floats
    when flag = n > 0 (the n labels that follow the header); payload is the rest (bytes,
    usually an encoded image). read() returns a whole raw record instead.

    On disk a record is parts of: u32le magic 0xCED7230A, u32le lrec = cflag << 29 | length,
    length bytes, zero padding to 4 bytes. cflag 0 is a whole record; a writer splits a record
    where the magic word occurs 4-byte aligned in it (cflag 1 first part, 2 middle, 3 last),
    and the reader puts the magic back between the parts.

        with ava_sdk.RecordIO("/workspace/mnt/data/train/train.rec") as rec:
            for label, idx, jpeg in rec:
                ...
    """

    MAGIC = 0xCED7230A
    _MAGIC_BYTES = struct.pack("<I", MAGIC)
    _HEADER = struct.Struct("<IfQQ")

    def __init__(self, path):
        self.path = path
        self._f = open(path, "rb")

    def close(self):
        """Closes the file (idempotent)."""
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def tell(self):
        """The byte offset of the next record (what the .idx lists)."""
        return self._f.tell()

    def seek(self, offset):
        """Moves to a record's byte offset (from the .idx; a multiple of 4)."""
        if offset % 4:
            raise RecordIOError("%s: offset %d is not a multiple of 4" % (self.path, offset))
        self._f.seek(offset)

    def _part(self):
        """Reads one part: (cflag, bytes), or None at a clean end of file."""
        at = self._f.tell()
        head = self._f.read(8)
        if not head:
            return None
        if len(head) < 8:
            raise RecordIOError("%s: truncated record header at byte %d" % (self.path, at))
        magic, lrec = struct.unpack("<II", head)
        if magic != self.MAGIC:
            raise RecordIOError("%s: bad magic 0x%08X at byte %d" % (self.path, magic, at))
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        data = self._f.read(length)
        pad = self._f.read(-length % 4)
        if len(data) < length or len(pad) < -length % 4:
            raise RecordIOError("%s: record at byte %d is truncated" % (self.path, at))
        return cflag, data

    def read(self):
        """The next whole record (bytes, parts joined with the magic put back), or None at
        the end. Raises RecordIOError for a corrupt file."""
        at = self._f.tell()
        first = self._part()
        if first is None:
            return None
        cflag, data = first
        if cflag == 0:
            return data
        if cflag != 1:
            raise RecordIOError("%s: record at byte %d begins with part flag %d"
                                % (self.path, at, cflag))
        parts = [data]
        while True:
            part = self._part()
            if part is None:
                raise RecordIOError("%s: record at byte %d ends before its last part"
                                    % (self.path, at))
            cflag, data = part
            if cflag not in (2, 3):
                raise RecordIOError("%s: record at byte %d has part flag %d inside a split "
                                    "record" % (self.path, at, cflag))
            parts.append(data)
            if cflag == 3:
                return self._MAGIC_BYTES.join(parts)

    @classmethod
    def unpack(cls, record):
        """Splits a raw record into (label, id, payload) (see the class comment)."""
        if len(record) < cls._HEADER.size:
            raise RecordIOError("record of %d bytes is shorter than its 24-byte header"
                                % len(record))
        flag, label, idx, _id2 = cls._HEADER.unpack_from(record)
        body = cls._HEADER.size
        if flag > 0:
            if len(record) < body + 4 * flag:
                raise RecordIOError("record of %d bytes is too short for %d labels"
                                    % (len(record), flag))
            label = struct.unpack_from("<%df" % flag, record, body)
            body += 4 * flag
        return label, idx, record[body:]

    def __iter__(self):
        while True:
            record = self.read()
            if record is None:
                return
            yield self.unpack(record)


# ---- formatted sets: payload decoding and whole-set loading ----


def _raw_shape(n):
    """(channels, height, width) of a raw payload of n bytes: a grey square image when n is a
    square, else an RGB square image when n / 3 is; None otherwise (as ava-train-c decides)."""
    for c in (1, 3):
        if n == 0 or n % c:
            continue
        side = int(round(math.sqrt(n // c)))
        if side * side == n // c:
            return c, side, side
    return None


def _png_unfilter(raw, height, stride, bpp):
    """Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth): raw holds height rows of
    one filter byte and stride bytes. Returns the pixels (bytes, height * stride). The loops
    are written out (no helper call per byte): about 0.2 ms for a 28 x 28 grey image."""
    out = bytearray(height * stride)
    prev = bytes(stride)
    low7 = int.from_bytes(b"\x7f" * stride, "little")
    high1 = low7 << 1 & int.from_bytes(b"\x80" * stride, "little")
    for y in range(height):
        at = y * (stride + 1)
        f = raw[at]
        row = bytearray(raw[at + 1:at + 1 + stride])
        if f == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif f == 2:  # bytewise sums mod 256 of two whole rows as integers (no carries)
            a, b = int.from_bytes(row, "little"), int.from_bytes(prev, "little")
            row = bytearray((((a & low7) + (b & low7)) ^ ((a ^ b) & high1)).to_bytes(
                stride, "little"))
        elif f == 3:
            for i in range(stride):
                row[i] = (row[i] + ((row[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(bpp):
                row[i] = (row[i] + prev[i]) & 255  # left and up-left are 0: Paeth picks up
            for i in range(bpp, stride):
                a, b, c = row[i - bpp], prev[i], prev[i - bpp]
                pa, pb, pc = b - c, a - c, a + b - c - c  # p - a, p - b, p - c
                pa, pb, pc = pa if pa >= 0 else -pa, pb if pb >= 0 else -pb, pc if pc >= 0 else -pc
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            raise ValueError("PNG: unknown filter %d in row %d" % (f, y))
        out[y * stride:(y + 1) * stride] = row
        prev = row
    return bytes(out)


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def _decode_png(data):
    """Decodes an 8-bit, non-interlaced grey, grey+alpha, RGB or RGBA PNG (what ava's
    formatter writes, and most others) to (channels, height, width, interleaved pixels);
    alpha is dropped."""
    pos, head, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length:
            raise ValueError("PNG: truncated %s chunk" % kind.decode("latin-1"))
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if head is None:
        raise ValueError("PNG: no IHDR chunk")
    width, height, depth, ctype, _comp, _filt, interlace = head
    if depth != 8 or ctype not in _PNG_CHANNELS or interlace:
        raise ValueError("PNG: only 8-bit, non-interlaced grey or RGB(A) images are read "
                         "(this one: depth %d, colour type %d, interlace %d)"
                         % (depth, ctype, interlace))
    spp = _PNG_CHANNELS[ctype]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError("PNG: %s" % e) from None
    if len(raw) < height * (width * spp + 1):
        raise ValueError("PNG: %d bytes of image data for %dx%d" % (len(raw), width, height))
    px = _png_unfilter(raw, height, width * spp, spp)
    if spp in (2, 4):  # drop alpha: keep the first spp - 1 samples of each pixel
        keep = bytearray(len(px) // spp * (spp - 1))
        for k in range(spp - 1):
            keep[k::spp - 1] = px[k::spp]
        px, spp = bytes(keep), spp - 1
    return spp, height, width, px


def decode_image(payload):
    """Decodes one formatted-set payload to (channels, height, width, pixels): pixels is
    bytes of height x width x channels interleaved values (1 channel grey, 3 RGB).

    PNG (8-bit, non-interlaced) is decoded here; a payload that is not PNG is raw pixels
    (`ava dataset format --encoding raw`) when its length is a square (grey) or three times a
    square (RGB). JPEG payloads are refused: the standard library has no JPEG decoder (format
    the set with --encoding raw or png). Raises ValueError naming the problem."""
    payload = bytes(payload)
    if payload.startswith(_PNG_SIG):
        try:
            return _decode_png(payload)
        except (ValueError, struct.error) as e:
            shape = _raw_shape(len(payload))  # raw pixels may begin with the same bytes
            if shape is None:
                raise ValueError(str(e)) from None
            return shape + (payload,)
    shape = _raw_shape(len(payload))
    if shape is not None:
        return shape + (payload,)
    if payload[:3] == b"\xff\xd8\xff":
        raise ValueError("a JPEG payload: ava_sdk reads raw and PNG payloads only (format the "
                         "set with --encoding raw or --encoding png)")
    raise ValueError("a payload of %d bytes is neither PNG nor raw pixels of a square grey or "
                     "RGB image" % len(payload))


class ImageSet:
    """A formatted set loaded whole into memory (see load_set).

    n, channels, height, width: the images and their shape; labels: a list of n ints (the
    first label of each record); pixels: bytes of n x channels x height x width values,
    planar per image (all of channel 0, then channel 1...), ready for a framework's
    N x C x H x W uint8 tensor; max_label: the largest label (-1 when empty)."""

    __slots__ = ("n", "channels", "height", "width", "labels", "pixels", "max_label")

    def __init__(self, n, channels, height, width, labels, pixels):
        self.n, self.channels, self.height, self.width = n, channels, height, width
        self.labels, self.pixels = labels, pixels
        self.max_label = max(labels) if labels else -1


def load_set(path, limit=0):
    """Loads a set that `ava dataset format --format recordio` wrote: path is the set's folder
    (holding data.rec) or a .rec file. limit > 0 keeps only the first limit records. Every
    image must have the shape of the first; labels must be whole numbers >= 0. Returns an
    ImageSet; raises OSError, RecordIOError or ValueError naming the record at fault."""
    rec_path = os.path.join(path, "data.rec") if os.path.isdir(path) else path
    labels, planes, shape = [], [], None
    with RecordIO(rec_path) as rec:
        for i, (label, _idx, payload) in enumerate(rec):
            if limit > 0 and i >= limit:
                break
            label = label[0] if isinstance(label, tuple) else label
            if label < 0 or label != int(label):
                raise ValueError("%s: record %d: label %r is not a class number"
                                 % (rec_path, i, label))
            try:
                c, h, w, px = decode_image(payload)
            except ValueError as e:
                raise ValueError("%s: record %d: %s" % (rec_path, i, e)) from None
            if shape is None:
                shape = (c, h, w)
            elif (c, h, w) != shape:
                raise ValueError("%s: record %d: a %dx%dx%d image (channels x height x width) "
                                 "where the first is %dx%dx%d: every image must have the same "
                                 "shape" % ((rec_path, i, c, h, w) + shape))
            planes.append(px if c == 1 else b"".join(px[k::c] for k in range(c)))
            labels.append(int(label))
    c, h, w = shape or (1, 0, 0)
    return ImageSet(len(labels), c, h, w, labels, b"".join(planes))
