"""The journal's events, typed: one pydantic model per kind, written and read through the same models.

The store (:mod:`abduce.controller.journal.store`) keeps bodies as JSON and knows nothing of what they
mean; this module is the one place that does. Every writer builds a model and :func:`append` s it;
every reader takes :func:`read`'s :class:`Entry` objects, whose ``body`` is the model for its kind,
validated once, here, at the boundary (in the spirit of bluesky's event-model documents). A body
that does not fit its kind is a :class:`~abduce.controller.journal.store.JournalError` naming the
event, never a ``KeyError`` three modules later.

Journals written before the models existed load unchanged (``tests/fixtures/journals``): the models
describe exactly what was written then. A field this version does not know is kept (``extra``), not
refused: a journal is evidence, and a newer abduce may have written it.

Kinds and bodies:

* ``config``: the settings the campaign was built from (free-form per ``mode``; see
  :mod:`abduce.controller.recipe.spec`);
* ``request``: :class:`RequestBody` (a ``MeasureRequest``), journalled before it is sent;
* ``measurement``: :class:`MeasurementBody` (the point, the value, raw arrays), before it is told;
* ``decision``: :class:`DecisionBody` (a ``StepRecord`` and the fitted states of its refits);
* ``error``: :class:`ErrorBody` (an instrument error, or a reading ``tell`` refused);
* ``reply``: :class:`ReplyBody` (an operator's command to the instrument -- abort, safe state,
  release -- and the instrument's reply);
* ``accept``: :class:`AcceptBody` (an operator's accept of a suggested composed law), journalled before
  the campaign adds it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from abduce.controller.core.campaign import StepRecord
    from abduce.controller.core.measurements import MeasureRequest
    from abduce.controller.journal.store import Durability, Event, Journal


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    kind: ClassVar[str]


class ConfigBody(_Body):
    """The campaign's settings as its writer gave them (``mode`` says which shape)."""

    kind: ClassVar[str] = "config"
    mode: str | None = None


class RequestBody(_Body):
    """A measure request (:class:`~abduce.controller.core.measurements.MeasureRequest`)."""

    kind: ClassVar[str] = "request"
    request_id: str | None = None  # also the event's own request_id, which is the one read
    step: int
    x: tuple[float, ...]
    hypothesis: str | None
    reason: str
    points: tuple[tuple[float, ...], ...] | None = None  # a batch's points (x is the first); absent: just x

    def request(self, request_id: str) -> MeasureRequest:
        """The campaign's request back (``request_id``: the event's own)."""
        from abduce.controller.core.measurements import MeasureRequest

        return MeasureRequest(
            request_id=request_id,
            step=self.step,
            x=tuple(self.x),
            hypothesis=self.hypothesis,
            reason=self.reason,
            points=tuple(tuple(p) for p in self.points) if self.points else (),
        )


class PlainArray(_Body):
    """A numpy array as JSON: dtype (``numpy.dtype.str``), shape and the values in C order (float64
    round-trips exactly through JSON)."""

    kind: ClassVar[str] = "array"
    dtype: str
    shape: tuple[int, ...]
    data: list[Any]

    @classmethod
    def of(cls, array: Any) -> PlainArray:
        import numpy as np

        a = np.asarray(array)
        return cls(dtype=a.dtype.str, shape=a.shape, data=a.ravel().tolist())

    def array(self) -> Any:
        """The numpy array back, of its dtype and shape."""
        import numpy as np

        return np.asarray(self.data, dtype=np.dtype(self.dtype)).reshape(self.shape)


class MeasurementBody(_Body):
    """A measurement as it arrived (``y`` may be NaN/inf: a reading ``tell`` then refused), with the raw
    arrays it was reduced from and, when the instrument reported one, the reading's standard deviation
    ``y_sd`` (left out when none was: journals written before it load unchanged)."""

    kind: ClassVar[str] = "measurement"
    x: tuple[float, ...]
    y: float
    arrays: dict[str, PlainArray] | None = None
    y_sd: float | None = None
    index: int = 0  # which point of its request (a batch); left out for the first


class DecisionBody(_Body):
    """One step's record (:class:`~abduce.controller.core.campaign.StepRecord`, its fields and meanings)
    and ``fits``: the fitted state of each hypothesis refit at this step, restored on resume."""

    kind: ClassVar[str] = "decision"
    step: int
    request_id: str
    x: tuple[float, ...]
    y: float
    hypothesis: str | None
    reason: str
    refit: tuple[str, ...]
    reward: float | None
    probabilities: dict[str, float]
    log_evidence: dict[str, float | None]
    integrated_variance: dict[str, float | None]
    parameters: dict[str, dict[str, list[float]]]
    fit_failures: dict[str, str]
    stopped: bool
    unfitted: tuple[str, ...] = ()  # the defaults: fields later than the first journals
    none: dict[str, float | None] | None = None
    log_evidence_se: dict[str, float | None] = {}
    checks: dict[str, dict[str, Any]] = {}
    fits: dict[str, dict[str, Any]] = {}
    index: int = 0  # which point of its request (a batch); left out for the first
    score: float | None = None  # the acquisition's value at the point when asked; absent: design, baseline, older
    proposals: tuple[dict[str, Any], ...] = ()  # composed laws proposed or accepted at this step; absent: none

    def step_record(self) -> StepRecord:
        """The campaign's own record of the step (what a snapshot loads)."""
        from abduce.controller.core.campaign import StepRecord

        names = {f.name for f in dataclasses.fields(StepRecord)}
        return StepRecord(**{k: v for k, v in self if k in names})


