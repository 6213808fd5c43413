"""Why a target was missed: hand-written reasons from ``limits.md``, rendered under the targets.

A run measures how far each missed target is; only a person can say why. ``limits.md`` holds
that prose, one ``## <target id>`` section per target (the ids are :attr:`Target.id
<benchmarks.report.Target.id>`). The report prints a reason only for a MISS whose id has a
non-empty section: a target without one gets no reason line, never a guessed one. Since the
file is read when the report is rendered, ``--from-json`` re-renders revised reasons without
measuring again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

__all__ = ["LIMITS", "load", "parse", "render_reasons"]

#: The hand-maintained file of reasons, next to this module.
LIMITS = Path(__file__).resolve().parent / "limits.md"


class _Evaluated(Protocol):
    """What a reason is rendered for (``report.Target``; a protocol to keep the import one-way)."""

    id: str
    text: str
    passed: bool | None
    detail: str


def parse(text: str) -> dict[str, str]:
    """Target id -> its reason: the body of each ``## <id>`` section, paragraphs kept, lines
    within a paragraph joined. Text before the first section (the file's preface) and empty
    sections are left out."""
    reasons: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            paragraphs = "\n".join(body).strip().split("\n\n")
            prose = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
            if prose:
                reasons[current] = prose

    for line in text.splitlines():
        if line.startswith("## "):
            close()
            current, body = line[3:].strip(), []
        elif current is not None:
            body.append(line)
    close()
    return reasons


def load(path: Path = LIMITS) -> dict[str, str]:
    """The reasons in ``path``; none when the file does not exist."""
    return parse(path.read_text(encoding="utf-8")) if path.exists() else {}


def render_reasons(targets: Iterable[_Evaluated], reasons: Mapping[str, str]) -> list[str]:
    """Markdown lines for "What limits the missed targets": each MISS that has a reason, with
    its measured distance and the reason. No lines when no missed target has one."""
    out: list[str] = []
    for target in targets:
        reason = reasons.get(target.id)
        if target.passed is not False or not reason:
            continue
        out.append(f"\n**{target.text}** (`{target.id}`): {target.detail}.\n")
        out.append(reason)
    if not out:
        return []
    intro = "Measured distance first, then what keeps sessio from the target (from `limits.md`)."
    return ["\n## What limits the missed targets\n", intro, *out]
