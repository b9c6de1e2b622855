"""Rules the fast tier keeps so that it never fails by chance (issue: tests that never flake).

* No assert compares a wall-clock reading (``time.monotonic``, ``time.perf_counter``,
  ``time.time``, or a name computed from one) with anything: speed goals live in
  ``tests/benchmarks/``, which print their figures; a test waits for conditions.
* ``time.sleep`` only inside a ``while`` loop (polling for a condition), never as a
  statement that hopes something has happened by the time it returns.

Scripts that are not collected as tests (``tests/benchmarks/``, ``tests/killtest.py``,
``tests/mutation.py``) are outside the rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns", "time_ns"}
EXEMPT = {TESTS / "killtest.py", TESTS / "mutation.py"}


def suite_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "benchmarks" not in p.parts and p not in EXEMPT)


def _is_clock(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCKS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def _is_sleep(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "sleep"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def violations(source: str, name: str = "<test>") -> list[str]:
    """Each broken rule in ``source`` as ``name:line: what``."""
    tree = ast.parse(source)
    timed: set[str] = set()  # names bound to anything computed from a clock
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            if any(_is_clock(n) or (isinstance(n, ast.Name) and n.id in timed) for n in ast.walk(node.value)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                timed |= {t.id for tgt in targets for t in ast.walk(tgt) if isinstance(t, ast.Name)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            if any(_is_clock(n) or (isinstance(n, ast.Name) and n.id in timed) for n in ast.walk(node.test)):
                out.append(f"{name}:{node.lineno}: an assert on a wall-clock duration")
    polling: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            polling |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if _is_sleep(node) and id(node) not in polling:
            out.append(f"{name}:{node.lineno}: time.sleep outside a polling loop")
    return out


def test_the_rules_see_what_they_forbid():
    bad = (
        "import time\n"
        "def test_x():\n"
        "    t0 = time.monotonic()\n"
        "    work()\n"
        "    elapsed = time.monotonic() - t0\n"
        "    assert elapsed < 1.0\n"
        "    assert time.perf_counter() - t0 < 2\n"
        "    time.sleep(1.0)\n"
    )
    assert [v.split(": ", 1)[1] for v in violations(bad)] == [
        "an assert on a wall-clock duration",
        "an assert on a wall-clock duration",
        "time.sleep outside a polling loop",
    ]
    good = (
        "import time\n"
        "def wait_until(p, timeout):\n"
        "    end = time.monotonic() + timeout\n"
        "    while time.monotonic() < end:\n"
        "        if p():\n"
        "            return True\n"
        "        time.sleep(0.01)\n"
        "    return False\n"
    )
    assert violations(good) == []


@pytest.mark.parametrize("path", suite_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_wall_clock_threshold_and_no_sleep_to_synchronise(path):
    assert violations(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS))) == []
