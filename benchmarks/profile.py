"""``python -m benchmarks --profile``: where sessio's per-request time goes, by pyinstrument.

Profiles the in-process requests of the sessio contenders that build (the integration when it
is merged, the manager-level glue otherwise) for each scenario, and writes one call tree per
contender and scenario to ``benchmarks/out/profile-<name>-<scenario>.txt``; the top of each is
printed. Only sessio's and the framework's frames are kept, so the tree reads as "middleware ->
manager -> session/codec -> store".
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from .apps import SCENARIOS
from .contenders import Context, by_name
from .env import HERE
from .inprocess import make_runner
from .services import services

__all__ = ["main"]

TARGETS = (
    ("sessio memory (asgi)", "sessio-core memory (asgi)"),
    ("sessio sqlite (asgi)", "sessio-core sqlite (asgi)"),
    ("sessio redis (asgi)", "sessio-core redis (asgi)"),
    ("sessio memory (flask)", "sessio-core memory (flask)"),
)


async def _profile(ctx: Context, requests: int, out: Path) -> list[Path]:
    from pyinstrument import Profiler

    written: list[Path] = []
    for choices in TARGETS:
        for name in choices:
            try:
                built = await by_name(name).build(ctx)
            except Exception as exc:
                print(f"  {name}: {exc}")
                continue
            for scenario in SCENARIOS:
                runner = await make_runner(by_name(name), built, scenario, 16)
                await runner.batch(requests // 4)  # warm up
                profiler = Profiler(interval=0.0001, async_mode="disabled")
                profiler.start()
                await runner.batch(requests)
                profiler.stop()
                text = profiler.output_text(unicode=True, color=False, show_all=False)
                slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
                path = out / f"profile-{slug}-{scenario}.txt"
                path.write_text(text)
                written.append(path)
                print(f"\n=== {name} / {scenario}: {requests} requests ===")
                print("\n".join(text.splitlines()[:60]))
            break
    return written


def main(*, quick: bool) -> int:
    """Profile and print; 0 on success."""
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    with services() as found, tempfile.TemporaryDirectory(prefix="sessio-profile-") as tmp:
        ctx = Context(found, Path(tmp))

        async def run() -> list[Path]:
            try:
                return await _profile(ctx, 200 if quick else 5000, out)
            finally:
                await ctx.close()

        written = asyncio.run(run())
    print(f"\nwrote {len(written)} profiles to {out}")
    return 0
