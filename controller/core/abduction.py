"""Abduction in the loop: when no law explains the data, compose new ones, screen them, let the best compete.

A *proposal round* runs inside ``tell`` (on a request's last point) when ``settings.propose`` is not
``"off"``, at least ``propose_after`` measurements are in, fewer than ``propose_rounds`` rounds have run and
the last ran at least ``propose_every`` measurements ago: because "none of these" is more probable than
every law, or otherwise as an *audit*. The audit is needed because "none of these" rarely takes the lead
when the data hold a second, smaller structure: the leading law's residual GP absorbs it (on the
identification benchmark "none of these" led in 5% of two-transition campaigns). A round that finds no
credible composed law changes nothing in the campaign.

A round:

1. enumerates the compositions of the campaign's declared laws up to ``propose_depth`` steps
   (:func:`abduce.hypotheses.grammar.enumerate_compositions`), leaving out those already weighed;
2. screens them on the data so far (:func:`abduce.hypotheses.proposals.screen`: a prior-draw estimate of
   the evidence at the prior-median kernel) plus the complexity prior ``log pi(h)``
   (:func:`abduce.hypotheses.grammar.prior_weight`), and checks the best ``propose_fits`` over their
   whole range (:func:`abduce.hypotheses.check.check_once`);
3. fits those in full (MAP, then the evidence by importance sampling, as every law is fitted);
4. keeps at most ``propose_keep`` that are *credible*: whose posterior weight ``log Z + log pi`` beats
   every law's, or (with ``propose_admit`` below its default 1.0) whose posterior probability, were they
   added, reaches ``propose_admit``; and (``"add"``) adds them to the campaign as contenders: from then
   on the policy and the acquisition treat them like the others, so the next measurements are chosen to
   tell them from the declared laws; or (``"suggest"``) holds them for :meth:`accept`. Admitting a law
   before it leads was measured and is not the default: at 0.05, lookalike compositions joined together
   and split the probability, and in-set campaigns made proposals (README, "Laws outside the set").

Everything is seeded from ``(seed, step)``. Every proposal made is recorded on its step (:class:`Proposal`)
and journalled with the step's decision, with the added laws' fits; a resumed or rebuilt campaign (which
re-tells the journal) replays the round from there (:meth:`Abduction.replay`) instead of running it
again, so it holds the same contenders on any machine. A round whose decision was not journalled (a kill
mid-round) runs again from the same seeds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace

from abduce.controller.errors import AbduceError, ConfigError
from abduce.hypotheses.belief import Belief, Slot
from abduce.hypotheses.check import check_once
from abduce.hypotheses.errors import HypothesisError
from abduce.hypotheses.evidence import probabilities
from abduce.hypotheses.grammar import build, depth_counts, enumerate_compositions, prior_weight
from abduce.hypotheses.proposals import screen

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proposal:
    """One composed law a round fitted, as the step records it.

    Attributes:
        name, formula, tree, depth: the law (:mod:`abduce.hypotheses.grammar`).
        step: the measurement (0-based) after which it was proposed (or accepted).
        reason: why the round ran ("none of these" leading, or an operator's accept).
        weight: its complexity prior's weight (the declared laws weigh 1).
        screen: its screening score (log, complexity prior included).
        log_evidence, log_evidence_se: its evidence when proposed (nats).
        probability: its posterior probability had it been added, against the campaign's laws and "none of these".
        parameters: ``{param: [posterior mean, sd]}`` in physical units.
        added: whether it joined the campaign as a contender (else suggested, or only screened).
        suggested: held for an operator to accept (``propose = "suggest"``).
        units: ``{param: [unit, axis]}`` of every parameter (the relative-frame unit of
            :mod:`abduce.hypotheses.declaration` and its axis), so a view can label them without building the law.
        fit_index: its place among the round's full fits, which seeds its fit and evidence: a replay
            (:meth:`Abduction.replay`) conditions the journalled fit with the same draws.
    """

    name: str
    formula: str
    tree: dict
    depth: int
    step: int
    reason: str
    weight: float
    screen: float
    log_evidence: float | None
    log_evidence_se: float | None
    probability: float | None
    parameters: dict[str, list[float]]
    added: bool
    suggested: bool = False
    units: dict[str, list] | None = None
    fit_index: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


class Abduction:
    """The proposal bookkeeping of one campaign (rounds run, suggestions held); the campaign owns one."""

    def __init__(self) -> None:
        self.rounds: list[int] = []  # n at each round
        self.suggested: dict[str, tuple[Slot, float, dict]] = {}  # name -> (slot, weight, proposal JSON)

    def due(self, campaign, weighed) -> str | None:
        """Why a round runs now (or None): "none of these" leads every law, and the schedule allows it."""
        s = campaign.settings
        n = campaign.n
        if s.propose == "off" or n < s.propose_after or len(self.rounds) >= s.propose_rounds:
            return None
        if self.rounds and n - self.rounds[-1] < s.propose_every:
            return None
        if not weighed.probabilities:
            return None
        best = max(weighed.probabilities.values())
        if weighed.none is not None and weighed.none["probability"] > best:
            return f"none of these leads (P = {weighed.none['probability']:.3f}, best law {best:.3f})"
        return f"audit at n = {n} (best law P = {best:.3f})"

    def run(
        self, campaign, step: int, reason: str, restore: dict[str, dict], admit: bool = True, weighed=None
    ) -> list[Proposal]:
        """One round (see the module docstring); returns the proposals fitted, added ones flagged.

        ``admit=False``: a dry round (``abduce propose RUN``): nothing is added, held or logged and no round
        is counted; every candidate fitted is returned, best first, ``suggested`` marking the credible ones
        (those a live round would add or suggest). ``weighed``: the campaign's
        :class:`~abduce.hypotheses.belief.Weighed` of this step, when the caller has it (else weighed here)."""
        s = campaign.settings
        if admit:
            self.rounds.append(campaign.n)
            if s.propose == "suggest":  # what the last round suggested lapses, even where this one fits nothing
                self.suggested = {}
        mode = s.propose if admit else "suggest"
        belief: Belief = campaign.belief
        declared = [slot.hypothesis.as_declared() for slot in belief.slots if slot.hypothesis.depth == 0]
        every = enumerate_compositions(declared, campaign.space.d, s.propose_depth)
        counts = depth_counts(every)
        weighed_names = set(belief.names)
        candidates = [h for h in every if h.name not in weighed_names]
        if not candidates:
            return []
        u, y = campaign._data_tensors()
        sd = campaign._sd_tensor()
        seed = campaign._int_seed("propose", step)
        scores = screen(
            candidates, u, y, campaign.space.lo, campaign.space.span, s.fit.priors, s.propose_draws, seed, sd
        )
        weights = [prior_weight(h, counts, s.composition_cost) for h in candidates]
        ranked = sorted(range(len(candidates)), key=lambda i: -(scores[i] + math.log(weights[i])))
        chosen: list[int] = []
        for i in ranked:
            if len(chosen) >= s.propose_fits:
                break
            try:
                check_once(candidates[i], campaign.space.lo, campaign.space.hi, campaign.space.candidates)
            except HypothesisError:
                continue
            chosen.append(i)
        scratch = Belief([candidates[i] for i in chosen], belief.points, belief.lo, belief.span, _alone(s, belief))
        failures = scratch.refit(scratch.slots, u, y, _seeds(campaign, step, range(len(chosen))), restore, sd)
        fitted = [
            j for j, slot in enumerate(scratch.slots) if slot.fit is not None and slot.hypothesis.name not in failures
        ]
        if not fitted:
            return []
        current = weighed if weighed is not None else belief.weigh()  # the step's, where the campaign has it
        law_weight = dict(zip(belief.names, belief.weights))
        bar = max((current.log_z[name] + math.log(law_weight[name]) for name in current.log_z), default=-math.inf)
        evidences = {j: scratch.slots[j].evidence.evidence() for j in fitted}  # type: ignore[union-attr]
        total = sum(belief.weights)
        out: list[Proposal] = []
        keep = []
        for j in sorted(fitted, key=lambda j: -(evidences[j].log_z + math.log(weights[chosen[j]]))):
            i = chosen[j]
            h, ev = candidates[i], evidences[j]
            probability = _probability(current, belief, ev.log_z, weights[i], total)
            credible = ev.log_z + math.log(weights[i]) > bar or probability >= s.propose_admit
            wins = credible and len(keep) < s.propose_keep
            if wins:
                keep.append(j)
            out.append(
                Proposal(
                    name=h.name,
                    formula=h.formula,
                    tree=h.tree or {},
                    depth=h.depth,
                    step=step,
                    reason=reason,
                    weight=weights[i],
                    screen=scores[i] + math.log(weights[i]),
                    log_evidence=ev.log_z,
                    log_evidence_se=ev.log_z_se,
                    probability=probability,
                    parameters={p: [ev.mean[p], ev.sd[p]] for p in ev.mean},
                    added=wins and mode == "add",
                    suggested=wins and mode == "suggest",
                    units={q.name: [q.unit, q.axis] for q in h.parameters},
                    fit_index=j,
                )
            )
        if not admit:
            return out
        out = [p for p in out if p.added or p.suggested]  # a proposal is made only where it is credible
        winners: dict[str, tuple[Slot, float, dict]] = {}
        for proposal in out:
            j = next(j for j in fitted if scratch.slots[j].hypothesis.name == proposal.name)
            if proposal.added:
                campaign._admit(scratch.slots[j], proposal.weight)
            elif proposal.suggested:
                winners[proposal.name] = (scratch.slots[j], proposal.weight, proposal.to_json())
        if mode == "suggest":  # a suggestion a later round no longer finds credible lapses
            self.suggested = winners
        return out

    def attempt(self, campaign, step: int, reason: str, restore: dict[str, dict], weighed=None) -> list[Proposal]:
        """:meth:`run`, where a round that fails (a composed law the fits or the checks cannot handle) is
        logged and proposes nothing: a proposal round never stops the campaign that asked for it (the same
        data fail the same way on a resume, so the campaign stays deterministic)."""
        try:
            return self.run(campaign, step, reason, restore, weighed=weighed)
        except (AbduceError, RuntimeError, ValueError) as exc:
            _log.warning("proposal round after measurement %d failed and proposed nothing: %s", step + 1, exc)
            return []

    def replay(self, campaign, step: int, journalled: list[dict], restore: dict[str, dict]) -> list[dict] | None:
        """The round of ``step`` as the journal recorded it (a resume or rebuild): its laws are built from
        their trees and added (with their journalled fits, conditioned with the round's seeds) or held as
        suggestions, and no candidate is screened or fitted again, so the outcome cannot depend on the
        floating point of the machine that resumes. ``journalled``: the step's proposals from its decision
        (an operator's accepts, re-applied from their own events, are left out). Returns the round's
        proposals as recorded, or None where a made proposal lacks its ``fit_index`` (a journal older
        than the replay): the caller then runs the round again (:meth:`attempt`).

        Raises:
            ConfigError: a journalled tree the grammar cannot build from the campaign's laws.
        """
        made = [dict(p) for p in journalled if made_by_round(p)]
        if any(p.get("fit_index") is None for p in made):
            return None
        self.rounds.append(campaign.n)
        laws = []
        for p in made:
            try:
                law = build(p["tree"], campaign.declared)
            except ConfigError as exc:
                raise ConfigError(
                    f"the proposal {p['name']!r} journalled at step {step} cannot be rebuilt: {exc}"
                ) from None
            if law.name != p["name"]:
                raise ConfigError(
                    f"the proposal {p['name']!r} journalled at step {step} rebuilds as {law.name!r}: "
                    "the grammar that wrote the journal named its laws otherwise"
                )
            laws.append(law)
        added = [i for i, p in enumerate(made) if p["added"]]
        belief: Belief = campaign.belief
        if added:
            scratch = Belief(
                [laws[i] for i in added], belief.points, belief.lo, belief.span, _alone(campaign.settings, belief)
            )
            u, y = campaign._data_tensors()
            seeds = _seeds(campaign, step, [int(made[i]["fit_index"]) for i in added])
            failures = scratch.refit(scratch.slots, u, y, seeds, restore, campaign._sd_tensor())
            if failures:
                raise ConfigError(f"the proposals journalled at step {step} cannot be refitted: {failures}")
            for slot, i in zip(scratch.slots, added):
                campaign._admit(slot, float(made[i]["weight"]))
        if campaign.settings.propose == "suggest":
            self.suggested = {
                p["name"]: (Slot(law), float(p["weight"]), p) for p, law in zip(made, laws) if p.get("suggested")
            }
        return made

    def accept(self, campaign, name: str) -> dict:
        """Add the suggested law ``name`` to the campaign (refit on all the data at the next step);
        returns its proposal as recorded, ``added`` now True.

        Raises:
            ConfigError: no suggestion of that name (the names suggested are listed).
        """
        if name not in self.suggested:
            known = ", ".join(sorted(self.suggested)) or "none yet"
            raise ConfigError(f"no proposal named {name!r} is waiting to be accepted; suggested: {known}")
        slot, weight, record = self.suggested.pop(name)
        fresh = Slot(slot.hypothesis)  # fitted at the next step on all the data, like a law never fitted
        campaign._admit(fresh, weight)
        # its figures are those of the round that suggested it (``step``); accepted after ``accepted_step``
        accepted = dict(
            record, added=True, suggested=False, reason="accepted by the operator", accepted_step=campaign.n - 1
        )
        return accepted


def made_by_round(proposal: dict) -> bool:
    """Whether a recorded proposal is one a round made (added or suggested), not an operator's accept."""
    return "accepted_step" not in proposal and bool(proposal.get("added") or proposal.get("suggested"))


def round_seed(campaign, purpose: str, step: int, place: int) -> int:
    """The seed of ``purpose`` ("fit", "evidence") for the ``place``-th full fit of the round after ``step``:
    the live round, its replay and a snapshot draw the same."""
    return campaign._int_seed(f"propose-{purpose}", step, place)


def _seeds(campaign, step: int, places):
    """The seeds of a round's full fits: ``seed(purpose, i)`` for the ``i``-th law fitted here, which is the
    ``places[i]``-th of the round's fits (a replay fits only the winners, with the draws they had)."""
    places = list(places)
    return lambda purpose, i: round_seed(campaign, purpose, step, places[i])


def _alone(settings, belief: Belief):
    """The campaign's inference settings without "none of these" (a scratch belief weighs only its laws),
    switching to inducing points at the campaign's own limit, so a proposal's evidence is of the same kind
    (exact or the SGPR bound) as the declared laws' it is compared with."""
    return replace(settings, none_prior=0.0, exact_max_n=belief.exact_limit, exact_memory_gb=1e9)


def _probability(current, belief: Belief, log_z: float, weight: float, total: float) -> float:
    """The posterior probability a law of evidence ``log_z`` and weight ``weight`` would have among the
    campaign's fitted laws and "none of these" (``total``: the laws' weights before it)."""
    pn = belief.settings.none_prior
    law_weight = dict(zip(belief.names, belief.weights))
    log_z_all = [log_z, *current.log_z.values()]
    prior = [(1 - pn) * w / (total + weight) for w in [weight, *(law_weight[n] for n in current.log_z)]]
    if current.none is not None and pn > 0:
        log_z_all.append(current.none["log_evidence"])
        prior.append(pn)
    return probabilities(log_z_all, prior)[0]
