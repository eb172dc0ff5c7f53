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
