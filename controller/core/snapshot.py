"""A campaign loaded from its journal for looking at: read-only, built without replaying a step.

A :class:`Snapshot` answers every question a :class:`~abduce.controller.core.state.CampaignState`
answers (``posterior``, ``acquisition_scores``, ``summary``, ``probabilities``), and has no
``ask`` or ``tell``: to go on measuring, rebuild the campaign from its journal
(:func:`abduce.controller.journal.rebuild.rebuild`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from abduce.controller.core.abduction import made_by_round, round_seed
from abduce.controller.core.settings import StepRecord
from abduce.controller.core.state import CampaignState
from abduce.controller.errors import CampaignStateError
from abduce.hypotheses.belief import Slot
from abduce.hypotheses.grammar import build


class Snapshot(CampaignState):
    """The state after a journal's measurements (arguments as for :class:`~abduce.controller.core.campaign.Campaign`;
    then :meth:`load` it)."""

    def load(
        self,
        measurements: list[tuple[str, tuple[float, ...], float, float | None]],
        failed: list[tuple[float, ...]],
        asked_by: list[str | None],
        records: list[StepRecord],
        fits: dict[str, dict],
    ) -> Snapshot:
        """Load the state after ``measurements`` without replaying a step; returns ``self``.

        Takes the data, the points whose readings failed, the hypothesis behind every
        request asked (told or skipped), the step records and each hypothesis's latest
        fitted state, all as journalled, and conditions each fit on all the data
        (:meth:`abduce.hypotheses.belief.Belief.load`) -- equal to the live run's rank-1
        updates within rounding. The evidence is not re-weighed: probabilities are the
        journalled ones.

        Raises:
            CampaignStateError: the snapshot has already been loaded.
        """
        if self.n or self._history:
            raise CampaignStateError("a snapshot loads once")
        for rid, x, y, y_sd in measurements:  # y_sd: the reading's known sd, None where none was told
            self._x.append(tuple(float(v) for v in x))
            self._y.append(float(y))
            self._y_sd.append(math.nan if y_sd is None else float(y_sd))
            self._told.add(rid)
        if self.space.is_finite:
            self._measured_idx = [i for i in self.space.indices_of(self._x) if i is not None]
            self._failed_idx = [i for i in self.space.indices_of(failed) if i is not None]
        for rec in records:  # the contenders the live run added, in the order it added them
            for proposal in rec.proposals:
                if proposal.get("added") and proposal["name"] not in self.hypothesis_names:
                    self._admit(Slot(build(proposal["tree"], self.declared)), float(proposal["weight"]))
        names = self.hypothesis_names
        for name in asked_by:
            if name in names:
                self._times_chosen[names.index(name)] += 1
        for rec in records:
            rec = dataclasses.replace(
                rec,
                x=tuple(rec.x),
                refit=tuple(rec.refit),
                unfitted=tuple(rec.unfitted),
                log_evidence_se=dict(rec.log_evidence_se),
                proposals=tuple(dict(p) for p in rec.proposals),
            )
            if rec.none is not None:
                rec = dataclasses.replace(rec, none=dict(rec.none))
            self._history.append(rec)
            if rec.reward is not None and rec.hypothesis in names:
                self._rewards[names.index(rec.hypothesis)].append(rec.reward)
        u, y = self._data_tensors()
        self.belief.load(fits, u, y, self._evidence_seeds(records), self._sd_tensor())
        self._stopped = bool(records and records[-1].stopped)
        return self

    def _evidence_seeds(self, records: Sequence[StepRecord]):
        """``seed(step, index)`` of the evidence of the fit a step made, as the live campaign drew it: a law a
        proposal round added and fitted at that step drew the round's seeds (its ``fit_index``), every other
        fit the campaign's own."""
        rounds = {
            p["name"]: (p["step"], p["fit_index"])
            for rec in records
            for p in rec.proposals
            if made_by_round(p) and p["added"] and p.get("fit_index") is not None
        }
        names = [slot.hypothesis.name for slot in self.belief.all_slots()]

        def seed(step: int, index: int) -> int:
            made = rounds.get(names[index])
            if made is not None and made[0] == step:
                return round_seed(self, "evidence", step, made[1])
            return self._int_seed("evidence", step, index)

        return seed

    def ask(self, *args, **kwargs):
        raise CampaignStateError(
            "this campaign is a snapshot for inspection; "
            "rebuild it (abduce.controller.journal.rebuild.rebuild) to go on"
        )

    tell = skip = ask
