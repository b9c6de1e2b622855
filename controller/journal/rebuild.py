"""A campaign rebuilt from a journal, whatever wrote it: resume, replay and inspection start here.

A journal's first event holds the config its campaign was built from, in one
of three shapes (``mode``): ``in-process`` (``abduce run`` against a
simulator), ``listen`` (``abduce run --listen``) and ``daemon``. :func:`spec_of`
reads any of them into one :class:`RunSpec`; :func:`rebuild` makes a fresh
campaign from it and re-tells the journalled measurements (all, or the first
``upto``) -- the same path a resume takes, so the rebuilt campaign is the one
that ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abduce.controller.errors import ConfigError
from abduce.controller.journal.store import Journal, JournalError

if TYPE_CHECKING:  # reading a spec needs no torch (abduce inspect); building its campaign does
    from abduce.controller.core.campaign import Campaign
    from abduce.controller.core.space import Space


@dataclass(frozen=True)
class RunSpec:
    """How a journalled campaign was set up.

    Attributes:
        mode: ``in-process``, ``listen`` or ``daemon``.
        hypotheses, policy, acquisition, budget, seed, n_init, epsilon: the campaign.
        source, options: the driver it ran against where abduce built it
            (``simulated:transition-1d`` and its options), else None.
        truth: the hypothesis that generated the data, where known (a simulator's law).
        capabilities: what the instrument declared (runs over the protocol).
        channel, reduction: what the hypotheses explained.
        scale: device and large-n settings the config gave (:data:`SCALE_KEYS`).
    """

    mode: str
    hypotheses: tuple[str, ...]
    policy: str
    acquisition: str | None
    budget: int
    seed: int
    n_init: int
    epsilon: float
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    truth: str | None = None
    capabilities: dict[str, Any] | None = None
    channel: str | None = None
    reduction: str | None = None
    scale: dict[str, Any] = field(default_factory=dict)

    def space(self) -> Space:
        """The campaign's space: the instrument's declared one, or the simulator's."""
        from abduce.controller.drive.remote import space_of
        from abduce.instruments.protocol.models import Capabilities

        if self.capabilities is not None:
            return space_of(Capabilities.model_validate(self.capabilities))
        if self.source is None:
            raise ConfigError("the journal records neither the instrument's capabilities nor a simulator")
        from abduce.controller.rehearse.rehearsal import build_driver

        return space_of(build_driver(self.source, {"seed": self.seed, **self.options}).describe())

    def campaign(self) -> Campaign:
        from abduce.controller.recipe.build import campaign_from_names

        return campaign_from_names(self.space(), self.hypotheses, self.policy, self.acquisition, self.budget,
                                   self.seed, self.n_init, self.epsilon, scale=self.scale)


_TRANSITION_OPTIONS = ("truth", "x_c", "beta", "noise", "grid")
# The [campaign] keys that reach CampaignSettings (device, the large-n switch); here, not in
# setup, so that reading a spec stays torch-free.
SCALE_KEYS = ("device", "exact_max_n", "inducing", "exact_memory_gb")


def spec_of(config: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a journal's config event (any mode)."""
    mode = config.get("mode")
    common = ("hypotheses", "policy", "acquisition", "budget", "seed", "n_init", "epsilon")
    if mode == "in-process":
        c = config
        options = {k: c[k] for k in _TRANSITION_OPTIONS if k in c}
        return RunSpec(mode, tuple(c["hypotheses"]), c["policy"], c.get("acquisition"), int(c["budget"]),
                       int(c["seed"]), int(c["n_init"]), float(c["epsilon"]),
                       source=f"simulated:{c.get('simulator', 'transition-1d')}", options=options, truth=c.get("truth"))
    if mode == "listen":
        c = config
        return RunSpec(mode, *(c[k] if k != "hypotheses" else tuple(c[k]) for k in common),
                       capabilities=c.get("capabilities"))
    if mode == "daemon":
        c = config["campaign"]
        return RunSpec(mode, *(c.get(k) if k != "hypotheses" else tuple(c[k]) for k in common),
                       capabilities=config.get("capabilities"), channel=c.get("channel"), reduction=c.get("reduction"),
                       scale={k: c[k] for k in SCALE_KEYS if k in c})
    if mode == "rehearsal":
        c = config
        return RunSpec(mode, *(c[k] if k != "hypotheses" else tuple(c[k]) for k in common), source=c["source"],
                       options=dict(c.get("options") or {}), truth=c.get("truth"), channel=c.get("channel"),
                       reduction=c.get("reduction"))
    raise ConfigError(f"the journal's config has mode {mode!r}; known: in-process, listen, daemon, rehearsal")


def snapshot(journal: Journal, upto: int | None = None, events: list | None = None) -> tuple[RunSpec, Campaign]:
    """The journal's campaign after its first ``upto`` measurements, for looking at, without replay.

    :func:`rebuild` re-asks and re-tells every step (the acquisition scored n
    times, every posterior updated n times); this loads the data, the
    journalled step records and each hypothesis's latest journalled fit, and
    conditions the fits once (:meth:`Campaign.load_snapshot`): seconds for a
    10^4-measurement journal. The result answers ``posterior``,
    ``acquisition_scores`` and ``probabilities`` as the rebuilt campaign would
    (within rounding; a step whose decision never reached the journal uses the
    hypothesis's previous fit), and refuses ``ask``/``tell``. ``events``: all the journal's
    events, when the caller has read them already.
    """
    from abduce.controller.views.inspection import refused_readings

    spec = spec_of(journal.config())
    campaign = spec.campaign()
    events = list(journal.events()) if events is None else events
    refused, skipped = refused_readings(events)
    decisions = {e.request_id: e.body for e in events if e.kind == "decision"}
    asked = {e.request_id: e.body for e in events if e.kind == "request"}
    measurements, failed, asked_by, records, fits = [], [], [], [], {}
    attempts: dict[int, int] = {}
    for e in events:
        if e.kind != "measurement" or (e.request_id in refused and e.request_id not in skipped):
            continue
        if upto is not None and len(measurements) >= upto:
            break
        # cheap proof that this journal is this campaign's (a replay re-asks every step instead)
        step = int((asked.get(e.request_id) or {}).get("step", -1))
        if e.request_id != campaign.request_id(step, attempts.get(step, 0)):
            raise JournalError(f"{journal.path}: request {e.request_id} is not the one this campaign asks at step "
                               f"{step}: the journal was written by a campaign with other settings")
        asked_by.append(asked[e.request_id].get("hypothesis"))
        if e.request_id in skipped:
            failed.append(tuple(e.body["x"]))
            attempts[step] = attempts.get(step, 0) + 1
            continue
        measurements.append((e.request_id, tuple(e.body["x"]), float(e.body["y"])))
        if e.request_id in decisions:
            records.append(decisions[e.request_id])
            fits.update(decisions[e.request_id].get("fits") or {})
    if campaign.space.is_finite:
        points = [x for _, x, _ in measurements] + failed
        off = [x for x, i in zip(points, campaign.space.indices_of(points)) if i is None]
        if off:
            raise JournalError(f"{journal.path}: x = {list(off[0])} was measured but is not one of the campaign's "
                               f"candidates ({len(off)} such points): the journal was written for another space")
    campaign.load_snapshot(measurements, failed, asked_by, records, fits)
    return spec, campaign


def rebuild(journal: Journal, upto: int | None = None) -> tuple[RunSpec, Campaign]:
    """The journal's campaign after its first ``upto`` measurements (all by default)."""
    from abduce.controller.journal.resume import replay

    spec = spec_of(journal.config())
    resumed = replay(spec.campaign(), journal, limit=upto)
    return spec, resumed.campaign
