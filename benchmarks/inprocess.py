"""In-process timing: every contender per scenario, interleaved round by round, medians of rounds.

Each round runs one batch of requests per contender, in a fresh random order, so a noisy
second on this 2-core machine lands on every contender alike instead of on one of them. A
contender's cost is the median over rounds of its mean time per request; its *overhead* is the
median over rounds of (its time - its floor's time in the same round), a paired difference that
cancels drift.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import statistics
import time
from typing import Any

from .apps import SCENARIOS, seed_path
from .contenders import Built, Contender, Context, Unavailable
from .drivers import AsgiClient, Client, WsgiClient

__all__ = ["Measured", "Runner", "build_all", "make_runner", "measure"]


@dataclasses.dataclass
class Runner:
    """A contender's clients for one scenario, ready to send batches."""

    contender: Contender
    built: Built
    scenario: str
    clients: list[Client]
    index: int = 0

    async def batch(self, n: int) -> float:
        """Send ``n`` requests round-robin over the clients; seconds taken."""
        path = "/" + self.scenario
        clients = self.clients
        k = len(clients)
        i = self.index
        kind = self.contender.kind
        if kind == "raw":
            call = self.built.app
            if self.contender.name.endswith("(sync)"):
                start = time.perf_counter()
                for _ in range(n):
                    call()
                return time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(n):
                await call()
            return time.perf_counter() - start
        if kind == "asgi":
            start = time.perf_counter()
            for _ in range(n):
                status = await clients[i % k].get(path)  # type: ignore[attr-defined]
                if status != 200:
                    raise RuntimeError(f"{self.contender.name}: {path} answered {status}")
                i += 1
            elapsed = time.perf_counter() - start
        else:
            start = time.perf_counter()
            for _ in range(n):
                status = clients[i % k].get(path)  # type: ignore[attr-defined]
                if status != 200:
                    raise RuntimeError(f"{self.contender.name}: {path} answered {status}")
                i += 1
            elapsed = time.perf_counter() - start
        self.index = i
        return elapsed


async def build_all(
    contenders: list[Contender], ctx: Context
) -> tuple[dict[str, Built], dict[str, str]]:
    """Build every contender; returns the built ones and, for the others, why not."""
    built: dict[str, Built] = {}
    missing: dict[str, str] = {}
    for contender in contenders:
        try:
            built[contender.name] = await contender.build(ctx)
        except Unavailable as exc:
            missing[contender.name] = str(exc)
        except Exception as exc:  # a peer's bug or a server refusing: report it, keep going
            missing[contender.name] = f"failed to build: {type(exc).__name__}: {exc}"
    return built, missing


async def make_runner(contender: Contender, built: Built, scenario: str, clients: int) -> Runner:
    """A runner whose ``clients`` visitors each hold a seeded session of ``scenario``."""
    made: list[Client] = []
    if contender.kind == "raw":
        return Runner(contender, built, scenario, [Client()])
    for _ in range(clients):
        if contender.kind == "asgi":
            client: Client = AsgiClient(built.app)
            status = await client.get(seed_path(scenario))  # type: ignore[attr-defined]
        else:
            client = WsgiClient(built.app)
            status = client.get(seed_path(scenario))  # type: ignore[attr-defined]
        if status != 200:
            raise RuntimeError(f"{contender.name}: seeding answered {status}")
        made.append(client)
    return Runner(contender, built, scenario, made)


@dataclasses.dataclass
class Measured:
    """The timing of one contender in one scenario (microseconds per request)."""

    name: str
    scenario: str
    rounds: list[float]
    median: float
    overhead: float | None = None
    overhead_iqr: float | None = None


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


async def measure(
    contenders: list[Contender],
    built: dict[str, Built],
    *,
    rounds: int,
    batch_seconds: float,
    clients: int,
    failures: dict[str, str],
    progress: Any = print,
) -> dict[tuple[str, str], Measured]:
    """Time every built contender in every scenario; keyed by ``(name, scenario)``."""
    results: dict[tuple[str, str], Measured] = {}
    rng = random.Random(7)
    for scenario in SCENARIOS:
        runners: list[Runner] = []
        for contender in contenders:
            if contender.name not in built or contender.name in failures:
                continue
            if scenario in contender.refuses:
                continue
            try:
                runner = await make_runner(contender, built[contender.name], scenario, clients)
                # Warm up, and size the batch so that one batch takes about batch_seconds.
                elapsed = await runner.batch(20)
                runner_n = max(5, min(5000, round(batch_seconds / max(elapsed / 20, 1e-7))))
            except Exception as exc:
                failures[contender.name] = f"failed in {scenario}: {type(exc).__name__}: {exc}"
                continue
            runners.append(runner)
            runner.batch_n = runner_n  # type: ignore[attr-defined]
        samples: dict[str, list[float]] = {r.contender.name: [] for r in runners}
        started = time.perf_counter()
        for _ in range(rounds):
            rng.shuffle(runners)
            gc.collect()
            for runner in list(runners):
                n = runner.batch_n  # type: ignore[attr-defined]
                try:
                    elapsed = await runner.batch(n)
                except Exception as exc:
                    failures[runner.contender.name] = f"failed in {scenario}: {exc}"
                    runners.remove(runner)
                    continue
                samples[runner.contender.name].append(elapsed / n * 1e6)
        progress(
            f"  in-process {scenario}: {len(runners)} contenders x {rounds} rounds "
            f"in {time.perf_counter() - started:.1f}s"
        )
        by_name = {c.name: c for c in contenders}
        for name, values in samples.items():
            if name in failures or not values:
                continue
            results[(name, scenario)] = Measured(name, scenario, values, statistics.median(values))
        for (name, sc), measured in results.items():
            if sc != scenario:
                continue
            floor = by_name[name].floor
            if floor is None or (floor, scenario) not in results:
                continue
            base = results[(floor, scenario)].rounds
            diffs = [a - b for a, b in zip(measured.rounds, base, strict=False)]
            measured.overhead = statistics.median(diffs)
            lo, hi = _quartiles(diffs)
            measured.overhead_iqr = hi - lo
    return results
