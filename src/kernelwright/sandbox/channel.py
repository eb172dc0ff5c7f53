"""The private result channel between the judge and a worker.

A pair of pipes, never the worker's stdout: whatever the candidate prints,
writes to files or exits with proves nothing. Every frame carries a sequence
number and an HMAC under a per-run secret, so a frame from another run, a
replay, or bytes written by a grandchild holding a stray descriptor are refused.

No pickle crosses this channel: the judge would run attacker code by unpickling.
Frames are a JSON header plus raw byte blobs; tensors are rebuilt from dtype,
shape and bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import struct
import time
from typing import Any, Callable, Mapping

from kernelwright.constants import MAX_FRAME_BYTES, MAX_FRAME_RAM_SHARE, STOPPED_POLL_S

_LEN = struct.Struct("!QQ")  # header length, total blob length
_MAC_LEN = 32


def _max_frame_bytes() -> int:
    """The largest frame either side accepts on this machine (sysconf: readable in any sandbox)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        ram = 0
    return max(MAX_FRAME_BYTES, int(MAX_FRAME_RAM_SHARE * ram))


MAX_FRAME = _max_frame_bytes()


class ChannelError(Exception):
    """The peer broke the protocol, closed the channel, or forged a frame."""


class Channel:
    """One end of an authenticated, ordered message channel over two fds."""

    def __init__(self, read_fd: int, write_fd: int, secret: bytes) -> None:
        self._r = read_fd
        self._w = write_fd
        self._secret = secret
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
        mac = hmac.new(self._secret, head, hashlib.sha256)
        for b in blobs:
            mac.update(b)
        total = sum(len(b) for b in blobs)
        _write_all(self._w, _LEN.pack(len(head), total) + mac.digest() + head)
        for b in blobs:
            _write_all(self._w, b)

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
        mac = bytes(self._read(_MAC_LEN))
        head = bytes(self._read(head_len))
        check = hmac.new(self._secret, head, hashlib.sha256)
        try:
            header = json.loads(head)
            sizes = [int(s) for s in header["_blobs"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelError(f"malformed frame header: {exc}") from exc
        if sum(sizes) != total:
            raise ChannelError("frame blob sizes disagree with its length")
        blobs = []
        for size in sizes:
            b = self._read(size)
            check.update(b)
            blobs.append(b)
        if not hmac.compare_digest(mac, check.digest()):
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view[: 1 << 24])
        except BrokenPipeError as exc:
            raise ChannelError("peer closed the channel") from exc
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None = None,
                idle: Callable[[], None] | None = None) -> bytearray:
    # A preallocated, writable buffer: tensors are built on it without another copy.
    buf = bytearray(n)
    view = memoryview(buf)
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
        k = os.readv(fd, [view[got:got + (1 << 24)]])
        if not k:
            raise ChannelError("peer closed the channel")
        got += k
    return buf
