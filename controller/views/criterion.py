"""What a policy that picks no hypothesis optimised: its acquisition's value at the point chosen at each
step, for the choices figure (:func:`~abduce.controller.views.figures.choices_figure`). Read from the
journal where the campaign recorded it (``DecisionBody.score``), re-scored on snapshots of the campaign
for journals written before."""

from __future__ import annotations

import numpy as np

from abduce.controller.errors import AbduceError
from abduce.controller.journal.store import Journal
from abduce.controller.views.figures import Criterion, NothingToPlot, acquisition_scores
from abduce.controller.views.inspection import Inspection

__all__ = ["CRITERION_STEPS", "Criterion", "criterion_trace", "recorded_scores"]

CRITERION_STEPS = 40  # at most this many snapshots re-scored for an older journal (evenly spread over the steps)


_TRACED: dict[tuple[str, str, int], tuple[str, float]] = {}  # (journal, request id, step) -> (acquisition, value)


def recorded_scores(inspection: Inspection, events: list) -> dict[int, float]:
    """``{step: value}`` as the campaign journalled it with each decision after the initial design: the value
    its acquisition gave the point when ``ask`` chose it (``DecisionBody.score``; a batch's points each their
    own). Steps whose decision holds none (journals written before it) are left out."""
    scores = {(e.request_id, e.body.step): e.body.score for e in events if e.kind == "decision"}
    out = {}
    for m in inspection.measurements:
        value = scores.get((m.request_id, m.step))
        if value is not None and not m.reason.startswith("initial-design"):
            out[m.step] = float(value)
    return out


def _acquisition_name(inspection: Inspection) -> str | None:
    """The acquisition the campaign was configured with (the policy's default where none was named)."""
    from abduce.controller.decide.policies import POLICIES

    if inspection.stopping.acquisition:
        return inspection.stopping.acquisition
    try:
        return POLICIES[inspection.stopping.policy].default_acquisition
    except AbduceError:  # a policy this version does not know
        return None


def criterion_trace(journal: Journal, inspection: Inspection, events: list, most: int = CRITERION_STEPS) -> Criterion:
    """The acquisition value behind each chosen point, for a policy that picks points by an acquisition over
    all hypotheses (``discriminate``).

    The campaign journals it with each decision (:func:`recorded_scores`): every step after the initial
    design is shown, read from the journal, at no cost. A journal written before that (or a step without
    it) falls back to re-scoring: the campaign is loaded as it stood before the step
    (:func:`~abduce.controller.journal.rebuild.snapshot`, no refit) and its acquisition scored, as ``ask``
    scored it then (on a box, the best of the reference points rather than the optimised value).
    Each such step is one snapshot (~K Cholesky factors; ~0.25 s at n = 30 on 2 busy cores), so at most
    about ``most`` of them are scored: every ``stride``-th step after the initial design and the last one,
    ``stride`` the smallest power of two that keeps the count within ``most``. A step's value never
    changes once journalled: it is kept (per journal and request), so a live page that redraws after every
    measurement scores only the new step until the stride doubles.

    Raises:
        NothingToPlot: no step after the initial design, or a policy without an acquisition.
    """
    chosen = [m for m in inspection.measurements if not m.reason.startswith("initial-design")]
    if not chosen:
        raise NothingToPlot("no measurement after the initial design: no acquisition to show yet")
    values = recorded_scores(inspection, events)
    name = _acquisition_name(inspection)
    missing = [m for m in chosen if m.step not in values]
    if missing or name is None:
        traced_name, traced = _rescored(journal, missing or chosen[-1:], events, most)
        name = name or traced_name
        values.update({s: v for s, v in traced.items() if s not in values})
    return Criterion(name, dict(sorted(values.items())))


def _rescored(journal: Journal, chosen: list, events: list, most: int) -> tuple[str, dict[int, float]]:
    """The fallback of :func:`criterion_trace`: the acquisition's name and ``{step: value}`` re-scored on
    snapshots, for at most about ``most`` of the ``chosen`` rows (evenly strided, the last kept)."""
    from abduce.controller.journal.rebuild import snapshot

    stride = 1
    while -(-len(chosen) // stride) > most:
        stride *= 2
    keep = sorted({*range(0, len(chosen), stride), len(chosen) - 1})
    where = str(journal.path)
    values, name = {}, ""
    for m in (chosen[i] for i in keep):
        key = (where, m.request_id, m.step)
        if key not in _TRACED:
            _, campaign = snapshot(journal, upto=m.step, events=events)
            _, scores, _ = acquisition_scores(campaign)
            at = campaign.physical_space.index_of(m.x) if campaign.physical_space.is_finite else None
            if len(_TRACED) > 100_000:
                _TRACED.clear()
            _TRACED[key] = (
                campaign.acquisition.name,
                float(scores[at]) if at is not None else float(np.nanmax(scores)),
            )
        name, values[m.step] = _TRACED[key]
    return name, values
