"""What the campaign asks for and what it is told: plain, immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MeasureRequest:
    """One point the campaign wants measured.

    Attributes:
        request_id: unique and deterministic for (campaign name, seed, step).
        step: 0-based index of this request in the campaign.
        x: the point, physical units, one value per axis.
        hypothesis: the hypothesis whose acquisition chose it (None for the
            initial design and for acquisitions over all hypotheses).
        reason: why this point ("initial-design", "explore", "exploit", "warm-up", "discriminate").
    """

    request_id: str
    step: int
    x: tuple[float, ...]
    hypothesis: str | None
    reason: str


@dataclass(frozen=True)
class Measurement:
    """A measured value.

    Attributes:
        request_id: the request this answers.
        x: the point actually measured (physical units).
        y: the measured scalar.
        raw: the reply as received from the instrument (packed protocol
            frames, signature included), kept in the journal; None in-process.
        source: the key id that signed the reply (who said it); None in-process.
        arrays: raw array channels of this point (a spectrum the value was
            reduced from), kept with the measurement; None when there are none.
        y_sd: the reading's own standard deviation (same units as ``y``) when the
            instrument reports one; None when it does not.
    """

    request_id: str
    x: tuple[float, ...]
    y: float
    raw: bytes | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False)
    arrays: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    y_sd: float | None = None
