"""The private channel: authenticated, ordered, and refuses forgeries and replays."""

from __future__ import annotations

import os

import pytest

from kernelwright.sandbox.channel import Channel, ChannelError


def _pair(secret_a: bytes = b"k" * 32, secret_b: bytes = b"k" * 32) -> tuple[Channel, Channel]:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    return Channel(r1, w2, secret_a), Channel(r2, w1, secret_b)


def test_round_trip_with_blobs() -> None:
    a, b = _pair()
    b.send({"x": 1, "nan": float("nan")}, [b"abc", b""])
    header, blobs = a.recv()
    assert header["x"] == 1 and blobs == [b"abc", b""]


def test_wrong_secret_is_refused() -> None:
    a, b = _pair(b"a" * 32, b"b" * 32)
    b.send({"verdict": "accepted"})
    with pytest.raises(ChannelError, match="authentication"):
        a.recv()


def test_raw_bytes_written_to_the_pipe_are_refused() -> None:
    r, w = os.pipe()
    chan = Channel(r, os.pipe()[1], b"s" * 32)
    os.write(w, b'{"verdict": "accepted"}\n' * 4)
    os.close(w)
    with pytest.raises(ChannelError):
        chan.recv()


def test_replayed_frame_is_refused() -> None:
    r1, w1 = os.pipe()
    sender = Channel(os.pipe()[0], w1, b"s" * 32)
    sender.send({"n": 0})
    frame = os.read(r1, 1 << 16)
    os.write(w1, frame)  # the same authentic frame again
    os.write(w1, frame)
    receiver = Channel(r1, os.pipe()[1], b"s" * 32)
    assert receiver.recv()[0]["n"] == 0
    with pytest.raises(ChannelError, match="sequence"):
        receiver.recv()


def test_closed_peer_is_an_error_not_a_hang() -> None:
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(ChannelError, match="closed"):
        Channel(r, os.pipe()[1], b"s" * 32).recv()


def test_the_largest_frame_comes_from_the_machine(monkeypatch) -> None:
    from kernelwright import constants as C
    from kernelwright.sandbox import channel

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert channel.MAX_FRAME == max(C.MAX_FRAME_BYTES, int(C.MAX_FRAME_RAM_SHARE * ram))
    monkeypatch.setattr(channel, "MAX_FRAME", 1000)
    a, b = _pair()
    b.send({"x": 1}, [b"y" * 999])
    assert a.recv()[1] == [b"y" * 999]
    b.send({"x": 2}, [b"y" * 1001])
    with pytest.raises(ChannelError, match=r"frame too large \(\d+ \+ 1001 bytes; at most 1000 on this machine\)"):
        a.recv()


def _relay(src: int, dst: int, flip_at: int | None = None) -> None:
    """Copy everything from src to dst, flipping one byte at offset `flip_at` on the way."""
    seen = 0
    while chunk := os.read(src, 1 << 20):
        data = bytearray(chunk)
        if flip_at is not None and seen <= flip_at < seen + len(data):
            data[flip_at - seen] ^= 0xFF
        seen += len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view):]
    os.close(dst)


def _large_round_trip(flip_at: int | None) -> tuple[bytes, object]:
    import threading

    from kernelwright.sandbox import channel

    payload = os.urandom(1 << 16) * (3 * channel._CHUNK // (1 << 16) + 3)  # several chunks and a tail
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    sender = Channel(os.pipe()[0], w1, b"s" * 32)
    receiver = Channel(r2, os.pipe()[1], b"s" * 32)
    threads = [threading.Thread(target=sender.send, args=({"n": 1}, [b"head", payload])),
               threading.Thread(target=_relay, args=(r1, w2, flip_at))]
    for t in threads:
        t.start()
    try:
        got: object = receiver.recv(deadline=None)
    except ChannelError as exc:
        got = exc
    os.close(w1)
    for t in threads:
        t.join()
    return payload, got


def test_a_blob_of_many_chunks_arrives_whole() -> None:
    payload, got = _large_round_trip(None)
    assert isinstance(got, tuple)
    header, blobs = got
    assert header["n"] == 1 and blobs[0] == b"head" and blobs[1] == payload


def test_one_byte_changed_deep_in_a_large_blob_is_refused() -> None:
    from kernelwright.sandbox import channel

    _, got = _large_round_trip(2 * channel._CHUNK + 12345)
    assert isinstance(got, ChannelError) and "authentication" in str(got)


def test_worker_pipes_are_widened() -> None:
    from kernelwright import constants as C
    from kernelwright.sandbox.channel import widen_pipe

    r, w = os.pipe()
    with open("/proc/sys/fs/pipe-max-size") as f:
        cap = int(f.read())
    assert widen_pipe(w) == min(C.PIPE_BYTES, cap)


def test_header_only_mac_still_refuses_a_forged_header() -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    a, b = Channel(r1, w2, b"a" * 32, mac_blobs=False), Channel(r2, w1, b"b" * 32, mac_blobs=False)
    b.send({"verdict": "accepted"}, [b"x" * 100])
    with pytest.raises(ChannelError, match="authentication"):
        a.recv()


def test_only_the_candidates_channel_leaves_blob_bytes_unhashed() -> None:
    """The reference's bytes are authenticated (a candidate must not forge them); the
    candidate's worker holds its own secret, so hashing its bytes would prove nothing."""
    from kernelwright.protocol import Role
    from kernelwright.sandbox.process import SandboxConfig, Worker

    for role, hashed in ((Role.REFERENCE, True), (Role.CANDIDATE, False)):
        w = Worker(role, SandboxConfig(confine=False))
        try:
            assert w._chan.mac_blobs is hashed
        finally:
            w.close()
