"""Entry point of a sandboxed worker: `python -m kernelwright.worker.entry ROLE RFD WFD`.

Runs a request loop for one role (`sandbox.process` spawns it; `protocol.ENTRY_MODULE`
names it). Everything here happens before untrusted code is imported; after that,
nothing this process says is believed until the judge has checked it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback


def main() -> None:
    """Read the secret, harden the process, then serve requests until told to exit."""
    t_main = time.perf_counter()
    role, rfd, wfd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    from kernelwright.constants import WorkerExit
    from kernelwright.protocol import PRELOAD_COMPILER_ENV, SECRET_BYTES, ErrorReply, Op, Role, Status
    from kernelwright.sandbox import limits
    from kernelwright.sandbox.channel import Channel, ChannelError

    secret = b""
    while len(secret) < SECRET_BYTES:
        chunk = os.read(rfd, SECRET_BYTES - len(secret))
        if not chunk:
            os._exit(WorkerExit.HANDSHAKE_FAILED)
        secret += chunk
    problems = limits.harden_self()
    # Still single-threaded and still only our code: the last moment a user namespace can
    # be entered. What could not be enforced is reported with the setup reply.
    from kernelwright.sandbox import confine

    confinement = confine.apply() if role == Role.CANDIDATE else None
    chan = Channel(rfd, wfd, secret, mac_blobs=role != Role.CANDIDATE)
    del secret

    if role == Role.REFERENCE:
        from kernelwright.worker.reference import ReferenceWorker as Handler
    elif role == Role.CANDIDATE:
        from kernelwright.worker.candidate import CandidateWorker as Handler
    else:
        os._exit(WorkerExit.PROTOCOL_ERROR)
    handler = Handler(hardening_problems=problems, confinement=confinement)
    # Where a worker's start goes (the setup reply carries it; the judge's trace prints it).
    handler.startup_s["imports"] = time.perf_counter() - t_main
    if role == Role.REFERENCE and os.environ.get(PRELOAD_COMPILER_ENV) == "1":
        try:
            import torch._dynamo  # noqa: F401 - imported now, used by the compile baseline later
            import torch._inductor.compile_fx  # noqa: F401
        except Exception:  # noqa: BLE001 - the baseline imports them itself, and reports what fails
            pass

    while True:
        try:
            header, blobs = chan.recv()
        except ChannelError:
            os._exit(WorkerExit.OK)
        if header.get("op") == Op.EXIT:
            os._exit(WorkerExit.OK)
        try:
            reply, rblobs = handler.handle(header, blobs)
            reply.setdefault("status", Status.OK)
        except BaseException as exc:  # report, never die silently
            reply = ErrorReply(status=Status.ERROR, error=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc()[-4000:],
                               error_type=type(exc).__name__)
            rblobs = []
        try:
            chan.send(reply, rblobs)
        except ChannelError:
            os._exit(WorkerExit.OK)


if __name__ == "__main__":
    main()
