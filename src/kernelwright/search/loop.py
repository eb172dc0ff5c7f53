"""The search loop: propose, build, judge, keep the fastest verified kernels, repeat.

Stages follow the reference design. *Translate* until some kernel is correct (a
rejected kernel gets *repair* attempts with the judge's feedback); then *optimize*
parents picked by verified speed from the population's islands, with *crossover* of
two parents now and then. Proposals run on a thread pool (LLM calls, and the CPU
build of each new candidate in a sandboxed worker) while the main thread judges one
candidate at a time, so the device never times two things at once.

Everything goes to the store the moment it exists: a proposal before it is built, a
verdict the moment it is decided. A run killed at any point resumes from the store,
and a source already judged for this task and device is never judged again.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kernelwright import constants as C
from kernelwright import forms
from kernelwright.judge.pairs import PairPool
from kernelwright.judge.prebuild import prebuild
from kernelwright.judge.result import JudgeResult
from kernelwright.judge.verify import VerifyOptions, pair_spec, verify_files
from kernelwright.propose.base import Parent, Proposal, ProposalRequest, Proposer, Usage
from kernelwright.sandbox import buildcache
from kernelwright.search import archive as arch
from kernelwright.search import ncu
from kernelwright.search.feedback import feedback
from kernelwright.search.population import Member, Population
from kernelwright.store import content_hash
from kernelwright.task.loader import InputError
from kernelwright.task.metadata import TaskError

REPAIRS_PER_KERNEL = 2  # repair attempts on one rejected kernel before translating afresh
MAX_IDLE_FAILURES = 6  # consecutive source-less proposals from one proposer before it is benched
PARENT_DRAWS = 8  # parents drawn for one proposal before a stage is given up as having nothing left


@dataclass(frozen=True)
class WeightedProposer:
    """A proposer and its share of the proposals."""

    proposer: Proposer
    weight: float = 1.0


@dataclass(frozen=True)
class SearchConfig:
    """Budgets and knobs of one search."""

    device: str
    target: str
    work_dir: Path  # a folder per run is made under it
    budget: int = C.DEFAULT_BUDGET  # proposals, failed ones included
    time_limit_s: float | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    parallel: int = 2  # proposals in flight while one candidate is judged
    islands: int = 2
    crossover_rate: float = 0.2
    seed: int | None = None
    device_facts: str = ""
    judge: VerifyOptions = field(default_factory=VerifyOptions)
    prebuild: bool = True
    # Add Nsight Compute's summary to accepted kernels' feedback where ncu exists and the judge
    # runs candidates unconfined: ncu injects itself into the profiled process and talks to it
    # over sockets, which a confined candidate cannot open (search/ncu.py).
    ncu: bool = True


@dataclass(frozen=True)
class Event:
    """Something the live display may show."""

    kind: str  # "proposed" | "judged" | "no_source" | "duplicate" | "stopped" | "resumed"
    candidate_id: str = ""
    proposer: str = ""
    stage: str = ""
    verdict: str = ""
    check: str = ""
    speedup: float | None = None
    note: str = ""


class Search:
    """One run of the loop against one task; `run()` returns the run id."""

    def __init__(self, task_path: Path, task_source: str, task_name: str, proposers: list[WeightedProposer],
                 store: Any, config: SearchConfig, run_id: str | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 judge: Callable[[Path, Path, VerifyOptions], JudgeResult] = verify_files) -> None:
        if not proposers:
            raise InputError("no proposer to search with")
        self.task_path, self.task_source, self.task_name = task_path, task_source, task_name
        self.task_hash = content_hash(task_source)
        self.proposers, self.store, self.cfg = proposers, store, config
        self.rng = random.Random(config.seed if config.seed is not None else secrets.randbits(64))
        self.on_event = on_event or (lambda e: None)
        self.judge = judge  # the real judge; benchmarks of the search policy pass a table lookup
        self.pairs: PairPool | None = None
        self.population = Population(config.islands)
        self.rejected: list[tuple[Parent, int]] = []  # (kernel, repairs tried) that may still be repaired
        self.idle: dict[str, int] = {}
        self._lock = threading.Lock()  # pool threads update idle counts and usage
        self.used_once: set[str] = set()
        self.proposed = 0
        self.usage = Usage()
        self.t0 = time.monotonic()
        self.stop_reason = ""
        self.resuming = run_id is not None
        self.run_id = run_id or store.create_run(str(task_path), task_source, task_name, config.device,
                                                 _config_json(config, proposers))
        self.work = config.work_dir / self.run_id  # the files the judge was given, one per candidate
        self.work.mkdir(parents=True, exist_ok=True)

    # -- resume ---------------------------------------------------------------

    def _resume(self) -> None:
        records = self.store.candidates(self.run_id)
        self.proposed = len(records)
        self.usage = self.store.usage_totals(self.run_id)
        for rec in records:
            if rec.proposer == "inductor":
                self.used_once.add("inductor")
            if rec.source and rec.verdict:
                self._remember(rec.id, rec.source, rec.verdict, rec.speedup_vs_eager,
                               _stored_feedback(rec.result_json), rec.island)
        pending = self.store.unjudged(self.run_id)
        self.on_event(Event("resumed", note=f"{len(records)} proposals on record, {len(pending)} to judge"))
        for rec in pending:
            self._judge(rec.id, rec.source, rec.proposer, rec.stage, rec.island)

    # -- budgets --------------------------------------------------------------

    def _out_of_budget(self) -> str:
        c = self.cfg
        if self.proposed >= c.budget:
            return f"proposal budget of {c.budget} spent"
        if c.time_limit_s is not None and time.monotonic() - self.t0 >= c.time_limit_s:
            return f"time limit of {c.time_limit_s:g} s reached"
        if c.max_tokens is not None and self.usage.input_tokens + self.usage.output_tokens >= c.max_tokens:
            return f"token budget of {c.max_tokens} spent"
        if c.max_cost_usd is not None and self.usage.cost_usd >= c.max_cost_usd:
            return f"cost budget of ${c.max_cost_usd:g} spent"
        return ""

    # -- choosing what to propose ---------------------------------------------

    def _eligible(self, stage: str) -> list[WeightedProposer]:
        out = []
        for wp in self.proposers:
            name = wp.proposer.name
            if self.idle.get(name, 0) >= MAX_IDLE_FAILURES:
                continue
            if name == "inductor" and (stage != "translate" or name in self.used_once):
                continue
            if name == "mutate" and stage != "optimize":
                continue
            out.append(wp)
        return out

    def _plan(self) -> tuple[WeightedProposer, ProposalRequest, int] | None:
        """Pick a stage, a proposer and parents; None when no proposer can go on."""
        for stage in self._stages():
            eligible = self._eligible(stage)
            if not eligible:
                continue
            # Parents are drawn at random: one whose neighbourhood a proposer has used up
            # must not end the search while other members still have something to offer.
            for _ in range(PARENT_DRAWS if stage in ("optimize", "crossover") else 1):
                request, island = self._request(stage)
                if request is None:
                    break
                # A proposer that can tell it has nothing for this request (mutation of a kernel
                # with no tunable literal) is skipped rather than spending a proposal on a failure.
                choices = [wp for wp in eligible if getattr(wp.proposer, "applicable", lambda r: True)(request)]
                if choices:
                    wp = self.rng.choices(choices, weights=[c.weight for c in choices])[0]
                    return wp, request, island
        return None

    def _stages(self) -> list[str]:
        if len(self.population) == 0:
            repairable = [r for r in self.rejected if r[1] < REPAIRS_PER_KERNEL and r[0].feedback]
            return ["repair", "translate"] if repairable and self.rng.random() < 0.7 else ["translate", "repair"]
        if self.rng.random() < self.cfg.crossover_rate:
            return ["crossover", "optimize"]
        return ["optimize", "crossover", "translate"]

    def _request(self, stage: str) -> tuple[ProposalRequest | None, int]:
        best = self.population.best()
        base = dict(task_source=self.task_source, task_name=self.task_name, target=self.cfg.target,
                    device=self.cfg.device, stage=stage, device_facts=self.cfg.device_facts,
                    best_speedup=best.speedup if best else None, seed=self.rng.randrange(2**31))
        if stage == "translate":
            examples = arch.retrieve(self.task_source, self._archive())
            return ProposalRequest(**base, examples=examples), self.population.island_for_new(self.rng)
        if stage == "repair":
            open_ = [i for i, r in enumerate(self.rejected) if r[1] < REPAIRS_PER_KERNEL and r[0].feedback]
            if not open_:
                return None, 0
            i = open_[-1]
            parent, tries = self.rejected[i]
            self.rejected[i] = (parent, tries + 1)
            return ProposalRequest(**base, parents=(parent,)), self.population.island_for_new(self.rng)
        if stage == "optimize":
            m = self.population.select(self.rng, self.rng.randrange(len(self.population.islands)))
            return (ProposalRequest(**base, parents=(_parent(m),)), m.island) if m else (None, 0)
        pair = self.population.pair(self.rng)
        if pair is None:
            return None, 0
        return ProposalRequest(**base, parents=(_parent(pair[0]), _parent(pair[1]))), pair[0].island

    def _archive(self) -> list[Any]:
        try:
            return list(self.store.archive(self.cfg.device, exclude_task_hash=self.task_hash))
        except Exception:  # noqa: BLE001 - examples are a help, never a reason to stop
            return []

    # -- the loop -------------------------------------------------------------

    def run(self) -> str:
        """Propose and judge until a budget runs out; returns the run id."""
        self.store.set_run_status(self.run_id, "running")
        pool = ThreadPoolExecutor(max(1, self.cfg.parallel), thread_name_prefix="kw-propose")
        # The real judge starts each verdict's workers while the previous verdict wraps up.
        # Every verdict is of one task: its reference worker serves the next (judge.pairs).
        self.pairs = PairPool(keep_reference=True) if self.judge is verify_files else None
        if self.pairs is not None:
            # The first verdict's workers start while the first proposals are made (Inductor's
            # capture is one compiler at a time: on two cores the other is mostly free). On the
            # CPU they set up at once; on a GPU only their imports run now, since the setup's
            # launch-hold calibration spins every SM and Inductor's autotuner may be timing.
            spec = pair_spec(self.cfg.judge, self.cfg.device)
            (self.pairs.spawn_ahead if self.cfg.device == "cuda" else self.pairs.refill)(spec)
        try:
            if self.resuming:
                self._resume()
            self._drive(pool)
        except BaseException:
            # Ctrl-C must not wait for LLM calls in flight; what they return is lost, what
            # was stored stays, and --resume carries on from there.
            pool.shutdown(wait=False, cancel_futures=True)
            self.store.set_run_status(self.run_id, "interrupted", self._best_id())
            raise
        finally:
            if self.pairs is not None:
                self.pairs.close()
        pool.shutdown(wait=True)
        self.store.set_run_status(self.run_id, "finished", self._best_id())
        self.on_event(Event("stopped", note=self.stop_reason))
        return self.run_id

    def _drive(self, pool: ThreadPoolExecutor) -> None:
        in_flight: dict[Future[Any], None] = {}
        try:
            while True:
                while len(in_flight) < max(1, self.cfg.parallel) and not self._out_of_budget():
                    plan = self._plan()
                    if plan is None:
                        break
                    wp, request, island = plan
                    if wp.proposer.name == "inductor":
                        self.used_once.add("inductor")
                    self.proposed += 1
                    in_flight[pool.submit(self._produce, wp.proposer, request, island)] = None
                if not in_flight:
                    self.stop_reason = self._out_of_budget() or "no proposer has anything left to try"
                    return
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for fut in done:
                    del in_flight[fut]
                    item = fut.result()
                    if item is not None:
                        self._judge(*item)
        finally:
            for fut in in_flight:
                fut.cancel()

    def _produce(self, proposer: Proposer, request: ProposalRequest,
                 island: int) -> tuple[str, str, str, str, int] | None:
        """Runs on the pool: propose, store the proposal, build it ahead of judging."""
        try:
            proposal = proposer.propose(request)
        except Exception as exc:  # noqa: BLE001 - a broken proposer is a recorded failure, not a crash
            proposal = Proposal(proposer.name, None, failure=f"the proposer crashed: {type(exc).__name__}: {exc}",
                                parent_ids=tuple(p.candidate_id for p in request.parents))
        cid = self.store.add_candidate(
            self.run_id, source=proposal.source, proposer=proposal.proposer, stage=request.stage,
            prompt=proposal.prompt, reply=proposal.reply, note=proposal.note, failure=proposal.failure,
            parent_ids=proposal.parent_ids, generation=_generation(request), island=island)
        if proposal.usage.calls:
            self.store.record_usage(self.run_id, cid, proposal.proposer, proposal.usage)
        with self._lock:
            self.usage = self.usage + proposal.usage
            self.idle[proposal.proposer] = 0 if proposal.source else self.idle.get(proposal.proposer, 0) + 1
        if proposal.source is None:
            self.on_event(Event("no_source", cid, proposal.proposer, request.stage, note=proposal.failure or ""))
            return None
        self.on_event(Event("proposed", cid, proposal.proposer, request.stage, note=proposal.note))
        form = forms.detect(proposal.source)
        if self.cfg.prebuild and form is not None and not form.fast \
                and self.store.verdict_for_source(self.task_hash, self.cfg.device,
                                                  content_hash(proposal.source)) is None:
            prebuild(proposal.source, f"{cid}.py", self.cfg.device)
        return cid, proposal.source, proposal.proposer, request.stage, island

    # -- judging --------------------------------------------------------------

    def _judge(self, cid: str, source: str, proposer: str, stage: str, island: int) -> None:
        prior = self.store.verdict_for_source(self.task_hash, self.cfg.device, content_hash(source))
        if prior is not None:
            self.store.record_verdict(cid, verdict=prior.verdict, reasons=prior.reasons,
                                      speedup_vs_eager=prior.speedup_vs_eager,
                                      speedup_vs_compile=prior.speedup_vs_compile,
                                      candidate_ms=prior.candidate_ms, eager_ms=prior.eager_ms,
                                      compile_ms=prior.compile_ms, result_json=prior.result_json,
                                      judge_seconds=0.0)
            # Known, but new to this run: it joins the population (or the repair list) as if just
            # judged, so a second run on the task mutates Inductor's kernel instead of stopping.
            self._remember(cid, source, prior.verdict, prior.speedup_vs_eager,
                           _stored_feedback(prior.result_json), island)
            self.on_event(Event("duplicate", cid, proposer, stage, prior.verdict, note="judged before"))
            return
        path = self.work / f"{cid}.py"
        path.write_text(source)
        t0 = time.perf_counter()
        try:
            result = (verify_files(self.task_path, path, self.cfg.judge, pool=self.pairs) if self.pairs is not None
                      else self.judge(self.task_path, path, self.cfg.judge))
        except TaskError:
            raise  # the task itself is broken: no candidate can be judged
        except InputError as exc:
            result = _error_result("import", str(exc))
        except Exception as exc:  # noqa: BLE001 - a judge bug rejects this candidate, never the run
            # "error", not "rejected": the store never reuses an error verdict, so this
            # source is judged again by a later run once the judge is fixed.
            result = _error_result("judge_error", f"{type(exc).__name__}: {exc}", verdict="error")
        seconds = time.perf_counter() - t0
        fb = feedback(result)
        if result.accepted and self.cfg.device == "cuda" and self.cfg.ncu and not self.cfg.judge.confine \
                and ncu.available():
            # Nsight Compute says whether the kernel is memory- or compute-bound: feedback only.
            summary = ncu.profile(self.task_path, path, buildcache.build_dir(source, self.cfg.device))
            fb = f"{fb}\n{summary}" if summary else fb
        t = result.timing
        self.store.record_verdict(
            cid, verdict=result.verdict, reasons=[{"check": r.check, "detail": r.detail} for r in result.reasons],
            speedup_vs_eager=t.speedup_vs_eager if t else None,
            speedup_vs_compile=t.speedup_vs_compile if t else None,
            candidate_ms=t.candidate_ms.median if t and t.candidate_ms else None,
            eager_ms=t.eager_ms.median if t and t.eager_ms else None,
            compile_ms=t.compile_ms.median if t and t.compile_ms else None,
            result_json=json.dumps({"result": result.to_dict(), "feedback": fb}, allow_nan=False),
            judge_seconds=seconds)
        speed = t.speedup_vs_eager if t else None
        self._remember(cid, source, result.verdict, speed, fb, island)
        self.on_event(Event("judged", cid, proposer, stage, result.verdict,
                            result.reasons[0].check if result.reasons else "", speed))

    def _remember(self, cid: str, source: str, verdict: str, speedup: float | None, fb: str, island: int) -> None:
        if verdict == "accepted":
            self.population.add(Member(cid, source, speedup or 0.0, island, fb))
        else:
            self.rejected.append((Parent(cid, source, verdict, speedup, fb), 0))
            del self.rejected[:-8]  # only recent failures are worth repairing

    def _best_id(self) -> str | None:
        best = self.population.best()
        return best.candidate_id if best else None


def _parent(m: Member) -> Parent:
    return Parent(m.candidate_id, m.source, "accepted", m.speedup, m.feedback)


def _generation(request: ProposalRequest) -> int:
    return 0 if request.stage == "translate" else 1


def _stored_feedback(result_json: str | None) -> str:
    try:
        return str(json.loads(result_json or "{}").get("feedback", ""))
    except ValueError:
        return ""


def _error_result(check: str, detail: str, verdict: str = "rejected") -> JudgeResult:
    from kernelwright.judge.result import Reason

    return JudgeResult(verdict, [Reason(check, detail)], [], None, [], {})


def _config_json(cfg: SearchConfig, proposers: list[WeightedProposer]) -> dict[str, Any]:
    return {"target": cfg.target, "budget": cfg.budget, "time_limit_s": cfg.time_limit_s,
            "max_tokens": cfg.max_tokens, "max_cost_usd": cfg.max_cost_usd, "parallel": cfg.parallel,
            "islands": cfg.islands, "crossover_rate": cfg.crossover_rate, "seed": cfg.seed,
            "proposers": [[wp.proposer.name, wp.weight] for wp in proposers]}
