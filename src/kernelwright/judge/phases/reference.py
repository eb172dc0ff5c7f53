"""Phase 2: the task in the reference worker: its model, the input sets and their references (trusted side)."""

from __future__ import annotations

from typing import Any, Callable

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge._support import InputSet, fresh_seed
from kernelwright.judge.phases.state import JudgementState
from kernelwright.sandbox import channel, limits, quiet
from kernelwright.sandbox.codec import decode_meta
from kernelwright.sandbox.process import Worker
from kernelwright.task.metadata import TaskError


class ReferencePhase(JudgementState):
    """Load the task, make every planned input set with its references, check the task is not degenerate."""

    def _load_reference(self, ref: Worker, weight_seed: int) -> tuple[dict[str, Any], list[bytes]]:
        # Building the task's model is CPU work (a 4 GiB nn.Linear of KernelBench's level 2 is
        # initialised for seconds): background work, stopped while anything here times.
        with quiet.background(ref):
            reply, blobs = self._ref_request(ref, P.LoadReferenceRequest(
                op=P.Op.LOAD, source=self.task.source, path=str(self.task.path.resolve()),
                weight_seed=weight_seed, eval_mode=self.meta.eval_mode), timeout=self.opts.import_timeout_s)
        self.device_free = reply.get("device_free")
        return reply, blobs

    def _reference_room(self, ref: Worker) -> int:
        """The memory the references may live in: on CUDA (where the reference worker keeps them, and
        its staged inputs) half the GPU's free memory, the candidate's worker holding its own sets
        and outputs beside them; else the memory available here, within that worker's limit."""
        if self.cuda and isinstance(self.device_free, int) and self.device_free > 0:
            return self.device_free // 2
        return min(limits.machine_memory()[1], ref.config.memory_bytes or limits.machine_memory()[1])

    def _plan_sets(self) -> list[tuple[str, str, dict[str, Any] | None, bool]]:
        """(kind, distribution, variant, timing) for every set: trials, extra shapes, timing sets."""
        dists = self.meta.distributions
        n = max(self.opts.trials, C.MIN_TRIALS, len(dists))
        plan = [("trial", dists[i % len(dists)], None, False) for i in range(n)]
        plan += [("trial", "task", shape, False) for shape in self.meta.shapes]
        if self.opts.timing:
            plan += [("timing", "task", None, True)] * C.TIMING_INPUT_SETS
        return plan

    def _make_sets(self, ref: Worker, made_warm: Callable[[InputSet], None] | None = None) -> None:
        """Make every planned set in the reference; `made_warm(set)` once the warm-up set exists.

        The reference worker keeps each trial set's references (native and float64 outputs)
        until the candidate is checked on it. Where they would not all fit in their share of
        the memory they live in (`_reference_room`), later trial sets are planned but made
        only when used (`InputSet.deferred`), two at a time at most; a task whose two sets
        cannot fit at all is a task error with the numbers.
        """
        budget = C.TIMING_INPUT_BYTES_CAP
        timing_refs = 0
        room = self._reference_room(ref)
        self.gpu_room = room if self.cuda and self.device_free else 0
        held_budget = self.opts.reference_memory_bytes
        if held_budget is None:
            held_budget = int(C.REFERENCE_HELD_SHARE * room)
        held, per_set, deferred = 0, 0, 0
        self.hold_bytes = _hold_bytes(held_budget, room)
        # The reference worker keeps every set it made staged until the set is relayed: its
        # inputs, beside a run's own needs, must stay within a share of the worker's limit.
        staged, in_bytes, made_trials, why = 0, 0, 0, set()
        # CUDA: what the reference worker holds on the GPU after its last set, and the most its
        # making of a set needed above that (the runs' temporaries), as that worker measured them.
        resident, temporaries = 0, 0
        staged_cap = int(C.REFERENCE_STAGED_SHARE * (min(ref.config.memory_bytes, room) if self.cuda
                                                     else ref.config.memory_bytes))
        out_bytes = 0
        for set_id, (kind, dist, variant, is_timing) in enumerate(self._plan_sets()):
            least = self._least_timing_sets(in_bytes, out_bytes, room)
            if is_timing and budget <= 0 and sum(1 for s in self.sets.values() if s.variant == "timing") >= least:
                continue
            # Timed calls run on perturbed inputs, each checked against a reference made for
            # exactly those inputs, so a timing set's own outputs are needed only once (for
            # the degenerate-task check) or when the task turns perturbation off.
            want_ref = not is_timing or not self.meta.perturb_timing_inputs or timing_refs == 0
            seed = fresh_seed()
            if not is_timing:
                # Room is kept for the timing sets still to come.
                reserve = least * in_bytes if self.opts.timing else 0
                over_judge = per_set and held + per_set > held_budget and held >= 2 * per_set
                # On the CPU a set's references live beside its inputs, in the same worker's memory.
                need = in_bytes + (0 if self.cuda else per_set)
                over_worker = in_bytes and staged + need + reserve > staged_cap and made_trials >= 2
                # On the GPU everything the reference worker holds shares its half: the next set,
                # its references, the timing sets still to come and the next run's temporaries.
                over_gpu = (self.cuda and resident > 0 and made_trials >= 1
                            and resident + in_bytes + per_set + reserve + (per_set if self.opts.timing else 0)
                            + temporaries > room)
                if over_judge or over_worker or over_gpu:
                    why.add("outputs" if over_judge else "inputs" if over_worker else "gpu")
                    self.sets[set_id] = InputSet(set_id, dist, S.variant_name(variant), 0, deferred=True,
                                                 seed=seed, shape_variant=variant)
                    deferred += 1
                    continue
            timing_refs += is_timing and want_ref
            reply = self._make_set_request(ref, set_id, seed, dist, variant, want_ref)
            self._check_message_size(int(reply["nbytes"]))
            if "resident" in reply:
                resident = int(reply["resident"])
                temporaries = max(temporaries, int(reply.get("peak", resident)) - resident)
            staged += int(reply["nbytes"])
            in_bytes = in_bytes or int(reply["nbytes"])
            made_trials += not is_timing
            if not want_ref:
                self.sets[set_id] = InputSet(set_id, dist, "timing", int(reply["nbytes"]), seed=seed,
                                             fingerprint=reply.get("fingerprint"),
                                             on_device=bool(reply.get("on_device")))
                budget -= int(reply["nbytes"])
                continue
            s = self._take_references(InputSet(set_id, dist, "timing" if is_timing else S.variant_name(variant),
                                               int(reply["nbytes"]), seed=seed, shape_variant=variant), reply)
            if set_id == 0:
                per_set = int(reply.get("held_bytes", 0))
                out_bytes = int(reply.get("out_bytes", 0))
                self._check_fits(per_set, held_budget, room)
            held += int(reply.get("held_bytes", 0))
            staged += 0 if self.cuda else int(reply.get("held_bytes", 0))
            budget -= s.nbytes if is_timing else 0
            self.sets[set_id] = s
            if made_warm is not None and s.variant == "default" and self._warm_set() == set_id:
                made_warm(s)
        if deferred:
            limits_hit = []
            if "outputs" in why:
                limits_hit.append(f"references take {_size(per_set)} a set, and the reference worker holds at "
                                  f"most {_size(held_budget)} of them {'on the GPU' if self.cuda else 'on this machine'}")
            if "gpu" in why:
                limits_hit.append(f"the reference worker holds {_size(resident)} on the GPU, and making a set "
                                  f"needs {_size(in_bytes + per_set + temporaries)} more at its peak, of the "
                                  f"{_size(room)} it may use (half the GPU's free memory; the candidate's worker "
                                  "has the rest)")
            if "inputs" in why:
                limits_hit.append(f"inputs take {_size(in_bytes)} a set, and the reference worker stages at most "
                                  f"{_size(staged_cap)} of them (with their references, on the CPU) within "
                                  + ("half the GPU's free memory" if self.cuda else f"its {_size(ref.config.memory_bytes)}"))
            self.findings.append(
                f"large {' and '.join(sorted(why))}: the judge makes {len(self.sets) - deferred} input sets ahead "
                f"and the other {deferred} trial sets each just before it is used ({'; '.join(limits_hit)}); "
                "the dependence check uses the sets made ahead")

    def _least_timing_sets(self, in_bytes: int, out_bytes: int, room: int) -> int:
        """How many timing sets are made however large they are: two, or one on a GPU where two would
        not fit the candidate's worker's half beside what it holds anyway (the warm-up set, a trial
        set and its checked copy, an output and its snapshot). Every timed call's inputs are
        perturbed either way, and a set that size is far larger than any cache. Such a task's
        trial sets are also run in place (`crowded`): no checked copy beside them."""
        if self.cuda and self.gpu_room and 5 * in_bytes + 2 * out_bytes > room:
            if not self._one_timing_set_said:
                self._one_timing_set_said = self.crowded = True
                self.findings.append(
                    f"large inputs: one timing set, not two, and each trial set run in place rather than on a copy "
                    f"(a set takes {_size(in_bytes)}; the candidate's worker could not hold a second beside its "
                    f"warm-up and trial sets within {_size(room)}, its half of the GPU's free memory)")
            return 1
        return 2

    def _make_set_request(self, ref: Worker, set_id: int, seed: int, dist: str, variant: dict[str, Any] | None,
                          want_ref: bool) -> dict[str, Any]:
        reply, _ = self._ref_request(ref, P.MakeSetRequest(
            op=P.Op.MAKE_SET, set_id=set_id, seed=seed, distribution=dist, variant=variant,
            reference=want_ref, float64=self.float64, hold_bytes=self.hold_bytes,
            memory_bytes=ref.config.memory_bytes, room_bytes=self.gpu_room, fingerprint=self.local_inputs,
            rtol=self.meta.rtol,
            atol=self.meta.atol, degenerate=variant is None))
        return reply

    def _take_references(self, s: InputSet, reply: dict[str, Any]) -> InputSet:
        """Fill `s` from a MAKE_SET reply (and the findings only set 0 gives): the references
        themselves stay in the reference worker."""
        s.fingerprint, s.on_device = reply.get("fingerprint"), bool(reply.get("on_device"))
        s.outputs = decode_meta(reply["outputs"])
        s.held, s.has_ref64 = True, bool(reply.get("has_ref64"))
        s.slack = [float(f) for f in reply.get("slack") or []]
        s.zeros_pass = reply.get("zeros_pass")
        pending = S.finite_or_none(reply.get("pending_ms"))
        if pending is not None:
            self.task_pending.append(pending)
        probe = S.finite_or_none(reply.get("probe_ms"))
        if probe is not None:
            self.task_probe.append(probe)
        # Said once: for set 0, or for the first set too large for one (a larger shape variant).
        if not s.has_ref64 and (s.set_id == 0 or (reply.get("ref64_skipped") and self.float64)):
            self.findings.append("no float64 reference (" + reply.get("ref64_error", "?")
                                 + "): compared against the task's own precision")
        if reply.get("ref64_skipped"):
            self.float64 = False  # every later set alike, rather than some with and some without
        ref64_s = S.finite_or_none(reply.get("ref64_s"))
        if self.float64 and ref64_s is not None and ref64_s > C.FLOAT64_RUN_BUDGET_S:
            # Some ops have only slow float64 kernels (convolutions on the GPU: minutes a set on
            # KernelBench's level 2). This set keeps its float64 reference, later ones use the
            # task's precision (the reference worker's own figure only makes the judge do less).
            self.float64 = False
            self.findings.append(
                f"float64 reference on the first set only: its float64 run took {ref64_s:.1f} s (the task's own "
                f"{S.finite_or_none(reply.get('native_s')) or 0:.2f} s), over the {C.FLOAT64_RUN_BUDGET_S:g} s "
                "a set may take; later sets are compared against the task's own precision")
        if reply.get("mutated") and not self.meta.mutates_inputs and s.set_id == 0:
            self.findings.append("the reference itself changes its inputs; declare mutates_inputs "
                                 "in the task metadata")
        self._allow_outputs(int(reply.get("out_bytes", 0)))
        return s

    def _check_fits(self, per_set: int, held_budget: int, room: int) -> None:
        """A task error, with the numbers, when two sets' references cannot fit in this machine."""
        if 2 * per_set > _hold_bytes(held_budget, room):
            where = "on the GPU" if self.cuda and self.device_free else "of memory available"
            raise TaskError(
                f"the task does not fit this machine: each input set's outputs take "
                f"{_size(per_set)}{'' if self.float64 else ' (without float64 references)'}, and the reference "
                f"worker must hold two sets at a time, {_size(2 * per_set)}, with {_size(room)} {where}; use "
                "smaller shapes in get_inputs, or a machine with more memory")

    def _make_deferred(self, ref: Worker, s: InputSet) -> None:
        """Make a deferred set's inputs and references again from its seed (in the reference worker)."""
        reply = self._make_set_request(ref, s.set_id, s.seed, s.distribution, s.shape_variant, True)
        s.nbytes = int(reply["nbytes"])
        self._check_message_size(s.nbytes)
        self._take_references(s, reply)

    def _check_message_size(self, nbytes: int) -> None:
        """A task error, with the sizes, before a set whose inputs cannot pass as one message
        here is relayed (rather than a refused frame in the middle of the relay)."""
        if nbytes > channel.MAX_FRAME:
            raise TaskError("the task does not fit this machine: one of its input sets or outputs is too large to "
                            f"pass between processes here (an input set of {_size(nbytes)}, at most "
                            f"{_size(channel.MAX_FRAME)} a message)")

    def _check_degenerate(self, ref: Worker) -> None:
        trials = [s for s in self.sets.values() if s.variant in ("default", "timing") and s.held]
        warnings = []
        if trials and all(s.zeros_pass for s in trials):
            warnings.append("an all-zero output would pass this task's tolerance")
        same = [s for s in trials if s.distribution == "task"]
        if len(same) >= 2:
            reply, _ = self._ref_request(ref, P.DependenceRequest(op=P.Op.DEPENDENCE,
                                                                  set_ids=[same[0].set_id, same[1].set_id]))
            if float(reply["change"]) < C.DEGENERATE_RELATIVE_CHANGE:
                warnings.append("the reference output barely depends on its inputs")
        if warnings and self.opts.strict_task:
            raise TaskError("degenerate task: " + "; ".join(warnings))
        self.findings += [f"degenerate task: {w}" for w in warnings]

    def _forget_timing_references(self, ref: Worker) -> None:
        """Drop the timing sets' references once the degenerate check has used them: each timed call
        runs on perturbed inputs and is checked against a reference made for those, so nothing
        compares against them again (unless the task turns perturbation off). On a large task
        that is one output's worth of the reference worker's memory for every trial set after."""
        if not self.meta.perturb_timing_inputs:
            return
        held = [s for s in self.sets.values() if s.variant == "timing" and s.held]
        if held:
            self._ref_request(ref, P.ForgetRequest(op=P.Op.FORGET, set_ids=[s.set_id for s in held]))
            for s in held:
                s.held = False


def _hold_bytes(held_budget: int, room: int) -> int:
    """The most two sets' references may take: the budget, or a larger share of `room` when they must."""
    return max(held_budget, int(C.REFERENCE_HELD_SHARE_MAX * room))


def _size(n: float) -> str:
    """Bytes as GiB, MiB or KiB, whichever reads best."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n / 1024:.1f} KiB"
