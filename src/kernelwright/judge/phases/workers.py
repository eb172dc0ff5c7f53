"""Phase 1: the two workers, taken ready from a pool or started for this verdict (trusted side)."""

from __future__ import annotations

import time
from dataclasses import replace

from kernelwright.judge import _support as S
from kernelwright.judge.pairs import healthy, pair_spec, start_pair, take_prespawned, task_key
from kernelwright.judge.phases.state import JudgementState
from kernelwright.sandbox import buildcache
from kernelwright.sandbox.confine import Confinement
from kernelwright.task.loader import InputError
from kernelwright.sandbox.process import Worker


class WorkersPhase(JudgementState):
    """Start (or take) the reference and candidate workers."""

    def _start_workers(self) -> tuple[Worker, Worker]:
        t0 = time.perf_counter()
        self.build_dir = buildcache.build_dir(self.cand.source, self.device) if self.opts.build_cache else None
        pooled = pair_spec(self.opts, self.device)
        pair = self.pool.take(pooled, self._task_key()) if self.pool is not None else None
        early = take_prespawned(pooled) if pair is None else None
        if early is not None:
            pair = early
            self.findings.append(f"workers: spawned as the command started, while it imported torch (set up "
                                 f"{pair.start_s:.1f} s after their spawn)")
        elif pair is None:
            pair = start_pair(replace(pooled, build_cache_dir=str(self.build_dir) if self.build_dir else None))
        else:
            reused = pair.ref is not None and pair.ref.reused
            self.findings.append(f"workers: pre-started (set up {pair.start_s:.1f} s after they were spawned, "
                                 "outside any timing)" + ("; the reference worker is the one of an earlier verdict "
                                                         "of this task, told to forget it" if reused else ""))
        if self.pool is not None:
            # The next verdict's interpreters import while this one runs (stopped while it is
            # timed); their setup, which touches the GPU, waits for _untimed_from_now.
            self.pool.spawn_ahead(pooled)
        self.env.update(pair.environment)
        self.ref_environment = dict(pair.environment)  # what a kept reference's next verdict reports
        self.env["confinement"] = pair.confinement or Confinement(error="confinement was turned off").to_dict()
        self.findings += [f"sandbox: {p}" for p in pair.hardening]
        missing = Confinement(**self.env["confinement"]).missing()
        if missing and self.opts.require_confinement:
            pair.close()
            raise InputError(f"the candidate's sandbox lacks {', '.join(missing)} confinement on this machine "
                             f"({self.env['confinement'].get('error') or 'turned off'}), and it was required "
                             "(--require-confinement): nothing was run")
        if missing:
            self.findings.append(f"sandbox: not confined: {', '.join(missing)} "
                                 f"({self.env['confinement'].get('error') or 'turned off'})")
        hold = self.env.get("launch_hold")
        if hold is not None and hold != "every SM":
            self.findings.append(f"timing: the launch hold covers {hold}, not the whole device: work on another "
                                 "stream could overlap it uncharged (see docs/judge.md, timing on the GPU)")
        self._phase("start", t0)
        assert pair.ref is not None
        return pair.ref, pair.cand

    def _task_key(self) -> str:
        return task_key(self.task.source, str(self.task.path))

    def _reference_keepable(self, ref: Worker) -> bool:
        """Whether this verdict's reference worker may serve the next verdict of its task: nothing
        of the candidate could reach it (judge.pairs says why each condition matters)."""
        confinement = self.env.get("confinement")
        return (self.pool is not None and self.pool.keep_reference and confinement is not None
                and not Confinement(**confinement).missing() and healthy(ref) and ref.affinity_violation is None)
