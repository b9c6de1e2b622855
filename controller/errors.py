"""The one exception tree of abduce.

Every error abduce raises on purpose derives from :class:`AbduceError`, so a
caller (the CLI, the daemon, a notebook) can catch abduce's failures apart
from bugs. Subclasses carry the data a caller needs to act, not only a string.

This module is the shared leaf: it imports nothing, and every package
(``abduce.instruments`` and ``abduce.simulators``, torch-free, too) may import
it. It holds the root and the errors more than one package raises; an error
only one package raises lives there (``abduce.hypotheses.errors``).
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
        close: the known names closest to ``name`` (``difflib``'s ratio >= 0.6, best first), named in the
            message as "did you mean ...?"; empty when none is close.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        from difflib import get_close_matches

        self.kind, self.name, self.known = kind, name, sorted(known)
        self.close = get_close_matches(name, self.known, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, self.close))}?" if self.close else ""
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class MeasurementRejected(AbduceError, ValueError):
    """``Campaign.tell`` (or an edge before it) refused a measurement; the campaign is unchanged.

    Attributes:
        request_id: the request the measurement claimed to answer.
        reason: a short machine-readable code, one of:

            - ``duplicate``: the request, or this point of it, was already told (or skipped);
            - ``unknown-request``: no pending request has this id, or it has no point ``index``;
            - ``wrong-axes``: a point by name with a misspelt, missing or extra axis;
            - ``wrong-dimension``: a point with the wrong number of coordinates;
            - ``non-numeric``: a coordinate or value that is not a number;
            - ``non-finite``: NaN or inf in the point or the value (the point is skipped, not retried);
            - ``outside-space``: outside the box, or not one of a finite space's candidates;
            - ``bad-sd``: a ``y_sd`` that is not a number, negative or infinite;
            - ``missing-id``, ``missing-outcome`` (the Bluesky optimizer's outcomes): a point that names no
              suggestion of the campaign, or lacks the campaign's channel.
    """

    def __init__(self, request_id: str, reason: str, detail: str) -> None:
        self.request_id, self.reason = request_id, reason
        super().__init__(f"measurement for request {request_id!r} rejected ({reason}): {detail}")


class CampaignStateError(AbduceError, RuntimeError):
    """A call that the campaign's state does not allow (e.g. ``ask`` after it stopped)."""
