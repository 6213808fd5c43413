"""sessio's benchmark suite: sessio and its peers measured side by side, in one run, as ratios.

Run ``python -m benchmarks`` (full, under 10 minutes on 2 cores) or ``python -m benchmarks
--quick`` (a smoke run for CI, under a minute). The first run builds ``benchmarks/.venv`` with
the pinned peers of ``benchmarks/requirements.txt`` and re-executes itself there.
"""
