"""Every reason code a ``MeasurementRejected`` is raised with is listed in its docstring (callers branch on them)."""

import ast
from pathlib import Path

import abduce.controller
from abduce.controller.errors import MeasurementRejected

CONTROLLER = Path(abduce.controller.__file__).parent


def raised_reasons() -> set[str]:
    """The literal ``reason`` (second argument) of every ``MeasurementRejected(...)`` built in controller/."""
    reasons = set()
    for path in CONTROLLER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MeasurementRejected":
                arg = node.args[1] if len(node.args) > 1 else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    reasons.add(arg.value)
    return reasons


def test_the_docstring_lists_every_reason_raised():
    reasons = raised_reasons()
    assert {"wrong-axes", "bad-sd", "non-finite", "duplicate", "unknown-request"} <= reasons  # the scan finds them
    missing = sorted(r for r in reasons if f"``{r}``" not in MeasurementRejected.__doc__)
    assert not missing, f"MeasurementRejected's docstring does not list {missing}"
