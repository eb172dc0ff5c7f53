"""The SQLite store of runs, candidates, verdicts and LLM usage.

    with Store(default_store_path()) as store:
        run_id = store.create_run(path, source, "gelu", "cuda", {"budget": 40})
        cid = store.add_candidate(run_id, source=src, proposer="inductor", stage="translate")
        store.record_verdict(cid, verdict="accepted", reasons=[], ...)
"""

from __future__ import annotations

import os
from pathlib import Path

from kernelwright.store.db import Store, StoreError, UnknownCandidate, UnknownRun, content_hash
from kernelwright.store.records import (
    RUN_STATUSES,
    VERDICTS,
    ArchiveEntry,
    CandidateRecord,
    CrowningRecord,
    RunRecord,
    VerdictRecord,
)
from kernelwright.store.schema import SchemaTooNew

__all__ = [
    "RUN_STATUSES", "VERDICTS", "ArchiveEntry", "CandidateRecord", "CrowningRecord", "RunRecord", "SchemaTooNew",
    "Store", "StoreError", "UnknownCandidate", "UnknownRun", "VerdictRecord", "content_hash",
    "default_store_path",
]


def default_store_path() -> Path:
    """$KERNELWRIGHT_STORE, else kernelwright.db under $XDG_DATA_HOME (~/.local/share) /kernelwright.

    Unlike the cache, the store is data: deleting it loses run history, so it lives
    under the data directory, not the cache directory.
    """
    explicit = os.environ.get("KERNELWRIGHT_STORE")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "kernelwright" / "kernelwright.db"
