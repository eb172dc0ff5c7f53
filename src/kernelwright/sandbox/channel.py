"""The private result channel between the judge and a worker.

A pair of pipes, never the worker's stdout: whatever the candidate prints,
writes to files or exits with proves nothing. Every frame carries a sequence
number and an HMAC under a per-run secret, so a frame from another run, a
replay, or bytes written by a grandchild holding a stray descriptor are refused.

No pickle crosses this channel: the judge would run attacker code by unpickling.
Frames are a JSON header plus raw byte blobs; tensors are rebuilt from dtype,
shape and bytes. The MAC trails the frame, so both ends hash a large blob on a
second thread while the pipe moves the next chunk (an input set of KernelBench's
level 1 is several GB: hashing and copying in turn halved the rate of either).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import fcntl
import select
import struct
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Mapping

from kernelwright.constants import MAX_FRAME_BYTES, MAX_FRAME_RAM_SHARE, PIPE_BYTES, STOPPED_POLL_S

_LEN = struct.Struct("!QQ")  # header length, total blob length
_MAC_LEN = 32
_CHUNK = 1 << 24  # bytes per read or write system call, and per MAC update on the hashing thread
_HASH_AHEAD = 1 << 20  # blobs up to this size are hashed inline: a thread hand-off costs more
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, which Python only names from 3.10 on Linux builds


def _max_frame_bytes() -> int:
    """The largest frame either side accepts on this machine (sysconf: readable in any sandbox)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        ram = 0
    return max(MAX_FRAME_BYTES, int(MAX_FRAME_RAM_SHARE * ram))


MAX_FRAME = _max_frame_bytes()


def widen_pipe(fd: int) -> int:
    """Give a pipe PIPE_BYTES of buffer (or the most the system allows); its size after.

    A 64 KiB pipe moves a large blob in 64 KiB turns, each a context switch: a 1 MiB one is
    about three times faster. Failure leaves the pipe as it was.
    """
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            cap = int(f.read())
    except (OSError, ValueError):
        cap = PIPE_BYTES
    try:
        return fcntl.fcntl(fd, _F_SETPIPE_SZ, min(PIPE_BYTES, cap))
    except OSError:
        return 0


