"""The reasons under the missed targets: read from ``limits.md``, shown only for a MISS that has one."""

from __future__ import annotations

import datetime as dt

from benchmarks import limits, report

PASSED = report.Target(
    "asgi-memory-read", "read overhead <= 18 µs", True, "12.0 µs vs limit 18.0 µs"
)
MISSED = report.Target("asgi-memory-write", "write overhead <= 38 µs", False, "80.3 µs vs 38.1 µs")
UNEXPLAINED = report.Target("scale-redis", "redis p99 <= 1.5x", False, "2.1 ms vs 1.6 ms")
UNMEASURED = report.Target("wrk-redis-vs-starsessions", "wrk >= 1.5x", None, "not measured")

TEXT = """# What limits the missed targets

A preface, which is no target's reason.

## asgi-memory-write

The write does two hashes
and a record decode.

A second paragraph.

## asgi-memory-read

Only shown when this target misses.

## scale-redis

## wrk-redis-vs-starsessions

Not measured is not missed.
"""


def _results() -> report.Results:
    return report.Results(command="python -m benchmarks", quick=False, started=dt.datetime.now())


def test_sections_become_reasons_with_paragraphs_kept_and_empty_ones_dropped() -> None:
    assert limits.parse(TEXT) == {
        "asgi-memory-write": "The write does two hashes and a record decode.\n\nA second paragraph.",
        "asgi-memory-read": "Only shown when this target misses.",
        "wrk-redis-vs-starsessions": "Not measured is not missed.",
    }


def test_only_a_miss_with_a_written_reason_gets_one_with_its_distance() -> None:
    lines = limits.render_reasons([PASSED, MISSED, UNEXPLAINED, UNMEASURED], limits.parse(TEXT))
    text = "\n".join(lines)
    assert text.count("**") == 2  # one target named: the explained miss
    assert "**write overhead <= 38 µs** (`asgi-memory-write`): 80.3 µs vs 38.1 µs." in text
    assert "The write does two hashes and a record decode.\n\nA second paragraph." in text
    for absent in ("Only shown when", "Not measured is not missed", "scale-redis"):
        assert absent not in text


def test_no_section_at_all_when_no_miss_has_a_reason() -> None:
    assert limits.render_reasons([PASSED, UNEXPLAINED, UNMEASURED], limits.parse(TEXT)) == []


def test_the_report_puts_the_reasons_right_after_the_targets_block() -> None:
    targets = [PASSED, MISSED]
    text = report.render(_results(), targets, {}, "host", limits.parse(TEXT))
    block_end = text.index("```\n", text.index(MISSED.line()))
    section = text.index("## What limits the missed targets")
    assert block_end < section < text.index("## In-process overhead per request")
    assert "A second paragraph." in text[section:]
    assert "What limits" not in report.render(_results(), targets, {}, "host")


def test_every_section_of_limits_md_names_a_target_and_says_something() -> None:
    known = {t.id for t in report.evaluate_targets(_results())}
    text = limits.LIMITS.read_text(encoding="utf-8")
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    assert headings
    assert set(headings) <= known, set(headings) - known
    assert set(limits.load()) == set(headings)  # none of them is empty
