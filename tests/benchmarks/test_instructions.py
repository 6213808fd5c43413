"""The instruction counts' arithmetic: cachegrind's summary read, floors subtracted, rows kept."""

from __future__ import annotations

import pytest
from benchmarks.contenders import ASGI_FLOOR, RAW_ASYNC, WSGI_FLOOR, by_name

from benchmarks import instructions

SUMMARY = """==123== Cachegrind, a high-precision tracing profiler
==123==
==123== I   refs:      1,234,567,890
"""


def test_the_summary_count_is_read_with_its_thousands_separators() -> None:
    assert instructions.parse_refs(SUMMARY) == 1_234_567_890


def test_output_without_a_count_is_an_error_not_a_zero() -> None:
    with pytest.raises(RuntimeError, match="no instruction count"):
        instructions.parse_refs("==1== valgrind: cannot start\n")


def test_overheads_subtract_each_frameworks_own_floor() -> None:
    counts = {
        (ASGI_FLOOR, "read"): 20_000.0,
        ("sessio memory (asgi)", "read"): 150_000.0,
        (WSGI_FLOOR, "read"): 400_000.0,
        ("sessio redis (flask)", "read"): 600_000.0,
        ("sessio redis (asgi)", "write"): 500_000.0,  # its floor was not counted: left out
        (RAW_ASYNC, "read"): 300_000.0,
    }
    assert instructions.overheads(counts) == {
        ("sessio memory (asgi)", "read"): 130_000.0,
        ("sessio redis (flask)", "read"): 200_000.0,
    }


def test_every_row_is_a_registered_contender() -> None:
    for name in instructions.ROWS:
        assert by_name(name).name == name


PREVIOUS = """# sessio: instructions per request

| contender | read | read overhead | write | write overhead |
|---|---|---|---|---|
| Starlette (no session) | 114,525 | - | 107,939 | - |
| sessio redis (asgi) | 421,652 | 307,127 | 669,181 | 561,242 |
| not a row | 1 | - | 2 | - |

| sessio overhead / peer's | read | write |
|---|---|---|
| sessio redis (asgi) / starsessions RedisStore | 0.35x | 0.63x |
"""


def test_the_previous_table_is_read_back_row_by_row() -> None:
    assert instructions.parse_previous(PREVIOUS) == {
        (ASGI_FLOOR, "read"): 114_525.0,
        (ASGI_FLOOR, "write"): 107_939.0,
        ("sessio redis (asgi)", "read"): 421_652.0,
        ("sessio redis (asgi)", "write"): 669_181.0,
    }


def test_only_rows_more_than_ten_percent_worse_are_listed() -> None:
    before = instructions.parse_previous(PREVIOUS)
    now = {
        (ASGI_FLOOR, "read"): 114_525.0 * 1.09,  # 9% worse: within the noise band, not listed
        (ASGI_FLOOR, "write"): 90_000.0,  # better
        ("sessio redis (asgi)", "read"): 421_652.0 * 1.5,
        ("sessio memory (asgi)", "read"): 1e9,  # no earlier count to compare with
    }
    assert instructions.compare(now, before) == [
        ("sessio redis (asgi)", "read", 421_652.0, 421_652.0 * 1.5, pytest.approx(0.5))
    ]