class _Mac:
    """An HMAC fed in order, large updates on a hashing thread (hashlib releases the GIL)."""

    def __init__(self, secret: bytes, head: bytes) -> None:
        self._mac = hmac.new(secret, head, hashlib.sha256)
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def update(self, data: memoryview | bytes) -> None:
        if len(data) <= _HASH_AHEAD and self._pool is None:
            self._mac.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="kw-mac")
        self._last = self._pool.submit(self._mac.update, data)

    def close(self) -> None:
        """Stop the hashing thread without waiting (a frame abandoned half-way)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def digest(self) -> bytes:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            if self._last is not None:
                self._last.result()
        return self._mac.digest()


class ChannelError(Exception):
    """The peer broke the protocol, closed the channel, or forged a frame."""


class Channel:
    """One end of an authenticated, ordered message channel over two fds."""

    def __init__(self, read_fd: int, write_fd: int, secret: bytes, mac_blobs: bool = True) -> None:
        self._r = read_fd
        self._w = write_fd
        self._secret = secret
        # False: the MAC covers the header (sequence number and blob sizes), not the blobs'
        # bytes. Right only where the peer holding the secret is the one any forger would be:
        # the candidate's worker, whose process (the candidate's code) holds its secret, so a
        # MAC over its bytes proves nothing the pipe does not, at two hashes of every byte.
        self.mac_blobs = mac_blobs
        # The largest frame this side accepts; the judge lowers it for a candidate's worker
        # to what its outputs can need (Worker.limit_messages).
        self.max_frame = MAX_FRAME
        # Called (about every STOPPED_POLL_S) while a read with a deadline waits on the peer: the
        # judge's side uses it to resume a worker that another process stopped mid-frame.
        self.idle: Callable[[], None] | None = None
        self._send_seq = 0
        self._recv_seq = 0
        self._deadline: float | None = None

    def send(self, header: Mapping[str, Any], blobs: list[bytes] | None = None) -> None:
        """Send a JSON-able header and optional raw blobs."""
        blobs = blobs or []
        header = dict(header, _seq=self._send_seq, _blobs=[len(b) for b in blobs])
        self._send_seq += 1
        head = json.dumps(header, allow_nan=True).encode()
        mac = _Mac(self._secret, head)
        total = sum(len(b) for b in blobs)
        try:
            _write_all(self._w, _LEN.pack(len(head), total) + head)
            for b in blobs:
                view = memoryview(b).cast("B")
                for i in range(0, len(view), _CHUNK):
                    chunk = view[i:i + _CHUNK]
                    if self.mac_blobs:
                        mac.update(chunk)  # hashed on the MAC thread while this one writes the chunk
                    _write_all(self._w, chunk)
            _write_all(self._w, mac.digest())
        finally:
            mac.close()

    def recv(self, deadline: float | None = None) -> tuple[dict[str, Any], list[bytearray]]:
        """Receive one frame; raise ChannelError on EOF, forgery, disorder or a passed deadline.

        `deadline` is a time.monotonic() value: a peer that sends half a frame and
        stops cannot hang the reader past it.
        """
        self._deadline = deadline
        head_len, total = _LEN.unpack(bytes(self._read(_LEN.size)))
        if head_len > 64 << 20 or total > self.max_frame:
            raise ChannelError(f"frame too large ({head_len} + {total} bytes; at most {self.max_frame} "
                               "on this machine)")
        head = bytes(self._read(head_len))
        check = _Mac(self._secret, head)
        try:
            header = json.loads(head)
            sizes = [int(s) for s in header["_blobs"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelError(f"malformed frame header: {exc}") from exc
        if sum(sizes) != total:
            raise ChannelError("frame blob sizes disagree with its length")
        blobs = []
        try:
            for size in sizes:
                # One preallocated buffer per blob (tensors are built on it without another copy),
                # filled chunk by chunk, each chunk hashed while the next is read.
                buf = bytearray(size)
                view = memoryview(buf)
                for i in range(0, size, _CHUNK):
                    _read_into(self._r, view[i:i + _CHUNK], self._deadline, self.idle)
                    if self.mac_blobs:
                        check.update(view[i:i + _CHUNK])
                blobs.append(buf)
            mac = bytes(self._read(_MAC_LEN))
            authentic = hmac.compare_digest(mac, check.digest())
        finally:
            check.close()
        if not authentic:
            raise ChannelError("frame failed authentication")
        if header.get("_seq") != self._recv_seq:
            raise ChannelError("frame out of sequence (replayed or injected)")
        self._recv_seq += 1
        return header, blobs

    def _read(self, n: int) -> bytearray:
        return _read_exact(self._r, n, self._deadline, self.idle)

    def close(self) -> None:
        """Close both descriptors, once: a second close could hit numbers reused since."""
        fds, (self._r, self._w) = (self._r, self._w), (-1, -1)
        for fd in fds:
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                pass


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view[:_CHUNK])
        except BrokenPipeError as exc:
            raise ChannelError("peer closed the channel") from exc
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None = None,
                idle: Callable[[], None] | None = None) -> bytearray:
    buf = bytearray(n)
    _read_into(fd, memoryview(buf), deadline, idle)
    return buf


def _read_into(fd: int, view: memoryview, deadline: float | None = None,
               idle: Callable[[], None] | None = None) -> None:
    n = len(view)
    got = 0
    while got < n:
        while deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelError("no complete frame before the deadline")
            if select.select([fd], [], [], min(left, STOPPED_POLL_S) if idle else left)[0]:
                break
            if idle is None:
                raise ChannelError("no complete frame before the deadline")
            idle()
        k = os.readv(fd, [view[got:got + _CHUNK]])
        if not k:
            raise ChannelError("peer closed the channel")
        got += k
