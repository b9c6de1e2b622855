"""What the campaign asks for and what it is told: plain, immutable records.

A request carries one point or a batch of ``q`` points (``Campaign.ask(q=...)``); it is answered by one
:class:`Measurement` per point, each naming the request and the point's ``index`` in it. Points are
tuples in the space's axis order, or mappings by axis name, as the Ax Service API's ``parameters``:

======================================== ===================================================
Ax (``AxClient``)                        abduce (``Campaign``)
======================================== ===================================================
``get_next_trial() -> (parameters, i)``  ``r = ask()``: ``r.named()`` and ``r.request_id``
``get_next_trials(max_trials=q)``        ``r = ask(q=q)``: ``r.values`` (one mapping per point)
``complete_trial(i, raw_data=(y, sd))``  ``tell(Measurement(r.request_id, {"x": 0.31}, y, y_sd=sd, index=k))``
``log_trial_failure(i)``                 ``skip(r.request_id, index=k)``
``attach_trial(parameters)``             (no counterpart: every point is one the campaign asked for)
======================================== ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from abduce.controller.errors import ConfigError

Point = tuple[float, ...]
NamedPoint = Mapping[str, float]


def point_of(x: Sequence[float] | NamedPoint, axes: Sequence[str]) -> Point | Sequence[Any]:
    """``x`` in axis order: a mapping must name exactly ``axes`` (``{"x": 0.31, "T": 280.0}``); a sequence
    is returned as it is (its length and values are the campaign's to check).

    Raises:
        ConfigError: a mapping with a misspelt, missing or extra axis name (all of them named).
    """
    if not isinstance(x, Mapping):
        return x
    names = list(axes)
    missing = [a for a in names if a not in x]
    unknown = [k for k in x if k not in names]
    if missing or unknown:
        parts = [f"no value for axis {', '.join(map(repr, missing))}"] if missing else []
        parts += [f"unknown axis {', '.join(map(repr, unknown))}"] if unknown else []
        raise ConfigError(f"{'; '.join(parts)}: the space's axes are {names}")
    return tuple(x[a] for a in names)


@dataclass(frozen=True)
class MeasureRequest:
    """The point(s) the campaign wants measured.

    Attributes:
        request_id: unique and deterministic for (campaign name, seed, step).
        step: 0-based index of the request's first measurement in the campaign (``n`` when asked).
        x: the (first) point, physical units, one value per axis.
        hypothesis: the hypothesis whose acquisition chose it (None for the
            initial design and for acquisitions over all hypotheses).
        reason: why this point ("initial-design", "explore", "exploit", "warm-up", "discriminate").
        points: every point of the request (``q x d``; ``points[0] == x``); left out, ``(x,)``.
        axes: the space's axis names, for :meth:`named` (left out: ``x0, x1, ...``).

    Example:
        >>> r = campaign.ask(q=2)
        >>> r.values
        [{'x': 0.3}, {'x': 0.75}]
    """

    request_id: str
    step: int
    x: Point
    hypothesis: str | None
    reason: str
    points: tuple[Point, ...] = ()
    axes: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.points:
            object.__setattr__(self, "points", (tuple(self.x),))
        elif tuple(self.points[0]) != tuple(self.x):
            raise ValueError(f"points[0] = {self.points[0]} is not x = {self.x}")

    @property
    def q(self) -> int:
        """How many points the request holds."""
        return len(self.points)

    def named(self, index: int = 0) -> dict[str, float]:
        """Point ``index`` by axis name (``{"x": 0.31, "T": 280.0}``)."""
        names = self.axes or tuple(f"x{i}" for i in range(len(self.x)))
        return dict(zip(names, self.points[index]))

    @property
    def values(self) -> list[dict[str, float]]:
        """Every point by axis name, in order (what Ax calls each trial's ``parameters``)."""
        return [self.named(i) for i in range(self.q)]


@dataclass(frozen=True)
class Measurement:
    """A measured value.

    Attributes:
        request_id: the request this answers.
        x: the point actually measured (physical units): a tuple in axis order, or a mapping
            by axis name (``{"x": 0.31, "T": 280.0}``; exactly the space's axes).
        y: the measured scalar.
        raw: the reply as received from the instrument (packed protocol
            frames, signature included), kept in the journal; None in-process.
        source: the key id that signed the reply (who said it); None in-process.
        arrays: raw array channels of this point (a spectrum the value was
            reduced from), kept with the measurement; None when there are none.
        y_sd: the reading's own standard deviation (same units as ``y``) when the
            instrument reports one; None when it does not.
        index: which point of the request this answers (0 for a one-point request).
    """

    request_id: str
    x: Point | NamedPoint
    y: float
    raw: bytes | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False)
    arrays: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    y_sd: float | None = None
    index: int = 0
