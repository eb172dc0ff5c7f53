"""The population: verified kernels on a few islands, selected by verified speed.

Islands keep diversity: each evolves on its own, and now and then the best kernel of
one island migrates to the next, so one early winner cannot crowd out every other
idea. Only accepted kernels ever enter the population.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ISLAND_SIZE = 6  # kernels kept per island
MIGRATE_EVERY = 8  # accepted kernels between migrations
TOURNAMENT = 2


@dataclass(frozen=True)
class Member:
    """An accepted kernel and its verified speedup over eager PyTorch."""

    candidate_id: str
    source: str
    speedup: float
    island: int
    feedback: str = ""


class Population:
    """Islands of accepted kernels."""

    def __init__(self, islands: int = 2, size: int = ISLAND_SIZE) -> None:
        self.islands: list[list[Member]] = [[] for _ in range(max(1, islands))]
        self.size = size
        self._added = 0

    def __len__(self) -> int:
        return sum(len(i) for i in self.islands)

    def add(self, member: Member, migrant: bool = False) -> None:
        """Keep the member if it is among its island's fastest; migrate now and then.

        Migrants do not count toward the next migration.
        """
        island = self.islands[member.island % len(self.islands)]
        if any(m.source == member.source for m in island):
            return
        island.append(member)
        island.sort(key=lambda m: -m.speedup)
        del island[self.size:]
        if migrant:
            return
        self._added += 1
        if self._added % MIGRATE_EVERY == 0:
            self._migrate()

    def _migrate(self) -> None:
        n = len(self.islands)
        bests = [isl[0] for isl in self.islands if isl]
        for m in bests:
            target = (m.island + 1) % n
            if target != m.island % n:
                self.add(Member(m.candidate_id, m.source, m.speedup, target, m.feedback), migrant=True)

    def best(self) -> Member | None:
        """The fastest kernel of all islands."""
        everyone = [m for isl in self.islands for m in isl]
        return max(everyone, key=lambda m: m.speedup) if everyone else None

    def island_for_new(self, rng: random.Random) -> int:
        """An island for a kernel with no parent: the emptiest one."""
        sizes = [len(i) for i in self.islands]
        low = min(sizes)
        return rng.choice([i for i, s in enumerate(sizes) if s == low])

    def select(self, rng: random.Random, island: int | None = None) -> Member | None:
        """Tournament selection by speedup, within an island when it has members."""
        pool = self.islands[island % len(self.islands)] if island is not None else []
        if not pool:
            pool = [m for isl in self.islands for m in isl]
        if not pool:
            return None
        contenders = rng.sample(pool, k=min(TOURNAMENT, len(pool)))
        return max(contenders, key=lambda m: m.speedup)

    def pair(self, rng: random.Random) -> tuple[Member, Member] | None:
        """Two different parents for crossover, from different islands when possible."""
        everyone = [m for isl in self.islands for m in isl]
        distinct = {m.source: m for m in everyone}
        if len(distinct) < 2:
            return None
        a = self.select(rng, rng.randrange(len(self.islands))) or everyone[0]
        others = [m for m in distinct.values() if m.source != a.source]
        far = [m for m in others if m.island != a.island] or others
        b = max(rng.sample(far, k=min(TOURNAMENT, len(far))), key=lambda m: m.speedup)
        return a, b