class ErrorBody(_Body):
    """Something refused: ``stage`` ``instrument`` (the instrument's error: the request stays in flight)
    or ``tell`` (the campaign refused the reading; ``skipped``: a NaN/inf whose point is skipped)."""

    kind: ClassVar[str] = "error"
    stage: Literal["instrument", "tell"]
    reason: str
    message: str
    skipped: bool = False
    index: int = 0  # ``tell``: which point of its request (a batch); an instrument error is the whole request's


class ReplyBody(_Body):
    """A command sent to the instrument on the control lane and its reply, kept as evidence: ``command``
    (``abort``, ``safe-state``, ``release``), who asked (``by``: ``operator``, or ``daemon`` for the safe
    state on an unrecoverable error), ``ok`` and the instrument's ``detail``, and for an abort the request
    it named. Journals before protocol 1.1 hold none."""

    kind: ClassVar[str] = "reply"
    command: str | None = None
    by: str | None = None
    ok: bool | None = None
    detail: str = ""


class AcceptBody(_Body):
    """An operator's accept of a composed law the campaign suggested (``propose = "suggest"``; ``abduce accept
    RUN NAME``), journalled before the campaign adds it: the law's ``name``, ``n``, the measurements told
    when it was accepted (a resume or rebuild accepts it again after the same ``n``: between the same two
    requests), and who asked (``by``). Journals before abduction hold none."""

    kind: ClassVar[str] = "accept"
    name: str
    n: int
    by: str = "operator"


Body = ConfigBody | RequestBody | MeasurementBody | DecisionBody | ErrorBody | ReplyBody | AcceptBody
MODELS: dict[str, type[_Body]] = {
    m.kind: m for m in (ConfigBody, RequestBody, MeasurementBody, DecisionBody, ErrorBody, ReplyBody, AcceptBody)
}


def decision_body(record: StepRecord, fits: dict[str, dict[str, Any]]) -> DecisionBody:
    """A step's decision as journalled (``index`` left out for a request's first point and ``score`` where
    there is none, as journals were before them)."""
    fields = {
        k: v
        for k, v in vars(record).items()
        if (k != "index" or v) and (k != "score" or v is not None) and (k != "proposals" or v)
    }
    return DecisionBody(**fields, fits=fits)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One journal event with its body typed (the store's :class:`~abduce.controller.journal.store.Event`
    otherwise)."""

    seq: int
    t: float
    kind: str
    request_id: str | None
    key_id: str | None
    body: Any  # the model for ``kind`` (Body)
    blob: bytes | None


def append(
    journal: Journal,
    body: _Body,
    request_id: str | None = None,
    key_id: str | None = None,
    blob: bytes | None = None,
    durability: Durability = "now",
) -> int:
    """Journal ``body`` as an event of its kind (fields never set, e.g. no raw arrays, are left out)."""
    return journal.append(
        body.kind,
        body.model_dump(exclude_unset=True),
        request_id=request_id,
        key_id=key_id,
        blob=blob,
        durability=durability,
    )


def typed(event: Event) -> Entry:
    """The event with its body validated against its kind's model.

    Raises:
        JournalError: the body does not fit (names the event and what is wrong).
    """
    from abduce.controller.journal.store import JournalError

    try:
        body = MODELS[event.kind].model_validate(event.body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise JournalError(f"journal event {event.seq} ({event.kind}): {where}: {first['msg']}") from None
    return Entry(event.seq, event.t, event.kind, event.request_id, event.key_id, body, event.blob)


def read(journal: Journal, kind: str | None = None) -> Iterator[Entry]:
    """The journal's events in order (of one kind, if given), typed."""
    for event in journal.events(kind):
        yield typed(event)


def instrument_state(events: Iterable[Entry]) -> str | None:
    """The instrument's state as the journal last recorded it: ``safe`` after an acknowledged safe state,
    ``idle`` after a release; None when neither was ever sent (an abort leaves the state as it was)."""
    state = None
    for e in events:
        if e.kind == "reply" and e.body.ok and e.body.command in ("safe-state", "release"):
            state = "safe" if e.body.command == "safe-state" else "idle"
    return state


def aborted_requests(events: Iterable[Entry]) -> set[str]:
    """Requests the instrument ended ``aborted`` and the campaign skipped (never measured, never asked again)."""
    return {e.request_id for e in events if e.kind == "error" and e.body.stage == "instrument" and e.body.skipped}


def refused_readings(events: Iterable[Entry]) -> tuple[set[str], set[str]]:
    """``(refused, skipped)`` request ids: measurements ``tell`` refused (not part of the data; an
    instrument error leaves its request in flight instead), and the requests whose point was skipped:
    of those, the NaN/inf readings, and the requests the instrument ended ``aborted``
    (:func:`aborted_requests`). Both sets are settled: never in flight."""
    events = list(events)
    errors = [e for e in events if e.kind == "error" and e.body.stage != "instrument"]
    skipped = {e.request_id for e in errors if e.body.skipped} | aborted_requests(events)
    return {e.request_id for e in errors}, skipped


def refused_points(events: Iterable[Entry]) -> tuple[set[tuple[str, int]], set[tuple[str, int]], set[str]]:
    """:func:`refused_readings` point by point, for journals with batches: ``(refused, skipped)`` as
    ``(request_id, index)`` pairs of the readings ``tell`` refused and of those skipped, and the requests
    the instrument ended ``aborted`` (every point of them skipped)."""
    events = list(events)
    errors = [e for e in events if e.kind == "error" and e.body.stage != "instrument"]
    refused = {(e.request_id, e.body.index) for e in errors}
    return refused, {(e.request_id, e.body.index) for e in errors if e.body.skipped}, aborted_requests(events)
