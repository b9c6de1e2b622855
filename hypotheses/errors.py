"""The errors the hypotheses raise: a law that is not finite somewhere in its range, a fit that failed.

Both derive from the shared tree in :mod:`abduce.controller.errors`, so a caller catching
``AbduceError`` (or ``ConfigError``) catches them too.
"""

from __future__ import annotations

from abduce.controller.errors import AbduceError, ConfigError


class HypothesisError(ConfigError):
    """A hypothesis's mean or its gradient is not finite somewhere inside its declared range.

    Attributes:
        hypothesis: the hypothesis's name.
        parameters: the relative parameter values where it fails (``{name: value}``).
        point: the relative point of the space where it fails (``u`` in the unit cube).
        what: ``"value"`` or ``"gradient of NAME"``.
    """

    def __init__(self, hypothesis: str, parameters: dict[str, float], point: tuple[float, ...], what: str) -> None:
        self.hypothesis, self.parameters, self.point, self.what = hypothesis, parameters, point, what
        values = ", ".join(f"{k}={v:.6g}" for k, v in parameters.items())
        super().__init__(
            f"hypothesis {hypothesis!r}: the {what} is not finite at relative parameters "
            f"({values}) and relative point u={tuple(round(float(v), 6) for v in point)}"
        )


class FitError(AbduceError, RuntimeError):
    """Fitting a hypothesis failed from every start.

    Attributes:
        hypothesis: the hypothesis's name.
        n: how many measurements it was fitted to.
    """

    def __init__(self, hypothesis: str, n: int, detail: str) -> None:
        self.hypothesis, self.n = hypothesis, n
        super().__init__(f"fitting hypothesis {hypothesis!r} on {n} points failed: {detail}")
