"""docs/security.md stays true: every test its table cites exists, and every security test is cited."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
SUITE = Path(__file__).resolve().parent
CITATION = re.compile(r"`(tests/security/(test_\w+)\.py)::(test_\w+)`")


def table_rows() -> list[str]:
    """The requirement table's body rows (lines starting with ``|``, header and rule skipped)."""
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    assert len(rows) > 2, "docs/security.md has no requirement table"
    header, rule, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Requirement",
        "What sessio does",
        "Default",
        "Proof",
    ]
    assert set(rule.replace("|", "").strip()) <= {"-", ":"}
    return body


def cited() -> set[tuple[str, str]]:
    """``(module, test)`` for every citation in the table's Proof column."""
    out: set[tuple[str, str]] = set()
    for row in table_rows():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, f"a row needs 4 cells: {row[:80]}"
        requirement, _, default, proof = cells
        assert re.search(r"ASVS \d|cheat sheet", requirement, re.I), f"no item named: {row[:80]}"
        assert default, f"no default given: {row[:80]}"
        found = CITATION.findall(proof)
        assert found, f"a row without a proof: {row[:80]}"
        out.update((module, test) for _, module, test in found)
    return out


def defined() -> set[tuple[str, str]]:
    """``(module, test)`` for every test function in tests/security/ (this file aside)."""
    out: set[tuple[str, str]] = set()
    for path in SUITE.glob("test_*.py"):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
                "test_"
            ):
                out.add((path.stem, node.name))
    return out


def test_every_cited_test_exists() -> None:
    """Each ``tests/security/test_x.py::test_name`` in the table imports and is a test function."""
    for module, test in sorted(cited()):
        loaded = importlib.import_module(f"tests.security.{module}")
        function = getattr(loaded, test, None)
        assert callable(function), f"docs/security.md cites a missing test: {module}::{test}"
        assert function.__doc__, f"{module}::{test} must say which requirement it proves"


def test_every_security_test_is_cited() -> None:
    """No requirement is proven without the doc saying so: each security test is in the table."""
    missing = sorted(defined() - cited())
    assert missing == [], f"security tests docs/security.md does not cite: {missing}"


def test_every_security_test_names_its_requirement() -> None:
    """Each test's docstring names the ASVS item or cheat-sheet section it covers."""
    for module, test in sorted(defined()):
        function = getattr(importlib.import_module(f"tests.security.{module}"), test)
        doc = function.__doc__ or ""
        assert re.search(r"ASVS \d|cheat sheet", doc, re.I), f"{module}::{test}"
