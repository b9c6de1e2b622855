"""A campaign's state and everything that only reads it.

:class:`CampaignState` holds what a campaign knows after its measurements (the
data, the :class:`~abduce.hypotheses.belief.Belief` over its hypotheses, the
step records, the policy's bookkeeping) and answers questions about it: the
probabilities, the leader, the posterior bands, what the next acquisition
would score. Two kinds of campaign share it: the live
:class:`~abduce.controller.core.campaign.Campaign`, which adds ``ask`` and
``tell``, and the read-only :class:`~abduce.controller.core.snapshot.Snapshot`
loaded from a journal for looking at.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
import torch
from torch import Tensor

from abduce.controller.core import design
from abduce.controller.core.abduction import Abduction
from abduce.controller.core.batch import Believed
from abduce.controller.core.channels import CHANNEL_DISTANCE, Channels, Scaling
from abduce.controller.core.readings_state import FitReadings
from abduce.controller.core.settings import CampaignSettings, StepRecord
from abduce.controller.core.space import Space
from abduce.controller.core.verdict import explained, leader
from abduce.controller.decide.acquisition import ACQUISITIONS, Acquisition, Band
from abduce.controller.decide.policies import POLICIES, Policy, PolicyView
from abduce.controller.decide.stopping import StoppingRule
from abduce.controller.errors import CampaignStateError, ConfigError
from abduce.hypotheses.belief import Belief, Slot
from abduce.hypotheses.channels import across_channels
from abduce.hypotheses.check import check_once
from abduce.hypotheses.declaration import Hypothesis
from abduce.hypotheses.library import NONE_OF_THESE, resolve_hypothesis

_NAMESPACE = uuid.UUID("6f6b4a52-3d0e-4f7c-9a55-2b1e8f0c9d11")


class CampaignState(FitReadings):
    """What a campaign knows, and the questions it answers (see :class:`~abduce.controller.core.campaign.Campaign`
    for the arguments); its readings' views are :class:`~abduce.controller.core.readings_state.FitReadings`'."""

    def __init__(
        self,
        space: Space,
        hypotheses: list[Hypothesis],
        policy: str | Policy,
        acquisition: str | Acquisition | None,
        stopping: StoppingRule,
        seed: int,
        settings: CampaignSettings | None = None,
        name: str = "campaign",
        device: torch.device | str | None = None,
        weights: list[float] | None = None,
        channels: Channels | None = None,
    ) -> None:
        if not hypotheses:
            raise ConfigError("a campaign needs at least one hypothesis")
        settings = settings or CampaignSettings()
        self.channels = channels
        self.physical_space = space  # the space without the channel axis (the same space without channels)
        if channels is not None:  # measure in the product of the space and the channels (core.channels)
            if settings.propose != "off":
                raise ConfigError("proposals (propose) are not built for a campaign over several channels")
            if settings.q != 1:
                raise ConfigError("a campaign over several channels asks one point at a time (q = 1)")
            if settings.n_init < 2:
                raise ConfigError("a campaign over several channels needs n_init >= 2 (the cheap channel's scale)")
            space = channels.augment(space)
            hypotheses = [across_channels(h, channels.count, self.physical_space.d) for h in hypotheses]
        names = [h.name for h in hypotheses]
        if len(set(names)) != len(names):
            raise ConfigError(f"hypothesis names must be unique, got {names}")
        for h in hypotheses:  # a law that is NaN somewhere in its range would break fits later, silently
            check_once(h, space.lo, space.hi, space.candidates)
        self.space = space
        self.policy = POLICIES[policy]() if isinstance(policy, str) else policy
        if channels is not None and type(self.policy).select is not Policy.select:
            raise ConfigError(
                f"policy {self.policy.name!r} picks points without an acquisition, so without the channels' costs: "
                "a campaign over several channels needs an acquisition policy (discriminate, epsilon-greedy)"
            )
        acq = acquisition if acquisition is not None else self.policy.default_acquisition
        self.acquisition = ACQUISITIONS[acq]() if isinstance(acq, str) else acq
        self.stopping = stopping
        self.seed = int(seed)
        self.name = name
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._points = self._unit(design.posterior_points(space, self.seed, settings.reference_size, self.device))
        span = space.span if channels is None else (*space.span[:-1], 1.0 / CHANNEL_DISTANCE)  # see _unit
        self.belief = Belief(hypotheses, self._points, space.lo, span, settings, weights)
        self.settings = settings
        self._times_chosen = [0] * len(hypotheses)
        self._rewards: list[list[float]] = [[] for _ in hypotheses]
        self._x: list[tuple[float, ...]] = []
        self._y: list[float] = []
        self._y_sd: list[float] = []  # each reading's known standard deviation; NaN where none was told
        self._measured_idx: list[int] = []
        self._failed_idx: list[int] = []  # candidates whose reading was not a number: never asked again
        self._attempts: dict[int, int] = {}  # step -> failed readings skipped at it
        self._told: set[str] = set()
        self._history: list[StepRecord] = []
        self._stopped = False
        self._row_costs: Tensor | None = None  # each candidate's cost (channels only)
        self._scaling_cache: Scaling | None = None
        if channels is None:
            self._reference_idx = design.reference_indices(self._points, self.seed, settings.reference_size)
            self._design = design.initial_design(space, self._points, self.seed, settings.n_init)
        else:  # integrated variances over the explained channel; the design read on every channel
            own = self.physical_space.to_unit(self.physical_space.candidates.to(self.device))  # type: ignore[union-attr]
            ref = design.reference_indices(own, self.seed, settings.reference_size)
            self._reference_idx = ref * channels.count
            self._design = channels.expand(design.initial_design(self.physical_space, own, self.seed, settings.n_init))
            self._row_costs = channels.row_costs(space.candidates.to(self.device))  # type: ignore[union-attr]
        self._fit_from = len(self._design)  # the first fit: once the design is in
        if channels is not None:  # ... and its explained-channel part (Campaign.tell adds it)
            self._fit_from += channels.explained_count(settings.n_init)
        self.abduction = Abduction()

    def _admit(self, slot: Slot, weight: float) -> None:
        """A new contender (a proposal, :mod:`abduce.controller.core.abduction`) with its prior weight."""
        self.belief.add_laws([slot], [weight])
        self._times_chosen.append(0)
        self._rewards.append([])

    def declared(self, name: str) -> Hypothesis:
        """A law the grammar composes from, by name: one of this campaign's declared laws (with its declared
        priors, not those a transfer gave it), else a built-in."""
        for slot in self.belief.slots:
            if slot.hypothesis.name == name and slot.hypothesis.depth == 0:
                return slot.hypothesis.as_declared()
        return resolve_hypothesis(name)

    @property
    def proposals(self) -> list[dict]:
        """Every proposal so far, in order (:class:`~abduce.controller.core.abduction.Proposal` as JSON)."""
        return [dict(p) for record in self._history for p in record.proposals]

    @property
    def settings(self) -> CampaignSettings:
        return self._settings

    @settings.setter
    def settings(self, value: CampaignSettings) -> None:
        """Settings changed before the first fit (a benchmark's effort) reach the belief too."""
        self._settings = value
        self.belief.settings = value

    # ------------------------------------------------------------------ reading

    @property
    def done(self) -> bool:
        """Whether the stopping rule has fired (or no candidate is left)."""
        return self._stopped

    @property
    def hypothesis_names(self) -> tuple[str, ...]:
        return self.belief.names

    @property
    def history(self) -> tuple[StepRecord, ...]:
        return tuple(self._history)

    @property
    def exact_limit(self) -> int:
        """Most measurements for exact inference (:attr:`abduce.hypotheses.belief.Belief.exact_limit`)."""
        return self.belief.exact_limit

    def probabilities(self) -> dict[str, float]:
        """Posterior probability of each hypothesis (empty before the first fit)."""
        return self._history[-1].probabilities if self._history else {}

    def leader(self) -> str | None:
        """The most probable hypothesis; None before the first fit, or while a hypothesis has never been
        fitted (its evidence is unknown: the probabilities are over the fitted ones only)."""
        if not self._history:
            return None
        last = self._history[-1]
        return leader(last.probabilities, last.log_evidence, last.unfitted)

    def fit_failures(self) -> dict[str, int]:
        """How many refits of each hypothesis failed so far (0 for those that never failed); "none of
        these" too, once it has been weighed."""
        counts = dict.fromkeys(self.hypothesis_names, 0)
        if self._history and (
            self._history[-1].none is not None or any(NONE_OF_THESE.name in r.fit_failures for r in self._history)
        ):
            counts[NONE_OF_THESE.name] = 0  # once it has been weighed (or tried)
        for record in self._history:
            for name in record.fit_failures:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def summary(self) -> dict:
        """``{"leader", "measurements", "hypotheses": [{"name", "probability", "times_chosen", "parameters",
        "check"}], "unfitted", "fit_failures", "none", "explained"}``
        (:func:`~abduce.controller.core.verdict.explained`)."""
        last = self._history[-1] if self._history else None
        hyps = []
        for i, name in enumerate(self.hypothesis_names):
            params = last.parameters.get(name, {}) if last else {}
            mean_reward = self._mean_reward(i)
            hyps.append(
                {
                    "name": name,
                    "probability": last.probabilities.get(name, 0.0) if last else 0.0,
                    "log_evidence": last.log_evidence.get(name) if last else None,
                    "log_evidence_se": last.log_evidence_se.get(name) if last else None,
                    "times_chosen": self._times_chosen[i],
                    "mean_reward": None if math.isnan(mean_reward) else mean_reward,
                    "parameters": {p: {"mean": v[0], "sd": v[1]} for p, v in params.items()},
                    "check": last.checks.get(name) if last else None,
                }
            )
        none = dict(last.none, check=last.checks.get(NONE_OF_THESE.name)) if last and last.none else None
        return {
            "leader": self.leader(),
            "measurements": self.n,
            "hypotheses": hyps,
            "unfitted": list(last.unfitted) if last else [],
            "fit_failures": self.fit_failures(),
            "none": none,
            "explained": explained(hyps, none),
        }

    def points(self) -> np.ndarray:
        """``N x d`` physical coordinates of the points the posteriors are kept at: the
        candidates of a finite space, the Sobol reference points of a box (over several channels: the
        explained channel's, without the channel coordinate)."""
        out = self.space.from_unit(self._points).detach().cpu().numpy()
        return out if self.channels is None else out[:: self.channels.count, :-1]

    def posterior_mean(self, hypothesis: str | None = None) -> np.ndarray | None:
        """``N`` posterior means (physical units) of ``hypothesis`` (default: the leader) at
        :meth:`points`; None before it has been fitted."""
        name = hypothesis or self.leader()
        post = self.posterior(name) if name is not None else None
        return None if post is None else post[0]

    def posterior(self, hypothesis: str, plug_in: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, sd)`` of the latent function under ``hypothesis`` at :meth:`points` (physical units);
        None before its first fit. "none of these" answers too.

        The band integrates over the physical parameters' posterior (the evidence's importance draws:
        :meth:`abduce.hypotheses.evidence.EvidenceTracker.band`), so the uncertainty of ``x_c`` reaches
        it; the kernel hyperparameters stay at their fit. ``plug_in``: the parameters at their fitted
        values instead (what every acquisition but ``model-information`` scores with, and the only band past
        the inducing switch).
        """
        band = self.belief.band(hypothesis, plug_in)
        if band is None:
            return None
        mean, var = band
        if self.channels is not None:  # the explained channel's rows (the law's own)
            mean, var = mean[:: self.channels.count], var[:: self.channels.count]
        return mean.detach().cpu().numpy(), var.clamp_min(0).sqrt().detach().cpu().numpy()

    def request_id(self, step: int, attempt: int = 0) -> str:
        """The id of the request for ``step`` (``attempt``: readings skipped at that step before it);
        unique per campaign name, seed, step and attempt."""
        key = f"{self.name}/{self.seed}/{step}" + (f"/retry{attempt}" if attempt else "")
        return str(uuid.uuid5(_NAMESPACE, key))

    def fit_states(self, names) -> dict[str, dict]:
        """The current fitted state of each named hypothesis, as JSON (for the journal; see ``Campaign.tell``)."""
        return self.belief.fit_states(names)

    def acquisition_scores(self) -> tuple[np.ndarray, str | None]:
        """What the next ``ask`` would score, without asking: ``N`` values at :meth:`points`
        (NaN where it never goes; over several channels, each point's best channel, per unit cost) and the
        driving hypothesis (None: all of them).

        Raises:
            CampaignStateError: a baseline policy (it picks points without an
                acquisition), or no hypothesis fitted yet.
        """
        if type(self.policy).select is not Policy.select:
            raise CampaignStateError(f"policy {self.policy.name!r} chooses points without an acquisition")
        if self.n < self._fit_from:
            raise CampaignStateError("no acquisition during the initial design")
        driver, _ = self.policy.choose(self._policy_view(), self._rng("policy", self.n))  # the same seeded choice
        with torch.no_grad():
            scores, acq = self._scores(driver)
            if scores is None:
                scores = acq(self._points.unsqueeze(1))  # type: ignore[operator]
        out = scores.detach().cpu().numpy().astype(float)
        out[~np.isfinite(out)] = np.nan
        if self.channels is not None:  # at each point, its best channel's score (per unit cost)
            rows = out.reshape(-1, self.channels.count)
            out = np.where(np.isnan(rows).all(1), np.nan, np.where(np.isnan(rows), -np.inf, rows).max(1))
        return out, self.hypothesis_names[driver] if driver is not None else None

    # ------------------------------------------------------------------ shared internals

    def _mean_reward(self, i: int) -> float:
        rewards = self._rewards[i]
        return sum(rewards) / len(rewards) if rewards else math.nan

    def _rng(self, purpose: str, step: int, index: int = 0, point: int = 0) -> np.random.Generator:
        return design.rng(self.seed, purpose, step, index, point)

    def _int_seed(self, purpose: str, step: int, index: int = 0, point: int = 0) -> int:
        return design.int_seed(self.seed, purpose, step, index, point)

    def _band(self, i: int) -> Band:
        """Hypothesis ``i``'s predictive at the candidates, its physical parameters integrated (the bands')."""
        slot = self.belief.slots[i]
        mean, var = self.belief.band(slot.hypothesis.name)  # type: ignore[misc]
        return Band(mean, var, slot.posterior.noise)  # type: ignore[union-attr]

    def _policy_view(self) -> PolicyView:
        probs = self.probabilities()
        return PolicyView(
            probabilities=tuple(probs.get(name, 0.0) for name in self.hypothesis_names),
            times_chosen=tuple(self._times_chosen),
            mean_reward=tuple(self._mean_reward(i) for i in range(len(self._rewards))),
        )

    def _weights(self) -> Tensor:
        """The laws' probabilities renormalised over the set (what an acquisition weighs them by). Where every
        one has underflowed to 0 ("none of these" holds all the mass to rounding), the same renormalised
        probabilities from the laws' log evidences (:meth:`~abduce.hypotheses.belief.Belief.within_set`): the
        campaign goes on asking which law it would be, instead of every candidate scoring -inf."""
        probs = self.probabilities()
        w = self._tensor([probs.get(name, 0.0) for name in self.hypothesis_names])
        total = float(w.sum())
        if total > 0:
            return w / total
        if not self._history:
            return w
        within = self.belief.within_set(dict(self._history[-1].log_evidence))
        return self._tensor([within.get(name, 0.0) for name in self.hypothesis_names])

    def _scores(self, driver: int | None, believed: Believed | None = None) -> tuple[Tensor | None, object]:
        """The acquisition for ``driver`` (None or unfitted: the leader): on a finite space its
        ``N`` scores, -inf where ``ask`` never goes (measured, failed, already in the batch); on a box
        the BoTorch acquisition function to optimise (scores None). ``believed``: the hypotheses after
        the fantasised readings of a batch's earlier points (:mod:`abduce.controller.core.batch`)."""
        usable = self.belief.usable()
        if not usable:
            raise CampaignStateError("no hypothesis could be fitted; see the step records' fit_failures")
        slots = self.belief.slots
        weights = self._weights()
        if driver is None or driver not in usable:
            driver = max(usable, key=lambda i: float(weights[i]))
        if self.space.is_finite:
            fantasy = believed.posteriors if believed is not None else {}
            posteriors = [fantasy.get(i, slots[i].posterior) for i in usable]  # only the hypotheses with a fit
            if self.acquisition.integrated:  # each law's parameters integrated (a fantasised one's plugged in)
                posteriors = [p if i in fantasy else self._band(i) for i, p in zip(usable, posteriors)]
            scores = self.acquisition.score(
                posteriors,
                usable.index(driver),
                weights[usable],
                self._reference_idx,
                known=self._row_noise(),  # type: ignore[arg-type]
            )
            if self._row_costs is not None:  # information per unit cost (BoTorch's InverseCostWeightedUtility)
                scores = scores / self._row_costs
            scores = torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -math.inf))
            if self.settings.exclude_measured and self._measured_idx:
                scores[torch.tensor(self._measured_idx, device=scores.device)] = -math.inf
            if self._failed_idx:
                scores[torch.tensor(self._failed_idx, device=scores.device)] = -math.inf
            if believed is not None and believed.taken:
                scores[torch.tensor(believed.taken, device=scores.device)] = -math.inf
            return scores, None
        u, y = self._data_tensors()
        data = believed.data if believed is not None else {}
        sd = self._sd_tensor()  # the readings' known noise (fantasised readings of a batch have none)
        models = [slots[i].fit.model(*data[i]) if i in data else slots[i].fit.model(u, y, sd) for i in usable]  # type: ignore[union-attr]
        return None, self.acquisition.botorch(models, usable.index(driver), weights[usable], self._points)
