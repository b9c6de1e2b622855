"""The one exception tree of abduce.

Every error abduce raises on purpose derives from :class:`AbduceError`, so a
caller (the CLI, the daemon, a notebook) can catch abduce's failures apart
from bugs. Subclasses carry the data a caller needs to act, not only a string.

This module imports nothing heavy: ``abduce.instruments`` (torch-free) may use
it too.
"""

from __future__ import annotations


class AbduceError(Exception):
    """Root of every error abduce raises on purpose."""


class ConfigError(AbduceError):
    """A setting, a name or a declaration is wrong; says which."""


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry holds.

    Attributes:
        kind: what was looked up ("hypothesis", "policy", ...).
        name: the name given.
        known: the names that exist.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


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
        super().__init__(f"hypothesis {hypothesis!r}: the {what} is not finite at relative parameters "
                         f"({values}) and relative point u={tuple(round(float(v), 6) for v in point)}")


class MeasurementRejected(AbduceError, ValueError):
    """``Campaign.tell`` refused a measurement; the campaign is unchanged.

    Attributes:
        request_id: the request the measurement claimed to answer.
        reason: a short machine-readable code ("non-finite", "outside-space",
            "wrong-dimension", "unknown-request", "duplicate", "point-mismatch").
    """

    def __init__(self, request_id: str, reason: str, detail: str) -> None:
        self.request_id, self.reason = request_id, reason
        super().__init__(f"measurement for request {request_id!r} rejected ({reason}): {detail}")


class CampaignStateError(AbduceError, RuntimeError):
    """A call that the campaign's state does not allow (e.g. ``ask`` after it stopped)."""


class FitError(AbduceError, RuntimeError):
    """Fitting a hypothesis failed from every start.

    Attributes:
        hypothesis: the hypothesis's name.
        n: how many measurements it was fitted to.
    """

    def __init__(self, hypothesis: str, n: int, detail: str) -> None:
        self.hypothesis, self.n = hypothesis, n
        super().__init__(f"fitting hypothesis {hypothesis!r} on {n} points failed: {detail}")
